// analyzer/model/event_pipeline.cc: see event_pipeline.h.
#include "analyzer/model/event_pipeline.h"

#include <utility>

namespace heapsight::analyzer {

struct EventPipeline::Batch {
  std::vector<Run> runs;
  // Chunks the merger used up while this batch was filled: their events
  // (this batch's and earlier ones') stay valid until it is released.
  std::vector<DecodedChunk> retired;
};

EventPipeline::EventPipeline(StreamMerger& merger, uint64_t threaded_min_blocks)
    : merger_(merger) {
  current_ = std::make_unique<Batch>();
  if (merger.block_count() >= threaded_min_blocks) {
    threaded_ = true;
    producer_ = std::thread([this] { Produce(); });
  }
}

EventPipeline::~EventPipeline() {
  if (threaded_) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    producer_cv_.notify_all();
    producer_.join();
  }
  // The batches (and the chunks they hold) go with the pipeline.
  merger_.set_retired_sink(nullptr);
}

bool EventPipeline::Fill(Batch& batch) {
  batch.runs.clear();
  merger_.set_retired_sink(&batch.retired);
  size_t events = 0;
  Run run;
  while (events < kBatchEvents && batch.runs.size() < kBatchRuns && merger_.NextRun(&run)) {
    batch.runs.push_back(run);
    events += static_cast<size_t>(run.end - run.begin);
  }
  return !batch.runs.empty();
}

void EventPipeline::Release(Batch& batch) {
  for (DecodedChunk& chunk : batch.retired) merger_.Recycle(std::move(chunk));
  batch.retired.clear();
  batch.runs.clear();
}

void EventPipeline::Produce() {
  for (;;) {
    std::unique_ptr<Batch> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (queue_.size() >= kMaxQueuedBatches) {
        // Full: sleep until the consumer has taken half of it (it wakes
        // this thread only then), so each wake-up fills several batches.
        producer_waiting_ = true;
        producer_cv_.wait(lock,
                          [this] { return stop_ || queue_.size() <= kMaxQueuedBatches / 2; });
        producer_waiting_ = false;
      }
      if (stop_) return;
      if (!spare_.empty()) {
        batch = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    if (batch == nullptr) batch = std::make_unique<Batch>();
    bool more = Fill(*batch);
    // An exhausted merger may still have retired chunks into the batch.
    if (!more) Release(*batch);
    std::lock_guard<std::mutex> lock(mu_);
    if (more) queue_.push_back(std::move(batch));
    const bool last = !more || !merger_.status().ok();
    if (last) {
      done_ = true;
      producer_status_ = merger_.status();
    }
    if (consumer_waiting_) consumer_cv_.notify_one();
    if (last) return;
  }
}

bool EventPipeline::NextRun(Run* run) {
  if (!threaded_) {
    // On the calling thread: the merger keeps the last run's chunk until
    // the next call, then recycles it (no retired sink).
    if (finished_) return false;
    if (merger_.NextRun(run)) return true;
    finished_ = true;
    status_ = merger_.status();
    return false;
  }
  while (current_pos_ >= current_->runs.size()) {
    if (!NextBatch()) return false;
  }
  *run = current_->runs[current_pos_++];
  return true;
}

bool EventPipeline::NextBatch() {
  if (finished_) return false;
  // The previous batch is consumed: its retired chunks go back.
  Release(*current_);
  current_pos_ = 0;
  std::unique_lock<std::mutex> lock(mu_);
  spare_.push_back(std::move(current_));
  if (queue_.empty() && !done_) {
    consumer_waiting_ = true;
    consumer_cv_.wait(lock, [this] { return !queue_.empty() || done_; });
    consumer_waiting_ = false;
  }
  if (queue_.empty()) {
    finished_ = true;
    status_ = producer_status_;
    current_ = std::make_unique<Batch>();
    return false;
  }
  current_ = std::move(queue_.front());
  queue_.pop_front();
  if (producer_waiting_ && queue_.size() <= kMaxQueuedBatches / 2) producer_cv_.notify_one();
  return true;
}

}  // namespace heapsight::analyzer
