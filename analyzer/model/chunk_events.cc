// analyzer/model/chunk_events.cc: see chunk_events.h.
#include "analyzer/model/chunk_events.h"

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

void ToEvent(const Record& r, Event* out) {
  // Written in place: a local Event copied in would be read back in wider
  // loads than its byte fields were stored with (a store-forwarding stall).
  Event& e = *out;
  const RecordTag tag = r.tag;
  e.tag = tag;
  e.api = r.api;
  e.code = 0;
  e.stream = 0;
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

void DecodeChunk(const uint8_t* data, size_t size, DecodedChunk* out, bool compact_frees) {
  out->Clear();
  format::ChunkDecoder decoder(data, size, compact_frees);
  if (!decoder.ok()) {
    out->error = decoder.error();
    return;
  }
  // Hot records take 4 to 8 bytes of a chunk; reserving for one per 6 raw
  // bytes avoids most regrowth without holding much unused memory.
  out->events.reserve(size / 6 + 16);
  Record r;
  while (decoder.Next(&r)) {
    out->events.emplace_back();
    Event& e = out->events.back();
    ToEvent(r, &e);
    if (compact_frees && r.tag == RecordTag::kFree) {
      e.code = kCompactFree;
    } else if (compact_frees && r.tag == RecordTag::kRealloc) {
      // The old block (a compact free at the free time), then the new one.
      e.tag = RecordTag::kFree;
      e.code = kCompactReallocFree;
      e.id = 0;
      e.old_id = 0;
      e.stack = r.old_stack;
      e.size = r.old_size;
      e.value = 0;
      out->events.emplace_back();
      Event& a = out->events.back();
      ToEvent(r, &a);
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
}

}  // namespace heapsight::analyzer
