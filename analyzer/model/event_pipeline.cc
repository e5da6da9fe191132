// analyzer/model/event_pipeline.cc: see event_pipeline.h.
#include "analyzer/model/event_pipeline.h"

#include <utility>

namespace heapsight::analyzer {

using format::Record;
using format::RecordTag;

struct EventPipeline::Batch {
  std::unique_ptr<Event[]> events{new Event[kBatchEvents]};
  size_t count = 0;
  std::vector<std::unique_ptr<FullRecord>> full;
  void Clear() {
    count = 0;
    full.clear();
  }
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
    cv_.notify_all();
    producer_.join();
  }
}

bool EventPipeline::Fill(Batch& batch) {
  batch.Clear();
  size_t stream = 0;
  while (batch.count < kBatchEvents) {
    const Event* r = merger_.Next(&stream);
    if (r == nullptr) return batch.count != 0;
    batch.events[batch.count++] = *r;
    // The full record moves into the batch: the merger drops its chunk
    // when it moves past it, the consumer reads the event later.
    if (r->full != nullptr) batch.full.push_back(merger_.TakeFull());
  }
  return true;
}

void EventPipeline::Produce() {
  for (;;) {
    std::unique_ptr<Batch> batch;
    {
      std::unique_lock<std::mutex> lock(mu_);
      cv_.wait(lock, [this] { return stop_ || queue_.size() < kMaxQueuedBatches; });
      if (stop_) return;
      if (!spare_.empty()) {
        batch = std::move(spare_.back());
        spare_.pop_back();
      }
    }
    if (batch == nullptr) batch = std::make_unique<Batch>();
    bool more = Fill(*batch);
    std::lock_guard<std::mutex> lock(mu_);
    if (more) queue_.push_back(std::move(batch));
    if (!more || !merger_.status().ok()) {
      done_ = true;
      producer_status_ = merger_.status();
      cv_.notify_all();
      return;
    }
    cv_.notify_all();
  }
}

const Event* EventPipeline::NextBatch(size_t* count) {
  const Event* first = Next();
  if (first == nullptr) return nullptr;
  *count = current_->count - (pos_ - 1);
  pos_ = current_->count;
  return first;
}

const Event* EventPipeline::Next() {
  if (pos_ < current_->count) return &current_->events[pos_++];
  if (finished_) return nullptr;
  if (!threaded_) {
    if (!Fill(*current_)) {
      finished_ = true;
      status_ = merger_.status();
      return nullptr;
    }
    pos_ = 0;
    return &current_->events[pos_++];
  }
  std::unique_lock<std::mutex> lock(mu_);
  spare_.push_back(std::move(current_));
  cv_.notify_all();
  cv_.wait(lock, [this] { return !queue_.empty() || done_; });
  if (queue_.empty()) {
    finished_ = true;
    status_ = producer_status_;
    current_ = std::make_unique<Batch>();
    pos_ = 0;
    return nullptr;
  }
  current_ = std::move(queue_.front());
  queue_.pop_front();
  pos_ = 0;
  return &current_->events[pos_++];
}

}  // namespace heapsight::analyzer
