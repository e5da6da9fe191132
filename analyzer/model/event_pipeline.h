// analyzer/model/event_pipeline.h: the time-ordered record stream of a trace,
// produced on a second thread so that reading, decompressing, decoding and
// merging overlap with the analysis of earlier events.
//
// The producer runs StreamMerger (whose workers decode the chunks into
// compact Events, chunk_events.h) and hands the merged order on as batches
// of *pointers* into the decoded chunks, not copies of the 64-byte events:
// the merger retires each chunk it has used up into the batch being filled
// (StreamMerger::set_retired_sink), so a chunk's events, and the full
// records they point at, live until the consumer has gone past the batch
// that retired it; then the chunk's arrays go back to the decode workers.
// Batches travel through a bounded queue (at most kMaxQueuedBatches in
// flight), so memory stays bounded whatever the trace's length: the
// batches' events plus the chunks they reach into. The producer sleeps
// while the queue is full and is woken only once the consumer has drained
// it to half, so the two threads wake each other about once per
// kMaxQueuedBatches / 2 batches, not once per batch. The order is exactly
// StreamMerger's. Small traces are processed on the calling thread.
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
  // Takes the merger; starts the producer thread when the trace has at
  // least `threaded_min_blocks` blocks.
  explicit EventPipeline(StreamMerger& merger, uint64_t threaded_min_blocks = 8);
  ~EventPipeline();
  EventPipeline(const EventPipeline&) = delete;
  EventPipeline& operator=(const EventPipeline&) = delete;

  // The next events in merged order, as *count (> 0) pointers valid (with
  // the events they point at) until the next call; null at the end or on
  // error (see status()). The consumer can look ahead (prefetch) within
  // the batch.
  const Event* const* NextBatch(size_t* count);

  // The next event, or null at the end or on error: NextBatch one event at
  // a time (the event is valid until the batch it came in is used up).
  const Event* Next() {
    if (pos_ < count_) return batch_[pos_++];
    batch_ = NextBatch(&count_);
    if (batch_ == nullptr) {
      count_ = pos_ = 0;
      return nullptr;
    }
    pos_ = 1;
    return batch_[0];
  }

  // The merger's final status; valid once NextBatch returned null.
  const absl::Status& status() const { return status_; }

 private:
  struct Batch;
  // 32 KiB of pointers. The chunks the queued batches reach into stay
  // allocated until the batches are consumed: 4 x 4096 events hold about
  // one python chunk (13,600 events, 870 KB decoded) more than a copy did;
  // 8192 cost python 5 MB of RSS.
  static constexpr size_t kBatchEvents = 4096;
  static constexpr size_t kMaxQueuedBatches = 4;

  // Fills `batch` from the merger; false when the merger is exhausted.
  bool Fill(Batch& batch);
  // Gives the chunks `batch` retired back to the decoders and empties it.
  void Release(Batch& batch);
  void Produce();

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
  bool finished_ = false;
  absl::Status status_;
  const Event* const* batch_ = nullptr;  // Next()'s batch
  size_t count_ = 0;
  size_t pos_ = 0;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_EVENT_PIPELINE_H_
