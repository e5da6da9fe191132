// analyzer/model/chunk_events.cc: see chunk_events.h.
#include "analyzer/model/chunk_events.h"

#include <bit>
#include <cstddef>
#include <cstring>
#include <new>
#include <string_view>
#include <utility>

#include "analyzer/model/chunk_pairing.h"

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

void ToAddressEvent(const Record& r, uint32_t stream, Event* e) {
  ToEvent(r, stream, e);
  switch (r.tag) {
    case RecordTag::kAlloc:
      e->code = static_cast<uint8_t>(r.order);
      e->address = r.address;
      break;
    case RecordTag::kFree:
      e->code = static_cast<uint8_t>(r.order);
      e->id = 0;
      e->address = r.address;
      break;
    case RecordTag::kRealloc:
      e->code = static_cast<uint8_t>(r.order);
      e->paired = static_cast<uint8_t>(r.old_order);
      e->old_id = r.old_address;
      e->address = r.address;
      break;
    default:
      break;
  }
}

void EventArray::Grow(size_t n) {
  size_t want = size_ + n;
  if (want < capacity_ + capacity_ / 2) want = capacity_ + capacity_ / 2;
  void* grown = std::realloc(data_, want * sizeof(Event));
  if (grown == nullptr) throw std::bad_alloc();
  data_ = static_cast<Event*>(grown);
  capacity_ = want;
}

namespace {

// The first 8 bytes of an Event (tag, api, code, paired = 0, stream),
// stored as one word: byte stores followed by the wider loads of a later
// copy stall (store forwarding), and one store is fewer instructions than
// four. `paired` is the pairing's (ChunkPairer) for the event itself; an
// allocation's kPairedBlock is set later, when its free is decoded.
static_assert(offsetof(Event, tag) == 0 && offsetof(Event, api) == 1 &&
              offsetof(Event, code) == 2 && offsetof(Event, paired) == 3 &&
              offsetof(Event, stream) == 4 &&
              offsetof(Event, time_us) == 8);
static_assert(std::endian::native == std::endian::little);
inline uint64_t EventHead(RecordTag tag, format::Api api, uint8_t code, uint32_t stream,
                          uint8_t paired = 0) {
  return uint64_t{static_cast<uint8_t>(tag)} | uint64_t{static_cast<uint8_t>(api)} << 8 |
         uint64_t{code} << 16 | uint64_t{paired} << 24 | uint64_t{stream} << 32;
}

// Writes one hot Event at *cursor and moves the cursor past it: every field
// in place (a push_back of a braced temporary copied a stack Event with
// 16-byte loads the CPU could not forward from its byte stores, a
// store-forwarding stall on every event: 20% of a decode worker's time on
// the python trace by perf, 2026-12-06).
[[gnu::always_inline]] inline void PutHot(Event*& cursor, uint64_t head, uint64_t time_us,
                                          uint64_t id, uint64_t old_id, uint64_t size,
                                          uint64_t stack, uint64_t value) {
  Event* e = cursor++;
  std::memcpy(static_cast<void*>(e), &head, sizeof head);
  e->time_us = time_us;
  e->id = id;
  e->old_id = old_id;
  e->size = size;
  e->stack = stack;
  e->value = value;
  e->full = nullptr;
}

// An address-frees chunk (DecodeChunk's address_frees): every record
// through the checked path (the fast path declines them), the hot ones
// with their addresses and order values (chunk_events.h). No pairing here:
// a free's block is the live one at its address in merged order.
// `to_convert` (DecodeAddressChunkToConvert): a kAlloc's alignment in
// `value`, and a FullRecord for every record but the hot ones and stack
// nodes.
void DecodeAddressChunk(const uint8_t* data, size_t size, DecodedChunk* out, uint32_t stream,
                        bool to_convert) {
  format::ChunkDecoder decoder(data, size, /*compact_frees=*/false, /*address_frees=*/true);
  out->released.assign(DecodedChunk::kReleasedPad, 0);
  if (!decoder.ok()) {
    out->error = decoder.error();
    return;
  }
  EventArray& events = out->events;
  events.Reserve(decoder.max_records_left());
  std::array<uint64_t, kEventSizeBuckets>& sizes = out->allocation_sizes;
  uint64_t last_time = 0;
  bool ordered = true;
  Record r;
  for (;;) {
    // The hot records through the fast path, straight into Events (as
    // ToAddressEvent writes them).
    Event* const first = events.data() + events.size();
    Event* cursor = first;
    const size_t hot = decoder.DecodeAddressHotRecords(
        events.capacity() - events.size(), [&](const format::AddressHotRecord& h) {
          ordered &= h.time_us >= last_time;
          last_time = h.tag == RecordTag::kRealloc ? h.time2_us : h.time_us;
          if (h.tag != RecordTag::kFree) ++sizes[EventSizeBucket(h.size)];
          Event* e = cursor;
          PutHot(cursor,
                 EventHead(h.tag, h.api, h.order, stream,
                           h.tag == RecordTag::kRealloc ? h.old_order : 0),
                 h.time_us, h.id, h.old_address, h.size, h.stack,
                 to_convert && h.tag == RecordTag::kAlloc ? h.alignment : h.time2_us);
          e->address = h.address;
        });
    if (hot != 0) {
      events.set_size(events.size() + hot);
      if (events.size() == events.capacity()) events.Reserve(decoder.max_records_left() + 16);
      continue;
    }
    const size_t nodes = decoder.DecodeStackNodes(
        events.capacity() - events.size(), [&](uint64_t node, uint64_t parent, uint64_t ip,
                                               uint64_t time_us) {
          Event* cursor = events.data() + events.size();
          ordered &= time_us >= last_time;
          last_time = time_us;
          PutHot(cursor, EventHead(RecordTag::kStackNode, format::Api::kUnknown, 0, stream),
                 time_us, 0, parent, ip, 0, node);
          events.set_size(events.size() + 1);
        });
    if (nodes != 0) continue;
    if (!decoder.Next(&r)) break;
    Event& e = events.Append();
    ToAddressEvent(r, stream, &e);
    ordered &= e.time_us >= last_time;
    last_time = e.time_us;
    switch (r.tag) {
      case RecordTag::kAlloc:
        ++sizes[EventSizeBucket(r.size)];
        if (to_convert) e.value = r.alignment;
        break;
      case RecordTag::kFree:
        break;
      case RecordTag::kRealloc:
        ++sizes[EventSizeBucket(r.size)];
        if (r.time2_us > last_time) last_time = r.time2_us;
        break;
      case RecordTag::kStackNode:
        break;
      default:
        if (NeedsFullRecord(r.tag) || to_convert) {
          out->full.push_back(CopyRecord(r));
          e.full = &out->full.back()->record;
        }
        break;
    }
  }
  out->ordered = ordered;
  if (!decoder.ok()) out->error = decoder.error();
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
                 uint32_t stream, bool address_frees) {
  out->Clear();
  if (address_frees) {
    DecodeAddressChunk(data, size, out, stream, /*to_convert=*/false);
    return;
  }
  format::ChunkDecoder decoder(data, size, compact_frees);
  if (!decoder.ok()) {
    out->error = decoder.error();
    out->released.assign(DecodedChunk::kReleasedPad, 0);
    return;
  }
  // At most one Event per record, two for a compact realloc: room for all
  // of them up front (reserved room costs no page until written), so the
  // hot loop writes through a pointer with no capacity check per event.
  const size_t per_record = compact_frees ? 2 : 1;
  EventArray& events = out->events;
  events.Reserve(decoder.max_records_left() * per_record);
  // The events' times never decrease unless the clock wraps (a corrupt
  // chunk): checked as they are written.
  uint64_t last_time = 0;
  bool ordered = true;
  auto check_order = [&](uint64_t time_us) {
    ordered &= time_us >= last_time;
    last_time = time_us;
  };
  // Exact traces: blocks allocated and released in the chunk are paired as
  // they are decoded (chunk_pairing.h), with the records' bound as span.
  // (Event indices and the pairer's slot states share 32 bits.)
  const uint64_t bound = decoder.max_records_left();
  const bool pair = !compact_frees && bound < (UINT32_MAX - 1) / 2;
  ChunkPairer pairer(&out->pairing, pair ? 2 * bound + 64 : 0);
  // Room for a release per record, so the hot loop's appends never
  // reallocate (reserved room costs no page until written).
  std::vector<uint64_t>& released = out->released;
  released.reserve(bound + DecodedChunk::kReleasedPad);
  std::array<uint64_t, kEventSizeBuckets>& sizes = out->allocation_sizes;
  Record r;
  for (;;) {
    // The hot records (nearly all of them) straight into Events: the
    // decoder's fast path, no Record, every field written once. The Event
    // fields a kind does not use are 0.
    Event* const base = events.data();
    Event* cursor = base + events.size();
    const size_t room = (events.capacity() - events.size()) / per_record;
    const size_t decoded = decoder.DecodeHotRecords(room, [&](const format::HotRecord& h) {
      check_order(h.time_us);
      switch (h.tag) {
        case RecordTag::kAlloc:
          ++sizes[EventSizeBucket(h.size)];
          if (pair) pairer.Allocated(static_cast<uint32_t>(cursor - base), h.id);
          PutHot(cursor, EventHead(RecordTag::kAlloc, h.api, 0, stream), h.time_us, h.id, 0,
                 h.size, h.stack, 0);
          break;
        case RecordTag::kFree:
          if (compact_frees) {
            PutHot(cursor, EventHead(RecordTag::kFree, h.api, kCompactFree, stream), h.time_us,
                   0, 0, h.size, h.stack, 0);
          } else if (const Event* allocation = pairer.Pair(base, h.id); allocation != nullptr) {
            // The free carries its block (chunk_events.h's kPairedBlock).
            PutHot(cursor, EventHead(RecordTag::kFree, h.api, 0, stream, kPairedBlock),
                   h.time_us, h.id, 0, allocation->size, allocation->stack,
                   static_cast<uint64_t>(allocation->api));
          } else {
            PutHot(cursor, EventHead(RecordTag::kFree, h.api, 0, stream), h.time_us, h.id, 0, 0,
                   0, 0);
            released.push_back(h.id);
          }
          break;
        default:  // kRealloc
          ++sizes[EventSizeBucket(h.size)];  // the new block's
          if (compact_frees) {
            // The old block (a compact free at the free time), then the new one.
            PutHot(cursor, EventHead(RecordTag::kFree, h.api, kCompactReallocFree, stream),
                   h.time_us, 0, 0, h.old_size, h.old_stack, 0);
            check_order(h.time2_us);
            PutHot(cursor, EventHead(RecordTag::kAlloc, h.api, 0, stream), h.time2_us, h.id, 0,
                   h.size, h.stack, 0);
          } else {
            // The old block first (kPairedOldBlock: old_id is the distance
            // back to its allocation), then the new one.
            const uint32_t index = static_cast<uint32_t>(cursor - base);
            pairer.StartAt(h.id);
            uint8_t paired = 0;
            uint64_t old = h.old_id;
            if (const Event* a = pairer.Pair(base, h.old_id); a != nullptr) {
              paired = kPairedOldBlock;
              old = index - static_cast<uint32_t>(a - base);
            }
            pairer.Allocated(index, h.id);
            PutHot(cursor, EventHead(RecordTag::kRealloc, h.api, 0, stream, paired), h.time_us,
                   h.id, old, h.size, h.stack, h.time2_us);
            if (paired == 0) released.push_back(old);
          }
          break;
      }
    });
    events.set_size(static_cast<size_t>(cursor - events.data()));
    if (decoded == room) {  // out of room (the bound above makes this rare)
      events.Reserve(decoder.max_records_left() * per_record + per_record);
      continue;
    }
    // Stack nodes, then back to the hot records (out of room: the hot
    // loop's room is 0, and it reserves more).
    Event* node_cursor = base + events.size();
    const size_t nodes = decoder.DecodeStackNodes(
        events.capacity() - events.size(),
        [&](uint64_t node, uint64_t parent, uint64_t ip, uint64_t time_us) {
          // As ToEvent writes a stack node (its api, id and stack unused: 0).
          check_order(time_us);
          PutHot(node_cursor, EventHead(RecordTag::kStackNode, format::Api::kUnknown, 0, stream),
                 time_us, 0, parent, ip, 0, node);
        });
    if (nodes != 0) {
      events.set_size(static_cast<size_t>(node_cursor - events.data()));
      continue;
    }
    if (!decoder.Next(&r)) break;
    const size_t first = events.size();
    events.Reserve(2);  // so a second Append (a compact realloc) keeps `e` in place
    Event& e = events.Append();
    ToEvent(r, stream, &e);
    check_order(e.time_us);
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
      Event& a = events.Append();
      ToEvent(r, stream, &a);
      a.tag = RecordTag::kAlloc;
      a.time_us = r.time2_us;
      a.old_id = 0;
      a.value = 0;
      check_order(a.time_us);
    }
    if (NeedsFullRecord(r.tag)) {
      out->full.push_back(CopyRecord(r));
      e.full = &out->full.back()->record;
    }
    // After the Event is complete (a record of any kind: barriers too).
    if (pair) pairer.Add(events.data(), static_cast<uint32_t>(events.size() - 1));
    for (size_t i = first; i < events.size(); ++i) {
      const Event& e = events[i];
      if (IsRelease(e)) released.push_back(e.tag == RecordTag::kFree ? e.id : e.old_id);
      if (e.tag == RecordTag::kAlloc || e.tag == RecordTag::kRealloc) {
        ++sizes[EventSizeBucket(e.size)];
      }
    }
  }
  released.insert(released.end(), DecodedChunk::kReleasedPad, 0);
  out->ordered = ordered;
  if (!decoder.ok()) out->error = decoder.error();
}

void DecodeAddressChunkToConvert(const uint8_t* data, size_t size, DecodedChunk* out,
                                 uint32_t stream) {
  out->Clear();
  DecodeAddressChunk(data, size, out, stream, /*to_convert=*/true);
}

}  // namespace heapsight::analyzer
