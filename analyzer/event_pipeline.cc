// analyzer/event_pipeline.cc: see event_pipeline.h.
#include "analyzer/event_pipeline.h"

#include <utility>

namespace heapsight::analyzer {

using format::Record;
using format::RecordTag;

// A self-owned copy of a record with strings.
struct FullRecord {
  Record record;
  std::string text;
  std::string text2;
  std::vector<std::string> argv;
};

struct EventPipeline::Batch {
  std::vector<Event> events;
  std::vector<std::unique_ptr<FullRecord>> full;
  void Clear() {
    events.clear();
    full.clear();
  }
};

namespace {

bool NeedsFullCopy(RecordTag tag) {
  return tag == RecordTag::kModule || tag == RecordTag::kProcess ||
         tag == RecordTag::kMarker || tag == RecordTag::kExec;
}

}  // namespace

EventPipeline::EventPipeline(StreamMerger& merger, uint64_t threaded_min_blocks)
    : merger_(merger) {
  current_ = std::make_unique<Batch>();
  current_->events.reserve(kBatchEvents);
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
  while (batch.events.size() < kBatchEvents) {
    const Record* r = merger_.Next(&stream);
    if (r == nullptr) return !batch.events.empty();
    Event e;
    e.tag = r->tag;
    e.api = r->api;
    e.code = r->code;
    e.stream = static_cast<uint32_t>(stream);
    e.time_us = r->time_us;
    e.time2_us = r->time2_us;
    e.size = r->size;
    e.stack = r->stack;
    e.id = r->id;
    e.old_id = r->old_id;
    e.value = r->value;
    e.value2 = r->value2;
    e.ip = r->ip;
    e.exit_status = r->exit_status;
    e.full = nullptr;
    if (NeedsFullCopy(r->tag)) {
      auto full = std::make_unique<FullRecord>();
      full->record = *r;
      full->text = std::string(r->text);
      full->text2 = std::string(r->text2);
      full->record.text = full->text;
      full->record.text2 = full->text2;
      full->argv.assign(r->argv.begin(), r->argv.end());
      full->record.argv.assign(full->argv.begin(), full->argv.end());
      e.full = &full->record;
      batch.full.push_back(std::move(full));
    }
    batch.events.push_back(e);
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
    if (batch == nullptr) {
      batch = std::make_unique<Batch>();
      batch->events.reserve(kBatchEvents);
    }
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

const Event* EventPipeline::Next() {
  if (pos_ < current_->events.size()) return &current_->events[pos_++];
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
