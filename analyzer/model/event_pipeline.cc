// analyzer/model/event_pipeline.cc: see event_pipeline.h.
#include "analyzer/model/event_pipeline.h"

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
  std::unique_ptr<Event[]> events{new Event[kBatchEvents]};
  size_t count = 0;
  std::vector<std::unique_ptr<FullRecord>> full;
  void Clear() {
    count = 0;
    full.clear();
  }
};

namespace {

bool NeedsFullCopy(RecordTag tag) {
  return tag == RecordTag::kModule || tag == RecordTag::kProcess ||
         tag == RecordTag::kMarker || tag == RecordTag::kExec || tag == RecordTag::kEnd ||
         tag == RecordTag::kLeakScan ||
         tag == RecordTag::kBlockClasses || tag == RecordTag::kFreeError;
}

}  // namespace

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
    const Record* r = merger_.Next(&stream);
    if (r == nullptr) return batch.count != 0;
    // Written in place: a local Event copied in would be read back in wider
    // loads than its byte fields were stored with (a store-forwarding stall).
    Event& e = batch.events[batch.count++];
    const RecordTag tag = r->tag;
    e.tag = tag;
    e.api = r->api;
    e.code = 0;
    e.stream = static_cast<uint32_t>(stream);
    e.time_us = r->time_us;
    e.id = r->id;
    e.old_id = r->old_id;
    e.size = r->size;
    e.stack = r->stack;
    e.value = 0;
    e.full = nullptr;
    switch (tag) {
      case RecordTag::kRealloc:
        e.value = r->time2_us;
        break;
      case RecordTag::kStackNode:
        e.value = r->stack_node.node;
        e.old_id = r->stack_node.parent;
        e.size = r->stack_node.ip;
        break;
      case RecordTag::kModule:
      case RecordTag::kModuleUnload:
        e.value = r->module.id;
        break;
      case RecordTag::kRss:
        e.value = r->rss_bytes;
        break;
      case RecordTag::kLost:
        e.value = r->lost_events;
        break;
      case RecordTag::kFork:
        e.value = r->child_pid;
        break;
      case RecordTag::kThreadStart:
        e.value = r->thread_start.tid;
        break;
      case RecordTag::kFreeError:
        e.code = static_cast<uint8_t>(r->free_error.error);
        break;
      case RecordTag::kEnd:
        e.code = static_cast<uint8_t>(r->end.reason);
        break;
      default:
        break;
    }
    if (NeedsFullCopy(tag)) {
      auto full = std::make_unique<FullRecord>();
      full->record = *r;
      int strings = 0;
      format::ForEachStringField(full->record, [&](std::string_view& view) {
        std::string& owned = strings++ == 0 ? full->text : full->text2;
        owned = std::string(view);
        view = owned;
      });
      full->argv.assign(r->process.argv.begin(), r->process.argv.end());
      full->record.process.argv.assign(full->argv.begin(), full->argv.end());
      e.full = &full->record;
      batch.full.push_back(std::move(full));
    }
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
