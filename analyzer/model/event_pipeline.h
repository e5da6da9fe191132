// analyzer/model/event_pipeline.h: the time-ordered record stream of a trace,
// as runs of events (StreamMerger::NextRun).
//
// By default the merge runs on the calling thread: the decode workers
// (ChunkPrefetcher) stamp each event with its stream and the merge hands out
// runs (for a one-thread trace, the rest of a chunk) after a few time
// comparisons, so a merging thread of its own would cost more in wake-ups
// and cache-line transfers than it saves. Measured on python's trace
// (24 M events, one thread, 2026-12-06, docs/performance.md "The feed"):
// the separate merging thread cost 1.2 G instructions and its wake-ups; a
// producer thread handing out runs in batches took 2.5-2.9 s of CPU
// against 1.3-1.8 s inline.
//
// The threaded mode (threaded_min_blocks) is kept for comparison: a
// producer runs the merger and queues batches of runs; the merger retires
// each chunk it has used up into the batch being filled
// (StreamMerger::set_retired_sink), so a chunk's events live until the
// consumer has gone past the batch that retired it; then the chunk's arrays
// go back to the decode workers. At most kMaxQueuedBatches batches are in
// flight; the producer sleeps while the queue is full and is woken once the
// consumer has drained it to half. The order is exactly StreamMerger's.
#ifndef HEAPSIGHT_ANALYZER_EVENT_PIPELINE_H_
#define HEAPSIGHT_ANALYZER_EVENT_PIPELINE_H_

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "analyzer/model/chunk_events.h"
#include "analyzer/model/stream_merger.h"
#include "format/chunk_decoder.h"

namespace heapsight::analyzer {

class EventPipeline {
 public:
  // Takes the merger; starts a producer thread when the trace has at least
  // `threaded_min_blocks` blocks (by default never: see above).
  explicit EventPipeline(StreamMerger& merger, uint64_t threaded_min_blocks = UINT64_MAX);
  ~EventPipeline();
  EventPipeline(const EventPipeline&) = delete;
  EventPipeline& operator=(const EventPipeline&) = delete;

  using Run = StreamMerger::Run;
  // The next run of events in merged order (StreamMerger::NextRun), valid
  // (with the events it points at) until the next call; false at the end or
  // on error (see status()). The consumer can look ahead (prefetch) within
  // the run.
  bool NextRun(Run* run);

  // The next event, or null at the end or on error: NextRun one event at a
  // time (the event is valid until the run it came in is used up). Do not
  // mix with NextRun.
  const Event* Next() {
    if (next_ == run_.end) {
      if (!NextRun(&run_)) return nullptr;
      next_ = run_.begin;
    }
    return next_++;
  }

  // The merger's final status; valid once NextBatch returned null.
  const absl::Status& status() const { return status_; }

 private:
  struct Batch;
  // A batch ends after the run that brings it to kBatchEvents events, or at
  // kBatchRuns runs. The chunks the queued batches reach into stay
  // allocated until the batches are consumed.
  static constexpr size_t kBatchEvents = 4096;
  static constexpr size_t kBatchRuns = 1024;
  static constexpr size_t kMaxQueuedBatches = 4;

  // Fills `batch` from the merger; false when the merger is exhausted.
  bool Fill(Batch& batch);
  // Gives the chunks `batch` retired back to the decoders and empties it.
  void Release(Batch& batch);
  void Produce();
  // Moves to the next batch; false at the end.
  bool NextBatch();

  StreamMerger& merger_;
  bool threaded_ = false;
  std::thread producer_;
  std::mutex mu_;
  std::condition_variable producer_cv_;  // the queue drained to half, or stop
  std::condition_variable consumer_cv_;  // a batch arrived, or done
  std::deque<std::unique_ptr<Batch>> queue_;   // guarded by mu_
  std::vector<std::unique_ptr<Batch>> spare_;  // guarded by mu_
  bool producer_waiting_ = false;              // guarded by mu_
  bool consumer_waiting_ = false;              // guarded by mu_
  bool done_ = false;                          // guarded by mu_
  bool stop_ = false;                          // guarded by mu_
  absl::Status producer_status_;               // guarded by mu_
  std::unique_ptr<Batch> current_;  // never null
  size_t current_pos_ = 0;          // next run of current_
  bool finished_ = false;
  absl::Status status_;
  Run run_;                         // Next()'s run
  const Event* next_ = nullptr;     // Next()'s position in run_
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_EVENT_PIPELINE_H_
