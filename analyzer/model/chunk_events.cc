// analyzer/model/chunk_events.cc: see chunk_events.h.
#include "analyzer/model/chunk_events.h"

#include "analyzer/model/chunk_pairing.h"

#include <string_view>
#include <utility>

namespace heapsight::analyzer {

using format::Record;
using format::RecordTag;

bool NeedsFullRecord(RecordTag tag) {
  return tag == RecordTag::kModule || tag == RecordTag::kProcess ||
         tag == RecordTag::kMarker || tag == RecordTag::kExec || tag == RecordTag::kEnd ||
         tag == RecordTag::kLeakScan || tag == RecordTag::kBlockClasses ||
         tag == RecordTag::kFreeError;
}

void ToEvent(const Record& r, uint32_t stream, Event* out) {
  // Written in place: a local Event copied in would be read back in wider
  // loads than its byte fields were stored with (a store-forwarding stall).
  Event& e = *out;
  const RecordTag tag = r.tag;
  e.tag = tag;
  e.api = r.api;
  e.code = 0;
  e.paired = 0;
  e.stream = stream;
  e.time_us = r.time_us;
  e.id = r.id;
  e.old_id = r.old_id;
  e.size = r.size;
  e.stack = r.stack;
  e.value = 0;
  e.full = nullptr;
  switch (tag) {
    case RecordTag::kRealloc:
      e.value = r.time2_us;
      break;
    case RecordTag::kStackNode:
      e.value = r.stack_node.node;
      e.old_id = r.stack_node.parent;
      e.size = r.stack_node.ip;
      break;
    case RecordTag::kModule:
    case RecordTag::kModuleUnload:
      e.value = r.module.id;
      break;
    case RecordTag::kRss:
      e.value = r.rss_bytes;
      break;
    case RecordTag::kLost:
      e.value = r.lost_events;
      break;
    case RecordTag::kFork:
      e.value = r.child_pid;
      break;
    case RecordTag::kThreadStart:
      e.value = r.thread_start.tid;
      break;
    case RecordTag::kFreeError:
      e.code = static_cast<uint8_t>(r.free_error.error);
      break;
    case RecordTag::kEnd:
      e.code = static_cast<uint8_t>(r.end.reason);
      break;
    default:
      break;
  }
}

namespace {

// Appends one hot Event, every field written in place. A push_back of a
// braced temporary builds the Event on the stack with byte and word stores
// and copies it with 16-byte loads, which the CPU cannot forward from those
// stores: a store-forwarding stall on every event, 20% of a decode worker's
// time on the python trace (perf, 2026-12-06).
inline void PutHot(std::vector<Event>& events, RecordTag tag, format::Api api, uint8_t code,
                   uint32_t stream, uint64_t time_us, uint64_t id, uint64_t old_id,
                   uint64_t size, uint64_t stack, uint64_t value) {
  Event& e = events.emplace_back();
  e.tag = tag;
  e.api = api;
  e.code = code;
  e.paired = 0;
  e.stream = stream;
  e.time_us = time_us;
  e.id = id;
  e.old_id = old_id;
  e.size = size;
  e.stack = stack;
  e.value = value;
  e.full = nullptr;
}

}  // namespace

std::unique_ptr<FullRecord> CopyRecord(const Record& r) {
  auto full = std::make_unique<FullRecord>();
  full->record = r;
  int strings = 0;
  format::ForEachStringField(full->record, [&](std::string_view& view) {
    std::string& owned = strings++ == 0 ? full->text : full->text2;
    owned = std::string(view);
    view = owned;
  });
  full->argv.assign(r.process.argv.begin(), r.process.argv.end());
  full->record.process.argv.assign(full->argv.begin(), full->argv.end());
  return full;
}

void DecodeChunk(const uint8_t* data, size_t size, DecodedChunk* out, bool compact_frees,
                 uint32_t stream) {
  out->Clear();
  format::ChunkDecoder decoder(data, size, compact_frees);
  if (!decoder.ok()) {
    out->error = decoder.error();
    return;
  }
  // Hot records take 4 to 8 bytes of a chunk; reserving for one per 6 raw
  // bytes avoids most regrowth without holding much unused memory.
  std::vector<Event>& events = out->events;
  events.reserve(size / 6 + 16);
  format::HotRecord h;
  Record r;
  for (;;) {
    // The hot records (nearly all of them) straight into Events: the
    // decoder's fast path, no Record, every field written once. The Event
    // fields a kind does not use are 0.
    if (decoder.NextHot(&h)) {
      switch (h.tag) {
        case RecordTag::kAlloc:
          PutHot(events, RecordTag::kAlloc, h.api, 0, stream, h.time_us, h.id, 0, h.size,
                 h.stack, 0);
          break;
        case RecordTag::kFree:
          if (compact_frees) {
            PutHot(events, RecordTag::kFree, h.api, kCompactFree, stream, h.time_us, 0, 0,
                   h.size, h.stack, 0);
          } else {
            PutHot(events, RecordTag::kFree, h.api, 0, stream, h.time_us, h.id, 0, 0, 0, 0);
          }
          break;
        default:  // kRealloc
          if (compact_frees) {
            // The old block (a compact free at the free time), then the new one.
            PutHot(events, RecordTag::kFree, h.api, kCompactReallocFree, stream, h.time_us, 0,
                   0, h.old_size, h.old_stack, 0);
            PutHot(events, RecordTag::kAlloc, h.api, 0, stream, h.time2_us, h.id, 0, h.size,
                   h.stack, 0);
          } else {
            PutHot(events, RecordTag::kRealloc, h.api, 0, stream, h.time_us, h.id, h.old_id,
                   h.size, h.stack, h.time2_us);
          }
          break;
      }
      continue;
    }
    if (!decoder.Next(&r)) break;
    events.emplace_back();
    Event& e = events.back();
    ToEvent(r, stream, &e);
    if (compact_frees && r.tag == RecordTag::kFree) {
      e.code = kCompactFree;
    } else if (compact_frees && r.tag == RecordTag::kRealloc) {
      // As above.
      e.tag = RecordTag::kFree;
      e.code = kCompactReallocFree;
      e.id = 0;
      e.old_id = 0;
      e.stack = r.old_stack;
      e.size = r.old_size;
      e.value = 0;
      events.emplace_back();
      Event& a = events.back();
      ToEvent(r, stream, &a);
      a.tag = RecordTag::kAlloc;
      a.time_us = r.time2_us;
      a.old_id = 0;
      a.value = 0;
    }
    if (NeedsFullRecord(r.tag)) {
      out->full.push_back(CopyRecord(r));
      e.full = &out->full.back()->record;
    }
  }
  if (!decoder.ok()) out->error = decoder.error();
  // One pass over the times while they are in cache (a chunk is a few
  // hundred KB of events).
  uint64_t last = 0;
  bool ordered = true;
  for (const Event& e : events) {
    ordered &= e.time_us >= last;
    last = e.time_us;
  }
  out->ordered = ordered;
  if (!compact_frees) PairInChunk(events.data(), events.size(), &out->pairing);
}

}  // namespace heapsight::analyzer
