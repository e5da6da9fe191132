// analyzer/model/heap_timeline.cc: see heap_timeline.h.
#include "analyzer/model/heap_timeline.h"

#include <algorithm>

namespace heapsight::analyzer {

HeapBucket MergeBuckets(const HeapBucket& a, const HeapBucket& b) {
  HeapBucket m = a;
  m.min = std::min(a.min, b.min);
  // Strictly greater: of equal maxima the earlier one stays, as the
  // analysis keeps the first moment of its peak.
  if (b.max > a.max) {
    m.max = b.max;
    m.max_time_us = b.max_time_us;
  }
  m.close = b.close;
  m.last_us = b.last_us;
  return m;
}

const HeapBucket* HeapTimeline::PeakBucket() const {
  const HeapBucket* best = nullptr;
  for (const HeapBucket& b : buckets) {
    if (best == nullptr || b.max > best->max) best = &b;
  }
  return best;
}

HeapTimelineBuilder::HeapTimelineBuilder(uint64_t expected_duration_us, size_t max_buckets)
    : max_buckets_(std::max<size_t>(max_buckets, 2)) {
  uint64_t width = expected_duration_us / (max_buckets_ / 2);
  // A power of two, so that coarsening keeps bucket starts aligned.
  uint64_t w = 1;
  while (w < width) w <<= 1;
  timeline_.bucket_us = w;
}

void HeapTimelineBuilder::StartBucket(uint64_t time_us, uint64_t heap_bytes) {
  if (timeline_.buckets.size() >= max_buckets_) Coarsen();
  uint64_t begin = time_us - time_us % timeline_.bucket_us;
  if (!timeline_.buckets.empty() && timeline_.buckets.back().begin_us == begin) {
    // Coarsening put the last bucket around this time.
    bucket_end_us_ = begin + timeline_.bucket_us;
    Observe(time_us, heap_bytes);
    return;
  }
  HeapBucket b;
  b.begin_us = begin;
  b.open = last_;
  b.min = b.max = b.close = heap_bytes;
  b.max_time_us = b.first_us = b.last_us = time_us;
  timeline_.buckets.push_back(b);
  bucket_end_us_ = begin + timeline_.bucket_us;
}

void HeapTimelineBuilder::Coarsen() {
  std::vector<HeapBucket>& v = timeline_.buckets;
  do {
    timeline_.bucket_us *= 2;
    size_t out = 0;
    for (size_t i = 0; i < v.size(); ++i) {
      uint64_t begin = v[i].begin_us - v[i].begin_us % timeline_.bucket_us;
      if (out != 0 && v[out - 1].begin_us == begin) {
        v[out - 1] = MergeBuckets(v[out - 1], v[i]);
      } else {
        v[out] = v[i];
        v[out].begin_us = begin;
        ++out;
      }
    }
    v.resize(out);
  } while (v.size() >= max_buckets_);
  if (!v.empty()) bucket_end_us_ = v.back().begin_us + timeline_.bucket_us;
}

HeapTimeline HeapTimelineBuilder::Finish(uint64_t end_us) {
  HeapTimeline out = std::move(timeline_);
  out.end_us = end_us;
  if (!out.buckets.empty()) out.end_us = std::max(out.end_us, out.buckets.back().last_us);
  timeline_ = HeapTimeline{};
  return out;
}

}  // namespace heapsight::analyzer
