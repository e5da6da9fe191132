// analyzer/model/event_pipeline.h: the time-ordered record stream of a trace,
// produced on a second thread so that reading, decompressing, decoding and
// merging overlap with the analysis of earlier events.
//
// The producer runs StreamMerger (whose workers decode the chunks into
// compact Events, chunk_events.h) and copies the merged events into
// batches, with the self-owned full records of the rare records that carry
// strings or lists. Events travel in batches through a bounded queue (at most
// kMaxQueuedBatches batches in flight), so memory stays bounded whatever the
// trace's length. The order is exactly StreamMerger's. Small traces are
// processed on the calling thread.
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

  // The next event, or null at the end or on error (see status()).
  const Event* Next();

  // The next events, as a run of *count (> 0) consecutive events valid
  // until the next call of Next or NextBatch; null at the end or on error.
  // Lets the consumer look ahead (prefetch) within the run.
  const Event* NextBatch(size_t* count);

  // The merger's final status; valid once Next returned null.
  const absl::Status& status() const { return status_; }

 private:
  struct Batch;
  static constexpr size_t kBatchEvents = 2048;  // 128 KiB: stays in cache
  static constexpr size_t kMaxQueuedBatches = 4;

  // Fills `batch` from the merger; false when the merger is exhausted.
  bool Fill(Batch& batch);
  void Produce();

  StreamMerger& merger_;
  bool threaded_ = false;
  std::thread producer_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Batch>> queue_;   // guarded by mu_
  std::vector<std::unique_ptr<Batch>> spare_;  // guarded by mu_
  bool done_ = false;                          // guarded by mu_
  bool stop_ = false;                          // guarded by mu_
  absl::Status producer_status_;               // guarded by mu_
  std::unique_ptr<Batch> current_;  // never null
  size_t pos_ = 0;
  bool finished_ = false;
  absl::Status status_;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_EVENT_PIPELINE_H_
