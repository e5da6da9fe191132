// format/chunk_encoder.h: encodes records into one chunk buffer.
//
// Constraints: header-only, no allocation, no locks, no libc beyond memcpy;
// async-signal-safe. The preload calls it on the hook path with a buffer it
// owns. Each Put* returns false, writing nothing, when the record would not
// fit; the caller then flushes the chunk and retries on an empty one.
#ifndef HEAPSIGHT_FORMAT_CHUNK_ENCODER_H_
#define HEAPSIGHT_FORMAT_CHUNK_ENCODER_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "format/trace_format.h"
#include "format/varint.h"

namespace heapsight::format {

// Upper bound of a fixed-shape record (tag + api + 7 varints + 1 byte).
inline constexpr size_t kMaxFixedRecordBytes = 2 + 8 * kMaxVarintBytes;

// One module segment, as written in kModule.
struct SegmentInfo {
  uint64_t vaddr;
  uint64_t memsz;
  uint64_t file_offset;
  uint8_t flags;
};

// The chunk's state for naming its own thread's freed blocks: the counter
// of the previous own-thread id_ref and which form it took.
struct IdRefState {
  uint64_t last_freed = 0;  // a chunk starts at its first_alloc_counter
  bool last_was_delta = false;
};

// The id_ref value (trace-format.md, section 5) of a block of the writing
// thread (counter < next_counter): its distance from the next counter
// (blocks freed in allocation order, a FIFO) or its counter's difference
// from the previous free's (frees in any other order that still moves in
// small steps: destructors walking a container, a sweep); whichever is the
// shorter varint, ties keeping the form used last so the column stays
// regular. The encoder and bench/'s trace tools call this one rule.
inline uint64_t OwnIdRef(uint64_t counter, uint64_t next_counter, IdRefState* state) {
  uint64_t distance_ref = (next_counter - counter) << 1;
  uint64_t delta_ref = (ZigZag(static_cast<int64_t>(counter - state->last_freed)) << 2) | 3;
  size_t distance_bytes = VarintSize(distance_ref), delta_bytes = VarintSize(delta_ref);
  bool delta = delta_bytes < distance_bytes ||
               (delta_bytes == distance_bytes && state->last_was_delta);
  state->last_freed = counter;
  state->last_was_delta = delta;
  return delta ? delta_ref : distance_ref;
}

// How Begin divides a chunk's room: each column's share in 64ths (the
// record stream gets the rest). Not part of the format: Seal() lays the
// streams out back to back and the reader takes their lengths.
struct ColumnShares {
  size_t of64[kColumnCount];
};
// Sized for a malloc-heavy stream of table mode (per allocation + free:
// 4-7 bytes of record stream, 2-3 of time deltas, 1-2 of sizes, 2 of
// alignment and address): 3/16, 2/16 and 2/16, the record stream 9/16.
inline constexpr ColumnShares kTableColumnShares = {{12, 8, 8}};
// Address frees (version 6): every hot record puts its address delta (3-4
// bytes in a large heap) and order value in the misc column, which filled
// at 2/16 while the other streams were at a quarter of theirs (python,
// perl and the 12-frame loop alike: a chunk sealed at 33 KB of 128 KiB).
// With these shares the misc column gets 26/64 and the record stream
// 20/64 (41 KB: still more than the largest record a writer caps, the
// process record's 16 KiB command line and paths): chunks of about 100 KB,
// a third of the hand-overs and zstd frames (docs/performance.md, py23).
inline constexpr ColumnShares kAddressColumnShares = {{10, 8, 26}};

class ChunkEncoder {
 public:
  ChunkEncoder() = default;

  // Starts a chunk in `buf` (capacity bytes, at least 256). The ChunkHeader
  // is written first. Records are encoded in four streams (see
  // docs/trace-format.md, "Chunks"): the record stream gets the
  // space left by the columns (`shares`); a record that does not fit in any of them
  // makes its Put* return false. Seal() lays the streams out contiguously.
  void Begin(uint8_t* buf, size_t capacity, const ChunkHeader& header,
             const ColumnShares& shares = kTableColumnShares) {
    begin_ = buf;
    std::memcpy(buf, &header, sizeof header);
    size_t room = capacity - kChunkPreambleBytes;
    uint8_t* p = buf + kChunkPreambleBytes + room;
    for (int i = kColumnCount - 1; i >= 0; --i) {
      Column& c = columns_[i];
      c.end = p;
      p -= room * shares.of64[i] / 64;
      c.begin = c.pos = p;
    }
    pos_ = buf + kChunkPreambleBytes;
    end_ = p;
    last_time_us_ = header.base_time_us;
    last_address_ = 0;
    id_ref_state_ = IdRefState{header.first_alloc_counter, false};
    last_node_ = 0;
    last_node_ip_ = 0;
    records_ = 0;
    sealed_size_ = 0;
  }

  // Writes the stream-length table and moves the columns to follow the
  // record stream; returns the chunk's size. No Put* after this until the
  // next Begin().
  size_t Seal() {
    uint32_t lengths[1 + kColumnCount];
    uint8_t* rows_begin = begin_ + kChunkPreambleBytes;
    lengths[0] = static_cast<uint32_t>(pos_ - rows_begin);
    uint8_t* out = pos_;
    for (int i = 0; i < kColumnCount; ++i) {
      size_t n = static_cast<size_t>(columns_[i].pos - columns_[i].begin);
      lengths[1 + i] = static_cast<uint32_t>(n);
      if (n != 0) std::memmove(out, columns_[i].begin, n);
      out += n;
    }
    std::memcpy(begin_ + sizeof(ChunkHeader), lengths, sizeof lengths);
    sealed_size_ = static_cast<size_t>(out - begin_);
    end_ = pos_;  // nothing more fits
    for (Column& c : columns_) c.end = c.pos = c.begin;
    return sealed_size_;
  }

  // The chunk's size (sealed or not; the same number either way).
  size_t size() const {
    if (sealed_size_ != 0) return sealed_size_;
    size_t n = kChunkPreambleBytes + static_cast<size_t>(pos_ - (begin_ + kChunkPreambleBytes));
    for (const Column& c : columns_) n += static_cast<size_t>(c.pos - c.begin);
    return n;
  }
  // The chunk's bytes: valid only after Seal().
  size_t records() const { return records_; }
  bool empty() const { return records_ == 0; }
  uint8_t* data() const { return begin_; }
  ChunkHeader* header() const { return reinterpret_cast<ChunkHeader*>(begin_); }

  // The three hot records keep their kind and api (one byte), stack and
  // id_ref in the record stream, one record after another, and their time
  // deltas, sizes and alignment/address fields in the three columns. A loop
  // that allocates and frees the same way again and again then repeats
  // whole records, which zstd matches in one go; the time and misc columns
  // are nearly constant (coarse clock, no addresses) and cost almost
  // nothing, and sizes, which vary more than anything else, would break
  // the rows' repeats (docs/performance.md, "Trace size on real programs").
  //
  // PutAlloc is always inlined: the preload's allocation hook called it out
  // of line with eight arguments (one on the stack) and a frame, ~15
  // instructions of its ~75 per allocation.
  __attribute__((always_inline)) bool PutAlloc(uint64_t time_us, Api api, uint64_t size,
                                               uint64_t stack, uint64_t alignment,
                                               uint64_t address) {
    if (!HotRoom(kMaxVarintBytes, kMaxVarintBytes, kMaxVarintBytes, 2 * kMaxVarintBytes)) {
      return false;
    }
    uint8_t* p = HotStart(RecordTag::kAlloc, time_us, api);
    pos_ = PutVarint(p, stack);
    Col(kSizeColumn) = PutVarint(Col(kSizeColumn), size);
    Col(kMiscColumn) = PutVarint(Col(kMiscColumn), alignment);
    Col(kMiscColumn) = PutAddress(Col(kMiscColumn), address);
    ++records_;
    return true;
  }

  bool PutFree(uint64_t time_us, Api api, uint64_t id, uint32_t own_thread,
               uint64_t own_next_counter) {
    if (!HotRoom(2 * kMaxVarintBytes, kMaxVarintBytes, 0, 0)) return false;
    uint8_t* p = HotStart(RecordTag::kFree, time_us, api);
    pos_ = PutIdRef(p, id, own_thread, own_next_counter);
    ++records_;
    return true;
  }

  bool PutRealloc(uint64_t free_time_us, uint64_t alloc_time_us, Api api, uint64_t old_id,
                  uint32_t own_thread, uint64_t own_next_counter, uint64_t size, uint64_t stack,
                  uint64_t address) {
    if (!HotRoom(3 * kMaxVarintBytes, 2 * kMaxVarintBytes, kMaxVarintBytes, kMaxVarintBytes)) {
      return false;
    }
    uint8_t* p = HotStart(RecordTag::kRealloc, free_time_us, api);
    p = PutIdRef(p, old_id, own_thread, own_next_counter);
    pos_ = PutVarint(p, stack);
    Col(kSizeColumn) = PutVarint(Col(kSizeColumn), size);
    PutAllocationGap(free_time_us, alloc_time_us);
    Col(kMiscColumn) = PutAddress(Col(kMiscColumn), address);
    ++records_;
    return true;
  }

  // Address frees (kFileFlagAddressFrees, trace_format.h): every hot
  // record carries its address(es), as a delta in the chain of the chunk's
  // hot-record addresses, and an order value (AddressOrder); a free has no
  // id_ref. Only in a version-6 trace's chunks. PutAllocAddress is always
  // inlined, like PutAlloc.
  __attribute__((always_inline)) bool PutAllocAddress(uint64_t time_us, Api api, uint64_t size,
                                                      uint64_t stack, uint64_t alignment,
                                                      uint64_t address, uint64_t order) {
    if (!HotRoom(kMaxVarintBytes, kMaxVarintBytes, kMaxVarintBytes,
                 kAddressAllocMiscFields * kMaxVarintBytes)) {
      return false;
    }
    uint8_t* p = HotStart(RecordTag::kAlloc, time_us, api);
    pos_ = PutVarint(p, stack);
    Col(kSizeColumn) = PutVarint(Col(kSizeColumn), size);
    uint8_t* m = PutVarint(Col(kMiscColumn), alignment);
    m = PutAddress(m, address);
    Col(kMiscColumn) = PutVarint(m, order);
    ++records_;
    return true;
  }

  __attribute__((always_inline)) bool PutFreeAddress(uint64_t time_us, Api api,
                                                     uint64_t address, uint64_t order) {
    if (!HotRoom(0, kMaxVarintBytes, 0, kAddressFreeMiscFields * kMaxVarintBytes)) return false;
    pos_ = HotStart(RecordTag::kFree, time_us, api);
    uint8_t* m = PutAddress(Col(kMiscColumn), address);
    Col(kMiscColumn) = PutVarint(m, order);
    ++records_;
    return true;
  }

  bool PutReallocAddress(uint64_t free_time_us, uint64_t alloc_time_us, Api api,
                         uint64_t old_address, uint64_t old_order, uint64_t size,
                         uint64_t stack, uint64_t address, uint64_t order) {
    if (!HotRoom(kMaxVarintBytes, 2 * kMaxVarintBytes, kMaxVarintBytes,
                 kAddressReallocMiscFields * kMaxVarintBytes)) {
      return false;
    }
    uint8_t* p = HotStart(RecordTag::kRealloc, free_time_us, api);
    pos_ = PutVarint(p, stack);
    Col(kSizeColumn) = PutVarint(Col(kSizeColumn), size);
    PutAllocationGap(free_time_us, alloc_time_us);
    uint8_t* m = PutAddress(Col(kMiscColumn), old_address);
    m = PutVarint(m, old_order);
    m = PutAddress(m, address);
    Col(kMiscColumn) = PutVarint(m, order);
    ++records_;
    return true;
  }

  // Compact frees (kFileFlagCompactFrees, trace_format.h): the freed
  // block's stack in the row and its size in the size column, where an
  // exact trace has its id_ref. Only in a compact trace's chunks.
  bool PutFreeCompact(uint64_t time_us, Api api, uint64_t stack, uint64_t size) {
    if (!HotRoom(kCompactFreeRowFields * kMaxVarintBytes, kMaxVarintBytes,
                 kCompactFreeSizeFields * kMaxVarintBytes, 0)) {
      return false;
    }
    uint8_t* p = HotStart(RecordTag::kFree, time_us, api);
    pos_ = PutVarint(p, stack);
    Col(kSizeColumn) = PutVarint(Col(kSizeColumn), size);
    ++records_;
    return true;
  }

  // A compact trace's realloc: the old block's stack and size (as
  // PutFreeCompact) before the new block's.
  bool PutReallocCompact(uint64_t free_time_us, uint64_t alloc_time_us, Api api,
                         uint64_t old_stack, uint64_t old_size, uint64_t size, uint64_t stack,
                         uint64_t address) {
    if (!HotRoom(kCompactReallocRowFields * kMaxVarintBytes, 2 * kMaxVarintBytes,
                 kCompactReallocSizeFields * kMaxVarintBytes, kMaxVarintBytes)) {
      return false;
    }
    uint8_t* p = HotStart(RecordTag::kRealloc, free_time_us, api);
    p = PutVarint(p, old_stack);
    pos_ = PutVarint(p, stack);
    Col(kSizeColumn) = PutVarint(Col(kSizeColumn), old_size);
    Col(kSizeColumn) = PutVarint(Col(kSizeColumn), size);
    PutAllocationGap(free_time_us, alloc_time_us);
    Col(kMiscColumn) = PutAddress(Col(kMiscColumn), address);
    ++records_;
    return true;
  }

  bool PutAllocFailed(uint64_t time_us, Api api, uint64_t size, uint64_t stack,
                      uint64_t alignment) {
    uint8_t* p = Start(RecordTag::kAllocFailed, time_us, kMaxFixedRecordBytes);
    if (p == nullptr) return false;
    *p++ = static_cast<uint8_t>(api);
    p = PutVarint(p, size);
    p = PutVarint(p, stack);
    p = PutVarint(p, alignment);
    return Finish(p);
  }

  bool PutFreeError(uint64_t time_us, Api api, FreeError error, FreeAction action,
                    uint64_t address, uint64_t stack, uint64_t alloc_id) {
    uint8_t* p = Start(RecordTag::kFreeError, time_us, kMaxFixedRecordBytes);
    if (p == nullptr) return false;
    *p++ = static_cast<uint8_t>(api);
    *p++ = static_cast<uint8_t>(error);
    *p++ = static_cast<uint8_t>(action);
    p = PutVarint(p, address);
    p = PutVarint(p, stack);
    p = PutVarint(p, alloc_id);
    return Finish(p);
  }

  // blocks/bytes: indexed by LeakClass - 1.
  bool PutLeakScan(uint64_t time_us, uint64_t scan, ScanReason reason, uint64_t duration_us,
                   uint64_t threads_stopped, uint64_t threads_missed, uint64_t root_bytes,
                   uint64_t blocks, const uint64_t* class_blocks, const uint64_t* class_bytes) {
    uint8_t* p = Start(RecordTag::kLeakScan, time_us,
                       3 + (7 + 2 * kLeakClassCount) * kMaxVarintBytes);
    if (p == nullptr) return false;
    p = PutVarint(p, scan);
    *p++ = static_cast<uint8_t>(reason);
    p = PutVarint(p, duration_us);
    p = PutVarint(p, threads_stopped);
    p = PutVarint(p, threads_missed);
    p = PutVarint(p, root_bytes);
    p = PutVarint(p, blocks);
    for (int i = 0; i < kLeakClassCount; ++i) {
      p = PutVarint(p, class_blocks[i]);
      p = PutVarint(p, class_bytes[i]);
    }
    return Finish(p);
  }

  // Bytes PutBlockClasses needs for `count` ids (with `blocks`: and their
  // stacks and sizes).
  static size_t BlockClassesSize(size_t count, bool blocks = false) {
    return 2 + (count * (blocks ? 3 : 1) + 2) * kMaxVarintBytes;
  }
  // No time field. Writes all `count` ids or nothing. In a compact trace
  // `stacks` and `sizes` (count each) follow the ids, a (uv stack, uv size)
  // pair per block (trace_format.h, "Compact frees"); nullptr otherwise.
  bool PutBlockClasses(uint64_t scan, LeakClass leak_class, const uint64_t* ids, size_t count,
                       const uint64_t* stacks = nullptr, const uint64_t* sizes = nullptr) {
    bool blocks = stacks != nullptr && sizes != nullptr;
    uint8_t* p = StartUntimed(RecordTag::kBlockClasses, BlockClassesSize(count, blocks));
    if (p == nullptr) return false;
    p = PutVarint(p, scan);
    *p++ = static_cast<uint8_t>(leak_class);
    p = PutVarint(p, count);
    uint64_t prev = 0;
    for (size_t i = 0; i < count; ++i) {
      p = PutSignedVarint(p, static_cast<int64_t>(ids[i] - prev));
      prev = ids[i];
    }
    if (blocks) {
      for (size_t i = 0; i < count; ++i) {
        p = PutVarint(p, stacks[i]);
        p = PutVarint(p, sizes[i]);
      }
    }
    return Finish(p);
  }

  // Node, parent and ip as deltas (trace-format.md, kStackNode): the node
  // and ip from the chunk's previous kStackNode (a new stack's nodes are
  // consecutive, and caller and callee addresses are close), the parent
  // from the node (parents are always older, so smaller). `parent < node`.
  bool PutStackNode(uint64_t node, uint64_t parent, uint64_t ip) {
    uint8_t* p = StartUntimed(RecordTag::kStackNode, 1 + 3 * kMaxVarintBytes);
    if (p == nullptr) return false;
    p = PutSignedVarint(p, static_cast<int64_t>(node - last_node_));
    p = PutVarint(p, node - parent);
    p = PutSignedVarint(p, static_cast<int64_t>(ip - last_node_ip_));
    if (!Finish(p)) return false;
    last_node_ = node;
    last_node_ip_ = ip;
    return true;
  }

  // Bytes PutModule needs for these arguments.
  static size_t ModuleSize(size_t path_len, size_t build_id_len, size_t segment_count) {
    return 1 + 5 * kMaxVarintBytes + path_len + build_id_len +
           segment_count * (3 * kMaxVarintBytes + 1);
  }
  bool PutModule(uint64_t time_us, uint64_t module_id, uint64_t load_address, const char* path,
                 size_t path_len, const uint8_t* build_id, size_t build_id_len,
                 const SegmentInfo* segments, size_t segment_count) {
    uint8_t* p =
        Start(RecordTag::kModule, time_us, ModuleSize(path_len, build_id_len, segment_count));
    if (p == nullptr) return false;
    p = PutVarint(p, module_id);
    p = PutVarint(p, load_address);
    p = PutBytes(p, path, path_len);
    p = PutBytes(p, build_id, build_id_len);
    p = PutVarint(p, segment_count);
    for (size_t i = 0; i < segment_count; ++i) {
      p = PutVarint(p, segments[i].vaddr);
      p = PutVarint(p, segments[i].memsz);
      p = PutVarint(p, segments[i].file_offset);
      *p++ = segments[i].flags;
    }
    return Finish(p);
  }

  bool PutModuleUnload(uint64_t time_us, uint64_t module_id) {
    return PutTimeAndValues(RecordTag::kModuleUnload, time_us, module_id);
  }
  bool PutRss(uint64_t time_us, uint64_t rss_bytes) {
    return PutTimeAndValues(RecordTag::kRss, time_us, rss_bytes);
  }
  bool PutThreadStart(uint64_t time_us, uint64_t tid, uint64_t creator_index) {
    return PutTimeAndValues(RecordTag::kThreadStart, time_us, tid, creator_index);
  }
  bool PutFork(uint64_t time_us, uint64_t child_pid) {
    return PutTimeAndValues(RecordTag::kFork, time_us, child_pid);
  }
  bool PutExecFailed(uint64_t time_us) {
    uint8_t* p = Start(RecordTag::kExecFailed, time_us, 1 + kMaxVarintBytes);
    return p != nullptr && Finish(p);
  }
  bool PutLost(uint64_t time_us, uint64_t dropped) {
    return PutTimeAndValues(RecordTag::kLost, time_us, dropped);
  }

  static size_t ProcessSize(size_t exe_len, size_t argv_bytes, size_t argc, size_t parent_len) {
    return 1 + 4 * kMaxVarintBytes + exe_len + argv_bytes + argc * kMaxVarintBytes + parent_len +
           kMaxVarintBytes;
  }
  // argv strings are NUL-terminated; `argv_bytes` is the sum of their lengths.
  bool PutProcess(uint64_t time_us, const char* exe, size_t exe_len, const char* const* argv,
                  size_t argc, size_t argv_bytes, uint64_t parent_pid, const char* parent_trace,
                  size_t parent_trace_len) {
    uint8_t* p = Start(RecordTag::kProcess, time_us,
                       ProcessSize(exe_len, argv_bytes, argc, parent_trace_len));
    if (p == nullptr) return false;
    p = PutBytes(p, exe, exe_len);
    p = PutVarint(p, argc);
    for (size_t i = 0; i < argc; ++i) p = PutBytes(p, argv[i], std::strlen(argv[i]));
    p = PutVarint(p, parent_pid);
    p = PutBytes(p, parent_trace, parent_trace_len);
    return Finish(p);
  }

  bool PutExec(uint64_t time_us, const char* path, size_t path_len) {
    return PutTimeAndString(RecordTag::kExec, time_us, path, path_len);
  }
  bool PutMarker(uint64_t time_us, const char* name, size_t name_len) {
    return PutTimeAndString(RecordTag::kMarker, time_us, name, name_len);
  }

  bool PutInherited(uint64_t time_us, uint64_t id, Api api, uint64_t size, uint64_t stack) {
    uint8_t* p = Start(RecordTag::kInherited, time_us, kMaxFixedRecordBytes);
    if (p == nullptr) return false;
    p = PutVarint(p, id);
    *p++ = static_cast<uint8_t>(api);
    p = PutVarint(p, size);
    p = PutVarint(p, stack);
    return Finish(p);
  }

  bool PutEnd(uint64_t time_us, EndReason reason, int64_t exit_status) {
    uint8_t* p = Start(RecordTag::kEnd, time_us, 2 + 2 * kMaxVarintBytes);
    if (p == nullptr) return false;
    *p++ = static_cast<uint8_t>(reason);
    p = PutSignedVarint(p, exit_status);
    return Finish(p);
  }

 private:
  struct Column {
    uint8_t* begin = nullptr;
    uint8_t* pos = nullptr;
    uint8_t* end = nullptr;
  };
  uint8_t*& Col(int i) { return columns_[i].pos; }
  bool ColumnRoom(int i, size_t bytes) const {
    return static_cast<size_t>(columns_[i].end - columns_[i].pos) >= bytes;
  }
  // Room for a hot record: `row_bytes` of record stream after its first
  // byte, and the bytes of the three columns.
  bool HotRoom(size_t row_bytes, size_t time_bytes, size_t size_bytes, size_t misc_bytes) const {
    return static_cast<size_t>(end_ - pos_) >= 1 + row_bytes &&
           ColumnRoom(kTimeColumn, time_bytes) && ColumnRoom(kSizeColumn, size_bytes) &&
           ColumnRoom(kMiscColumn, misc_bytes);
  }
  // The first byte of a hot record (record stream) and its time delta (time
  // column); returns where its fields go in the record stream.
  uint8_t* HotStart(RecordTag tag, uint64_t time_us, Api api) {
    uint8_t* p = pos_;
    *p++ = HotRecordByte(static_cast<uint8_t>(tag), static_cast<uint8_t>(api));
    Col(kTimeColumn) = PutVarint(Col(kTimeColumn), ClampedDelta(time_us));
    last_time_us_ = pending_time_us_;
    return p;
  }
  // Times within a thread never go backwards (CLOCK_MONOTONIC); clamp
  // anyway so a delta can never wrap, and never emit one the reader would
  // reject as corrupt (a bogus clock reading loses its time, not the trace).
  uint64_t ClampedDelta(uint64_t time_us) {
    uint64_t dt = time_us > last_time_us_ ? time_us - last_time_us_ : 0;
    if (dt > kMaxTimeDeltaUs) dt = 0;
    pending_time_us_ = last_time_us_ + dt;
    return dt;
  }
  // A realloc's second time (time column): its allocation's delta from the
  // free's time, clamped as ClampedDelta does; the next delta is from it.
  void PutAllocationGap(uint64_t free_time_us, uint64_t alloc_time_us) {
    uint64_t dt = alloc_time_us > free_time_us ? alloc_time_us - free_time_us : 0;
    if (dt > kMaxTimeDeltaUs) dt = 0;
    Col(kTimeColumn) = PutVarint(Col(kTimeColumn), dt);
    last_time_us_ += dt;
  }
  // Other records: the tag, a 4-byte body length (a padded varint, filled
  // in by Finish) and the body, all in the record stream; nullptr if
  // `max_bytes` of body do not fit.
  uint8_t* StartUntimed(RecordTag tag, size_t max_bytes) {
    if (static_cast<size_t>(end_ - pos_) < 1 + kBodyLengthBytes + max_bytes) return nullptr;
    uint8_t* p = pos_;
    *p++ = static_cast<uint8_t>(tag);
    body_ = p + kBodyLengthBytes;
    pending_time_us_ = last_time_us_;
    return body_;
  }
  // Reserves `max_bytes`, writes the tag and time delta; nullptr if full.
  uint8_t* Start(RecordTag tag, uint64_t time_us, size_t max_bytes) {
    uint8_t* p = StartUntimed(tag, max_bytes);
    if (p == nullptr) return nullptr;
    return PutVarint(p, ClampedDelta(time_us));
  }
  bool Finish(uint8_t* p) {
    uint64_t len = static_cast<uint64_t>(p - body_);
    uint8_t* l = body_ - kBodyLengthBytes;
    l[0] = static_cast<uint8_t>(0x80 | (len & 0x7f));
    l[1] = static_cast<uint8_t>(0x80 | ((len >> 7) & 0x7f));
    l[2] = static_cast<uint8_t>(0x80 | ((len >> 14) & 0x7f));
    l[3] = static_cast<uint8_t>((len >> 21) & 0x7f);
    pos_ = p;
    last_time_us_ = pending_time_us_ > last_time_us_ ? pending_time_us_ : last_time_us_;
    ++records_;
    return true;
  }
  uint8_t* PutAddress(uint8_t* p, uint64_t address) {
    p = PutSignedVarint(p, static_cast<int64_t>(address - last_address_));
    last_address_ = address;
    return p;
  }
  // id_ref (trace-format.md, section 5): a block of this thread by
  // OwnIdRef, any other as (thread << 2 | 1, counter).
  uint8_t* PutIdRef(uint8_t* p, uint64_t id, uint32_t own_thread, uint64_t own_next_counter) {
    uint64_t counter = AllocIdCounter(id);
    if (AllocIdThread(id) == own_thread && counter < own_next_counter) {
      return PutVarint(p, OwnIdRef(counter, own_next_counter, &id_ref_state_));
    }
    p = PutVarint(p, (uint64_t{AllocIdThread(id)} << 2) | 1);
    return PutVarint(p, counter);
  }
  static uint8_t* PutBytes(uint8_t* p, const void* data, size_t len) {
    p = PutVarint(p, len);
    if (len != 0) std::memcpy(p, data, len);
    return p + len;
  }
  bool PutTimeAndValues(RecordTag tag, uint64_t time_us, uint64_t a) {
    uint8_t* p = Start(tag, time_us, 1 + 2 * kMaxVarintBytes);
    if (p == nullptr) return false;
    return Finish(PutVarint(p, a));
  }
  bool PutTimeAndValues(RecordTag tag, uint64_t time_us, uint64_t a, uint64_t b) {
    uint8_t* p = Start(tag, time_us, 1 + 3 * kMaxVarintBytes);
    if (p == nullptr) return false;
    p = PutVarint(p, a);
    return Finish(PutVarint(p, b));
  }
  bool PutTimeAndString(RecordTag tag, uint64_t time_us, const char* s, size_t len) {
    uint8_t* p = Start(tag, time_us, 1 + 2 * kMaxVarintBytes + len);
    if (p == nullptr) return false;
    return Finish(PutBytes(p, s, len));
  }

  uint8_t* begin_ = nullptr;
  uint8_t* pos_ = nullptr;  // record stream
  uint8_t* end_ = nullptr;
  uint8_t* body_ = nullptr;  // body of the record being written
  Column columns_[kColumnCount];
  size_t sealed_size_ = 0;
  uint64_t last_time_us_ = 0;
  uint64_t pending_time_us_ = 0;
  uint64_t last_address_ = 0;
  IdRefState id_ref_state_;
  uint64_t last_node_ = 0;     // of the chunk's previous kStackNode
  uint64_t last_node_ip_ = 0;
  size_t records_ = 0;
};

}  // namespace heapsight::format

#endif  // HEAPSIGHT_FORMAT_CHUNK_ENCODER_H_
