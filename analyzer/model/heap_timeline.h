// analyzer/model/heap_timeline.h: the live heap over time as a step function,
// exact from the events and bounded in size: a min/max envelope per time
// bucket.
//
// The heap only changes at allocation and free events, so it is a step
// function of time. HeapTimelineBuilder is told the heap's size after every
// change (Observe) and keeps, per bucket of `bucket_us` microseconds that
// saw at least one change, the size before the bucket's first change
// (`open`), the smallest and largest size after any of its changes, the time
// the largest was first reached, and the size after its last change
// (`close`). Between two stored buckets the heap is flat at the first one's
// `close`. When more than `max_buckets` buckets would be stored, the width
// doubles and neighbouring buckets merge (min of mins, max of maxes, the
// earlier time of an equal max), so memory stays O(max_buckets) whatever the
// trace's length and each event costs O(1) amortized.
//
// Because no change is ever dropped, the largest `max` over all buckets is
// the heap's peak (Totals::peak_bytes, runtime blocks included) and the
// first bucket that holds it has max_time_us == Totals::peak_time_us: a chart
// drawn from these buckets has its highest point at the reported peak, at
// the reported time. Outputs re-bucket this series to their resolution (one
// bucket per pixel column) with MergeBuckets' rule, never per event.
#ifndef HEAPSIGHT_ANALYZER_MODEL_HEAP_TIMELINE_H_
#define HEAPSIGHT_ANALYZER_MODEL_HEAP_TIMELINE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace heapsight::analyzer {

struct HeapBucket {
  uint64_t begin_us = 0;     // start of the bucket (a multiple of the width)
  uint64_t open = 0;         // heap bytes just before the bucket's first change
  uint64_t min = 0;          // smallest heap bytes after a change in the bucket
  uint64_t max = 0;          // largest heap bytes after a change in the bucket
  uint64_t max_time_us = 0;  // when `max` was first reached
  uint64_t close = 0;        // heap bytes after the bucket's last change
  uint64_t first_us = 0;     // time of the bucket's first change
  uint64_t last_us = 0;      // time of the bucket's last change
};

// Combines two buckets, `a` before `b`, into one covering both.
HeapBucket MergeBuckets(const HeapBucket& a, const HeapBucket& b);

struct HeapTimeline {
  uint64_t bucket_us = 1;           // width of every bucket
  std::vector<HeapBucket> buckets;  // buckets with a change, in time order
  // End of the trace: the heap stays at the last bucket's `close` until then.
  uint64_t end_us = 0;

  // The bucket holding the heap's peak (first of equal maxima), or null if
  // the heap never changed.
  const HeapBucket* PeakBucket() const;
};

class HeapTimelineBuilder {
 public:
  // `expected_duration_us` (a guess; 0 = unknown) sets the first width so
  // the trace fits in about half of `max_buckets` (>= 2) buckets.
  explicit HeapTimelineBuilder(uint64_t expected_duration_us = 0, size_t max_buckets = 4096);

  // The heap holds `heap_bytes` after a change at `time_us`. Times must not
  // decrease (the analysis' merged clock). Forced inline: the pass calls it
  // for nearly every event, and GCC had stopped inlining it into the large
  // pass (a call of about 20 instructions, 136 M on perl's trace).
  [[gnu::always_inline]] void Observe(uint64_t time_us, uint64_t heap_bytes) {
    if (time_us < bucket_end_us_ && !timeline_.buckets.empty()) {
      HeapBucket& b = timeline_.buckets.back();
      if (heap_bytes > b.max) {
        b.max = heap_bytes;
        b.max_time_us = time_us;
      }
      if (heap_bytes < b.min) b.min = heap_bytes;
      b.close = heap_bytes;
      b.last_us = time_us;
    } else {
      StartBucket(time_us, heap_bytes);
    }
    last_ = heap_bytes;
  }

  // The series; the trace ended at `end_us`.
  HeapTimeline Finish(uint64_t end_us);

 private:
  void StartBucket(uint64_t time_us, uint64_t heap_bytes);
  void Coarsen();  // doubles the width, merging neighbours

  HeapTimeline timeline_;
  size_t max_buckets_;
  uint64_t bucket_end_us_ = 0;
  uint64_t last_ = 0;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_HEAP_TIMELINE_H_
