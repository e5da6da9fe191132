// analyzer/model/event_pipeline.cc: see event_pipeline.h.
#include "analyzer/model/event_pipeline.h"

#include <utility>

namespace heapsight::analyzer {

struct EventPipeline::Batch {
  std::unique_ptr<const Event*[]> events{new const Event*[kBatchEvents]};
  size_t count = 0;
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
  batch.count = 0;
  merger_.set_retired_sink(&batch.retired);
  size_t stream = 0;
  while (batch.count < kBatchEvents) {
    const Event* r = merger_.Next(&stream);
    if (r == nullptr) break;
    batch.events[batch.count++] = r;
  }
  return batch.count != 0;
}

void EventPipeline::Release(Batch& batch) {
  for (DecodedChunk& chunk : batch.retired) merger_.Recycle(std::move(chunk));
  batch.retired.clear();
  batch.count = 0;
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

const Event* const* EventPipeline::NextBatch(size_t* count) {
  if (finished_) return nullptr;
  // The previous batch is consumed: its retired chunks go back.
  Release(*current_);
  if (!threaded_) {
    if (!Fill(*current_)) {
      Release(*current_);
      finished_ = true;
      status_ = merger_.status();
      return nullptr;
    }
    *count = current_->count;
    return current_->events.get();
  }
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
    return nullptr;
  }
  current_ = std::move(queue_.front());
  queue_.pop_front();
  if (producer_waiting_ && queue_.size() <= kMaxQueuedBatches / 2) producer_cv_.notify_one();
  *count = current_->count;
  return current_->events.get();
}

}  // namespace heapsight::analyzer
