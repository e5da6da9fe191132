// format/chunk_decoder.h: decodes the records of one chunk.
//
// Reader side only (the analyzer, the dump tool and tests). Chunks are
// untrusted input: every field is bounds-checked and a malformed record stops
// decoding with an error naming the offset. String fields are views into the
// chunk buffer, valid while that buffer lives.
//
// Speed: this is the analyzer's innermost loop (one call per event). The
// common records (kAlloc, kFree, kRealloc) take a fast path
// (DecodeHotRecords) whose varint reads skip the per-byte end checks while
// a budget of records that surely fit in what is left of each stream lasts;
// the checked path decodes anything the fast path declines, so both give
// the same records and the same errors. A record sets every field of its
// own kind; the fields of other kinds keep the values of earlier records,
// except the lists (segments, argv, ids), which every record clears, and
// the string views, which every record but kAlloc, kFree and kRealloc
// clears.
#ifndef HEAPSIGHT_FORMAT_CHUNK_DECODER_H_
#define HEAPSIGHT_FORMAT_CHUNK_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "format/chunk_encoder.h"
#include "format/trace_format.h"
#include "format/varint.h"

namespace heapsight::format {

// One decoded record. `tag` says which fields hold it: the allocation
// fields for the records about blocks (kAlloc, kFree, kRealloc, kAllocFailed,
// kInherited, kFreeError), otherwise the one per-kind member named after the
// record. See the RecordTag comments in trace_format.h for the layout.
struct Record {
  RecordTag tag = RecordTag::kAlloc;
  uint64_t time_us = 0;    // absolute, since FileHeader.start_monotonic_ns

  // --- Allocation fields.
  Api api = Api::kUnknown;  // the call (kFreeError: the bad call)
  uint64_t time2_us = 0;   // kRealloc: when the new block was allocated
  uint64_t size = 0;
  uint64_t stack = 0;      // leaf stack node, 0 = empty (kFreeError: the bad call's)
  uint64_t alignment = 0;
  uint64_t address = 0;    // 0 unless addresses are recorded (kFreeError: always)
  // kAlloc/kRealloc/kInherited: the new id; kFree: the freed id; kFreeError:
  // the block's allocation id (0 = unknown).
  uint64_t id = 0;
  uint64_t old_id = 0;     // kRealloc: the freed id
  // Compact frees (kFileFlagCompactFrees): a kFree names its block by
  // `stack` and `size` (id is 0); a kRealloc names its old block by
  // old_stack and old_size (old_id is 0). 0 in exact traces.
  uint64_t old_stack = 0;
  uint64_t old_size = 0;
  // Address frees (kFileFlagAddressFrees, version 6): a kFree names its
  // block by `address` (id is 0) and a kRealloc its old block by
  // old_address (old_id is 0); `order` and old_order are the events' order
  // values (format::AddressOrder or kAddressOrderNone) for `address` and
  // old_address. 0 in other traces.
  uint64_t old_address = 0;
  uint64_t order = 0;
  uint64_t old_order = 0;

  // --- One member per other kind.
  struct StackNodeFields {
    uint64_t node = 0;
    uint64_t parent = 0;  // 0 = a root frame
    uint64_t ip = 0;
  } stack_node;
  struct ModuleFields {  // kModule; kModuleUnload sets only `id`
    uint64_t id = 0;
    uint64_t load_address = 0;
    std::string_view path;
    std::string_view build_id;  // raw bytes
    std::vector<SegmentInfo> segments;
  } module;
  struct ProcessFields {
    std::string_view executable;
    std::vector<std::string_view> argv;
    uint64_t parent_pid = 0;
    std::string_view parent_trace;  // "" unless fork child or exec'd image
  } process;
  struct ThreadStartFields {
    uint64_t tid = 0;
    uint64_t creator_index = 0;  // 0 = unknown
  } thread_start;
  uint64_t rss_bytes = 0;        // kRss
  uint64_t child_pid = 0;        // kFork
  uint64_t lost_events = 0;      // kLost
  std::string_view exec_path;    // kExec
  std::string_view marker_name;  // kMarker
  struct EndFields {
    EndReason reason = EndReason::kExit;  // may be a value this reader does not know
    int64_t exit_status = 0;
  } end;
  struct FreeErrorFields {  // kFreeError (with api, address, stack, id above)
    FreeError error = FreeError::kInvalidFree;
    FreeAction action = FreeAction::kPassed;
  } free_error;
  struct LeakScanFields {
    uint64_t scan = 0;  // 1, 2, ... per process
    ScanReason reason = ScanReason::kExit;
    uint64_t duration_us = 0;
    uint64_t threads_stopped = 0;
    uint64_t threads_missed = 0;
    uint64_t root_bytes = 0;
    uint64_t blocks = 0;  // program blocks scanned
    uint64_t class_blocks[kLeakClassCount] = {};  // indexed by LeakClass - 1
    uint64_t class_bytes[kLeakClassCount] = {};
  } leak_scan;
  struct BlockClassesFields {
    uint64_t scan = 0;
    LeakClass leak_class = LeakClass::kDefinite;
    std::vector<uint64_t> ids;
    // Compact traces: each listed block's stack and size (same order as
    // ids); empty otherwise.
    std::vector<uint64_t> stacks;
    std::vector<uint64_t> sizes;
  } block_classes;
};

// The fields of a hot record (kAlloc, kFree, kRealloc), named as in Record,
// for callers that want only those (ChunkDecoder::DecodeHotRecords). The
// fields the record's kind does not set are 0.
struct HotRecord {
  RecordTag tag = RecordTag::kAlloc;
  Api api = Api::kUnknown;
  uint64_t time_us = 0;
  uint64_t time2_us = 0;
  uint64_t size = 0;
  uint64_t stack = 0;
  uint64_t alignment = 0;
  uint64_t address = 0;
  uint64_t id = 0;
  uint64_t old_id = 0;
  uint64_t old_stack = 0;
  uint64_t old_size = 0;
};

// A hot record of an address-frees chunk (ChunkDecoder::
// DecodeAddressHotRecords), its fields named as in Record; those its kind
// does not set are 0.
struct AddressHotRecord {
  RecordTag tag = RecordTag::kAlloc;
  Api api = Api::kUnknown;
  uint8_t order = 0;
  uint8_t old_order = 0;
  uint64_t time_us = 0;
  uint64_t time2_us = 0;
  uint64_t size = 0;
  uint64_t stack = 0;
  uint64_t alignment = 0;
  uint64_t address = 0;
  uint64_t old_address = 0;
  uint64_t id = 0;
};

// Calls fn(std::string_view&) for every string field of r's kind (argv
// aside), e.g. to copy the record out of the chunk buffer its views point
// into. At most two; in field order.
template <typename Fn>
void ForEachStringField(Record& r, Fn&& fn) {
  switch (r.tag) {
    case RecordTag::kModule:
      fn(r.module.path);
      fn(r.module.build_id);
      break;
    case RecordTag::kProcess:
      fn(r.process.executable);
      fn(r.process.parent_trace);
      break;
    case RecordTag::kExec:
      fn(r.exec_path);
      break;
    case RecordTag::kMarker:
      fn(r.marker_name);
      break;
    default:
      break;
  }
}

class ChunkDecoder {
 public:
  // `chunk` points at a ChunkHeader followed by records; `size` is the
  // chunk's raw size. `compact_frees`: the file has kFileFlagCompactFrees
  // (its frees name stacks and sizes, trace_format.h); `address_frees`:
  // kFileFlagAddressFrees (its hot records carry addresses and order
  // values, and its frees no id). Check ok() before Next().
  //
  // Address frees are decoded by the checked path alone (NextHotSlow):
  // FastBudget gives the fast path no budget for them, so that the exact
  // traces' fast loop (DecodeHotRecords) has not one more test per record.
  ChunkDecoder(const uint8_t* chunk, size_t size, bool compact_frees = false,
               bool address_frees = false);

  bool ok() const { return error_.empty(); }
  // Empty while decoding succeeds; otherwise what went wrong and where.
  const std::string& error() const { return error_; }
  const ChunkHeader& header() const { return header_; }

  // Decodes the next record into `out`. Returns false at the end of the
  // chunk or on error (then ok() is false).
  bool Next(Record* out);

  // The fast path, for the hot records that make up most of a chunk:
  // decodes the kAlloc, kFree and kRealloc records from here on and calls
  // sink(const HotRecord&) for each, at most `max_records` of them, and
  // stops before the first record it declines (another kind, a hot record
  // it cannot decode without end checks, or one that is malformed): Next()
  // then decodes that record (or names its error). Returns how many records
  // it decoded. Inlined into the caller with its sink, so a loop over a
  // chunk's records keeps the decoder's state in registers.
  template <typename Sink>
  size_t DecodeHotRecords(size_t max_records, Sink&& sink);

  // The stack nodes' fast path: decodes the kStackNode records from here
  // on, at most `max_records` of them, and calls node_sink(node, parent,
  // ip, time_us) for each (the fields Next sets in Record::stack_node); stops
  // before the first other record, or a stack node it cannot decode
  // without end checks or that is malformed (Next then decodes it, or
  // names its error). Returns how many it decoded. A trace with deep
  // stacks defines hundreds of thousands of nodes, cc1plus's 533 k, one
  // or a few before an allocation: through Next each cost about 400
  // instructions (2026-12-06, cc20). A loop of its own, beside
  // DecodeHotRecords rather than in it: a stack-node case in the hot loop
  // cost the hot records of python and perl about 3 instructions each.
  template <typename NodeSink>
  size_t DecodeStackNodes(size_t max_records, NodeSink&& node_sink);

  // Address frees (the decoder's address_frees): the fast path of their
  // hot records, sink(const AddressHotRecord&) for each, at most
  // `max_records`; stops before the first other record, or one that may
  // run past a stream's end or is malformed (Next then decodes it or names
  // its error: the same records either way). Returns how many it decoded.
  // Apart from the version-4 loop (DecodeHotRecords), which does not test
  // for this mode.
  template <typename Sink>
  size_t DecodeAddressHotRecords(size_t max_records, Sink&& sink);

  // At most this many records are left (each takes at least two bytes of
  // the record stream): a bound for sizing the caller's arrays. Not in an
  // address-frees chunk, whose kFree takes one byte there.
  size_t max_records_left() const { return static_cast<size_t>(end_ - pos_) / 2; }

  // Allocation counter the next kAlloc/kRealloc record will receive.
  uint64_t next_alloc_counter() const { return next_counter_; }

 private:
  bool Fail(const char* what);
  // Bounds-checked readers; on failure they move pos_ to end_ and return false.
  bool ReadVarint(uint64_t* v);
  bool ReadSignedVarint(int64_t* v);
  bool ReadByte(uint8_t* v);
  bool ReadBytes(const uint8_t** data, size_t* len, size_t max_len);
  bool ReadIdRef(uint64_t* id);
  // One id_ref: `v` its first varint, `counter` its second (the full form's
  // counter; 0 otherwise). Own-thread forms read and advance *last_freed.
  // An id_ref's rules (trace_format.h's IdRef): `v`, then for the form
  // naming any thread's block the counter that follows it, read by
  // read_full_counter(uint64_t*) (false: unreadable); `next_counter` is this
  // thread's next allocation counter and *last_freed the counter of its
  // previous free, updated. False: invalid. Shared by the checked path
  // (ReadIdRef) and DecodeHotRecords, each with its own reads.
  template <typename ReadFullCounter>
  [[gnu::always_inline]] static bool DecodeIdRef(uint64_t v, ReadFullCounter&& read_full_counter,
                                                 uint64_t next_counter, uint32_t thread,
                                                 uint64_t* last_freed, uint64_t* id) {
    if ((v & 1) == 0) {  // distance from the next counter
      const uint64_t distance = v >> 1;
      if (distance == 0 || distance > next_counter) return false;
      *last_freed = next_counter - distance;
      *id = MakeAllocId(thread, *last_freed);
      return true;
    }
    if ((v & 3) == 3) {  // difference from the previous free's counter
      const uint64_t own = *last_freed + static_cast<uint64_t>(UnZigZag(v >> 2));
      if (own >= next_counter) return false;  // not allocated yet (or wrapped)
      *last_freed = own;
      *id = MakeAllocId(thread, own);
      return true;
    }
    uint64_t full_counter;  // any thread's id, in full
    if (!read_full_counter(&full_counter)) return false;
    const uint64_t other = v >> 2;
    if (other > UINT32_MAX || full_counter > kAllocCounterMask) return false;
    *id = MakeAllocId(static_cast<uint32_t>(other), full_counter);
    return true;
  }
  bool NextSlow(Record* out, RecordTag tag);
  bool NextHotSlow(Record* out, RecordTag tag);
  // NextHotSlow's rows of an address-frees trace (its time delta read).
  bool NextAddressHot(Record* out, RecordTag tag, const char* what);
  // How many hot records surely decode without end checks from these
  // positions of the record stream and the columns: `records` for any hot
  // record, `frees` (>= records) for exact frees, which read only the
  // record stream and the time column.
  struct Budget {
    uint64_t records;
    uint64_t frees;
  };
  Budget FastBudget(const uint8_t* pos, const uint8_t* times, const uint8_t* sizes,
                    const uint8_t* misc) const;
  // A varint read without end checks: the caller guarantees kMaxVarintBytes
  // readable bytes. False for a varint that overflows 64 bits or runs longer
  // than 10 bytes.
  [[gnu::always_inline]] static bool UncheckedVarint(const uint8_t*& p, uint64_t* v) {
    uint64_t byte = *p++;
    if (byte < 0x80) {
      *v = byte;
      return true;
    }
    uint64_t result = byte & 0x7f;
    for (int shift = 7; shift < 64; shift += 7) {
      byte = *p++;
      if (shift == 63 && byte > 1) return false;
      result |= (byte & 0x7f) << shift;
      if (byte < 0x80) {
        *v = result;
        return true;
      }
    }
    return false;
  }
  bool ReadColumn(int column, uint64_t* v);

  // The most of the record stream a hot record takes (its first byte and
  // three varints: a kRealloc's two-varint id_ref and its stack); FastBudget
  // counts the stream's room in these.
  static constexpr ptrdiff_t kHotRecordBytes = 1 + 3 * static_cast<ptrdiff_t>(kMaxVarintBytes);
  // Whether a stack node record's decoded `node` and `parent_delta` are
  // valid (Next and DecodeStackNodes): node 0 is "no stack"; a parent is
  // older than its child (or 0).
  static bool IsValidStackNode(uint64_t node, uint64_t parent_delta) {
    return node != 0 && parent_delta != 0 && parent_delta <= node;
  }
  // A stack node decodes without end checks when this much of the record
  // stream is left: its tag and four varints (length, node, parent, ip).
  static constexpr ptrdiff_t kStackNodeFastBytes =
      1 + 4 * static_cast<ptrdiff_t>(kMaxVarintBytes);

  ChunkHeader header_{};
  const uint8_t* base_ = nullptr;
  const uint8_t* pos_ = nullptr;
  const uint8_t* end_ = nullptr;
  size_t size_ = 0;
  uint64_t time_us_ = 0;
  uint64_t last_address_ = 0;
  uint64_t last_freed_ = 0;    // counter of the chunk's previous own-thread id_ref
  uint64_t last_node_ = 0;     // of the chunk's previous kStackNode
  uint64_t last_node_ip_ = 0;
  uint64_t next_counter_ = 0;
  std::string error_;
  struct Column {
    const uint8_t* pos = nullptr;
    const uint8_t* end = nullptr;
  };
  Column columns_[kColumnCount];
  uint64_t fast_records_ = 0;  // hot records the fast path may decode unchecked
  uint64_t fast_frees_ = 0;    // the same for exact frees (FastBudget)
  bool compact_ = false;       // kFileFlagCompactFrees
  bool address_ = false;       // kFileFlagAddressFrees (decoded by the checked path only)
};

template <typename Sink>
[[gnu::always_inline]] inline size_t ChunkDecoder::DecodeHotRecords(size_t max_records,
                                                                   Sink&& sink) {
  // The decoder's state lives in locals during the loop and is written back
  // once at its end: the sink's stores (of bytes, which may alias anything)
  // would otherwise make the compiler reload and store every member per
  // record.
  const uint8_t* pos = pos_;
  const uint8_t* times = columns_[kTimeColumn].pos;
  const uint8_t* sizes = columns_[kSizeColumn].pos;
  const uint8_t* misc = columns_[kMiscColumn].pos;
  uint64_t time = time_us_;
  uint64_t address = last_address_;
  uint64_t freed = last_freed_;
  uint64_t counter = next_counter_;
  Budget budget{fast_records_, fast_frees_};
  const uint32_t thread = header_.thread_index;
  const bool compact = compact_;
  size_t n = 0;
  while (n < max_records) {
    // Every hot record counts against the frees' budget (a free's streams
    // are a subset of the others'), so a positive one also means the tag
    // byte is readable. A failed decode (Fail) zeroes both budgets.
    if (budget.frees == 0) {
      budget = FastBudget(pos, times, sizes, misc);
      if (budget.frees == 0) break;
    }
    const uint8_t byte = *pos;
    if (byte < kHotByteBase) break;
    const RecordTag tag = static_cast<RecordTag>(byte / kHotByteBase);
    const uint8_t api = byte % kHotByteBase;
    if (api >= static_cast<uint8_t>(Api::kApiLimit)) break;
    // An exact free reads only the record stream and the time column, so
    // it has its own budget: a run of frees (a program's teardown) leaves
    // the size and misc columns empty, which ends the others' budget.
    if (budget.records == 0 && (tag != RecordTag::kFree || compact)) {
      budget = FastBudget(pos, times, sizes, misc);
      if (budget.records == 0) break;
    }
    // Decoded into locals and committed only when the whole record is
    // valid; anything unusual breaks out before the commit and leaves the
    // checked path to decode the record (or to name the error) from the
    // same position.
    const uint8_t* p = pos + 1;
    const uint8_t* t = times;
    const uint8_t* s = sizes;
    const uint8_t* m = misc;
    uint64_t f = freed;
    // One id_ref (DecodeIdRef); false: invalid.
    auto id_ref = [&](uint64_t& id) __attribute__((always_inline)) {
      uint64_t v;
      if (!UncheckedVarint(p, &v)) return false;
      return DecodeIdRef(
          v, [&](uint64_t* c) __attribute__((always_inline)) { return UncheckedVarint(p, c); },
          counter, thread, &f, &id);
    };
    // Scalars, not a HotRecord's fields: they stay in registers, and the
    // fields the sink does not read are never stored.
    uint64_t dt, dt2 = 0, delta = 0, stack = 0, size = 0, alignment = 0, id = 0, old_id = 0,
                 old_stack = 0, old_size = 0;
    if (!UncheckedVarint(t, &dt) || dt > kMaxTimeDeltaUs) break;
    if (tag == RecordTag::kFree) {
      if (compact) {
        if (!UncheckedVarint(p, &stack) || !UncheckedVarint(s, &size)) break;
      } else if (!id_ref(id)) {
        break;
      }
    } else {
      if (tag == RecordTag::kRealloc) {
        const bool old_ok = compact ? UncheckedVarint(p, &old_stack) &&
                                          UncheckedVarint(s, &old_size)
                                    : id_ref(old_id);
        if (!old_ok || !UncheckedVarint(t, &dt2) || dt2 > kMaxTimeDeltaUs) break;
      }
      if (!UncheckedVarint(p, &stack) || !UncheckedVarint(s, &size)) break;
      if (tag == RecordTag::kAlloc && !UncheckedVarint(m, &alignment)) break;
      if (!UncheckedVarint(m, &delta)) break;
    }
    // The record is valid: commit it.
    time += dt;
    const uint64_t time_us = time;
    uint64_t time2_us = 0, new_address = 0;
    if (tag != RecordTag::kFree) {
      time += dt2;
      if (tag == RecordTag::kRealloc) time2_us = time;
      address += static_cast<uint64_t>(UnZigZag(delta));
      new_address = address;
      id = MakeAllocId(thread, counter++);
    }
    pos = p;
    times = t;
    sizes = s;
    misc = m;
    freed = f;
    // Each hot record uses at most its margins of every budget's streams.
    budget.records -= budget.records != 0;
    --budget.frees;
    ++n;
    const HotRecord h{tag,  static_cast<Api>(api), time_us, time2_us, size,      stack,
                      alignment, new_address, id, old_id,   old_stack, old_size};
    sink(h);
  }
  pos_ = pos;
  columns_[kTimeColumn].pos = times;
  columns_[kSizeColumn].pos = sizes;
  columns_[kMiscColumn].pos = misc;
  time_us_ = time;
  last_address_ = address;
  last_freed_ = freed;
  next_counter_ = counter;
  fast_records_ = budget.records;
  fast_frees_ = budget.frees;
  return n;
}

template <typename Sink>
[[gnu::always_inline]] inline size_t ChunkDecoder::DecodeAddressHotRecords(size_t max_records,
                                                                          Sink&& sink) {
  if (!address_ || !error_.empty()) return 0;
  const uint8_t* pos = pos_;
  const uint8_t* times = columns_[kTimeColumn].pos;
  const uint8_t* sizes = columns_[kSizeColumn].pos;
  const uint8_t* misc = columns_[kMiscColumn].pos;
  uint64_t time = time_us_;
  uint64_t address = last_address_;
  uint64_t counter = next_counter_;
  const uint32_t thread = header_.thread_index;
  constexpr ptrdiff_t kV = static_cast<ptrdiff_t>(kMaxVarintBytes);
  size_t n = 0;
  // Each record's longest fields fit before every stream's end: read
  // without end checks (a realloc: one varint of the record stream, two of
  // the time column, one of the size column, four of the misc column).
  while (n < max_records && end_ - pos > kV && columns_[kTimeColumn].end - times >= 2 * kV &&
         columns_[kSizeColumn].end - sizes >= kV && columns_[kMiscColumn].end - misc >= 4 * kV) {
    const uint8_t byte = *pos;
    if (byte < kHotByteBase) break;
    const RecordTag tag = static_cast<RecordTag>(byte / kHotByteBase);
    const uint8_t api = byte % kHotByteBase;
    if (api >= static_cast<uint8_t>(Api::kApiLimit)) break;
    const uint8_t* p = pos + 1;
    const uint8_t* t = times;
    const uint8_t* s = sizes;
    const uint8_t* m = misc;
    uint64_t dt, dt2 = 0, delta, old_delta = 0, order, old_order = 0;
    AddressHotRecord h;
    h.tag = tag;
    h.api = static_cast<Api>(api);
    if (!UncheckedVarint(t, &dt) || dt > kMaxTimeDeltaUs) break;
    if (tag == RecordTag::kFree) {
      if (!UncheckedVarint(m, &delta) || !UncheckedVarint(m, &order)) break;
    } else {
      if (tag == RecordTag::kRealloc && (!UncheckedVarint(t, &dt2) || dt2 > kMaxTimeDeltaUs)) {
        break;
      }
      if (!UncheckedVarint(p, &h.stack) || !UncheckedVarint(s, &h.size)) break;
      if (tag == RecordTag::kAlloc && !UncheckedVarint(m, &h.alignment)) break;
      if (tag == RecordTag::kRealloc &&
          (!UncheckedVarint(m, &old_delta) || !UncheckedVarint(m, &old_order) ||
           old_order > kAddressCountModulo)) {
        break;
      }
      if (!UncheckedVarint(m, &delta) || !UncheckedVarint(m, &order)) break;
    }
    if (order > kAddressCountModulo) break;
    // Valid: commit.
    time += dt;
    h.time_us = time;
    if (tag == RecordTag::kRealloc) {
      address += static_cast<uint64_t>(UnZigZag(old_delta));
      h.old_address = address;
      h.old_order = static_cast<uint8_t>(old_order);
      time += dt2;
      h.time2_us = time;
    }
    address += static_cast<uint64_t>(UnZigZag(delta));
    h.address = address;
    h.order = static_cast<uint8_t>(order);
    if (tag != RecordTag::kFree) h.id = MakeAllocId(thread, counter++);
    pos = p;
    times = t;
    sizes = s;
    misc = m;
    ++n;
    sink(h);
  }
  pos_ = pos;
  columns_[kTimeColumn].pos = times;
  columns_[kSizeColumn].pos = sizes;
  columns_[kMiscColumn].pos = misc;
  time_us_ = time;
  last_address_ = address;
  next_counter_ = counter;
  return n;
}

template <typename NodeSink>
[[gnu::always_inline]] inline size_t ChunkDecoder::DecodeStackNodes(size_t max_records,
                                                                   NodeSink&& node_sink) {
  const uint8_t* pos = pos_;
  Budget budget{fast_records_, fast_frees_};
  size_t n = 0;
  while (n < max_records && end_ - pos >= kStackNodeFastBytes &&
         *pos == static_cast<uint8_t>(RecordTag::kStackNode)) {
    // Its tag, its body's length (a padded varint), the body (three
    // varints, then whatever a later version appends), read without end
    // checks: a longest record fits before the end. Anything the checked
    // path would reject stops here.
    const uint8_t* p = pos + 1;
    uint64_t length, node_delta, parent_delta, ip_delta;
    if (!UncheckedVarint(p, &length) || length > static_cast<uint64_t>(end_ - p)) break;
    const uint8_t* const body_end = p + length;
    if (!UncheckedVarint(p, &node_delta) || !UncheckedVarint(p, &parent_delta) ||
        !UncheckedVarint(p, &ip_delta) || p > body_end) {
      break;
    }
    const uint64_t node = last_node_ + static_cast<uint64_t>(UnZigZag(node_delta));
    if (!IsValidStackNode(node, parent_delta)) break;
    last_node_ = node;
    const uint64_t ip = last_node_ip_ += static_cast<uint64_t>(UnZigZag(ip_delta));
    // The budgets counted the record stream's room in hot records of at
    // most kHotRecordBytes: this record took that many of them at most
    // (rounded up); the columns are untouched.
    const uint64_t used =
        (static_cast<uint64_t>(body_end - pos) + kHotRecordBytes - 1) / kHotRecordBytes;
    budget.records = budget.records > used ? budget.records - used : 0;
    budget.frees = budget.frees > used ? budget.frees - used : 0;
    pos = body_end;
    ++n;
    node_sink(node, node - parent_delta, ip, time_us_);
  }
  pos_ = pos;
  fast_records_ = budget.records;
  fast_frees_ = budget.frees;
  return n;
}

// Whether a file's frees are compact (its decoders take compact_frees).
inline bool HasCompactFrees(const FileHeader& h) {
  return (h.flags & kFileFlagCompactFrees) != 0;
}

// Whether a file's frees name addresses (version 6; its decoders take
// address_frees).
inline bool HasAddressFrees(const FileHeader& h) {
  return (h.flags & kFileFlagAddressFrees) != 0;
}

}  // namespace heapsight::format

#endif  // HEAPSIGHT_FORMAT_CHUNK_DECODER_H_
