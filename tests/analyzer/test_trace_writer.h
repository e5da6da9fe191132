// tests/analyzer/test_trace_writer.h: builds synthetic heapsight traces for
// every analyzer and command test (FileHeader + raw or zstd blocks, one
// chunk per block); the only synthetic trace writer of the test suite.
//
// Each thread has its own chunk encoder; records go to the thread's current
// chunk, which is written as a block when full or when Flush() is called, so
// a test controls exactly how chunks of different threads interleave in the
// file. Allocation ids follow the format: the n-th allocation of thread t
// has id MakeAllocId(t, n).
#ifndef HEAPSIGHT_TESTS_ANALYZER_TEST_TRACE_WRITER_H_
#define HEAPSIGHT_TESTS_ANALYZER_TEST_TRACE_WRITER_H_

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <zstd.h>

#include "format/chunk_encoder.h"
#include "format/trace_format.h"

namespace heapsight::testing {

class TestTraceWriter {
 public:
  explicit TestTraceWriter(uint64_t pid = 4242, uint64_t ppid = 1, size_t chunk_capacity = 4096)
      : capacity_(chunk_capacity) {
    format::FileHeader h{};
    std::memcpy(h.magic, format::kFileMagic, sizeof h.magic);
    h.version = format::kFormatVersion;
    h.header_size = sizeof h;
    h.page_size = 4096;
    h.pid = pid;
    h.ppid = ppid;
    h.start_realtime_ns = 1700000000000000000ull;
    h.start_monotonic_ns = 1000;
    Append(&h, sizeof h);
  }

  // Changes the file header (written first, by the constructor).
  template <typename F>
  void EditHeader(F&& edit) {
    format::FileHeader h;
    std::memcpy(&h, bytes_.data(), sizeof h);
    edit(h);
    std::memcpy(bytes_.data(), &h, sizeof h);
  }

  // Returns the new allocation's id.
  uint64_t Alloc(uint32_t t, uint64_t time, format::Api api, uint64_t size, uint64_t stack,
                 uint64_t address = 0) {
    Thread& th = T(t);
    Put(t, [&](format::ChunkEncoder& e) {
      return e.PutAlloc(time, api, size, stack, 0, address);
    });
    return format::MakeAllocId(t, th.next_counter++);
  }
  void Free(uint32_t t, uint64_t time, uint64_t id, format::Api api = format::Api::kFree) {
    Thread& th = T(t);
    Put(t, [&](format::ChunkEncoder& e) { return e.PutFree(time, api, id, t, th.next_counter); });
  }
  uint64_t Realloc(uint32_t t, uint64_t time, uint64_t old_id, uint64_t size, uint64_t stack) {
    return ReallocAt(t, time, time, old_id, size, stack);
  }
  // A realloc whose old block is freed at `time` and whose new block is
  // allocated at `new_time`.
  uint64_t ReallocAt(uint32_t t, uint64_t time, uint64_t new_time, uint64_t old_id,
                     uint64_t size, uint64_t stack) {
    Thread& th = T(t);
    Put(t, [&](format::ChunkEncoder& e) {
      return e.PutRealloc(time, new_time, format::Api::kRealloc, old_id, t, th.next_counter,
                          size, stack, 0);
    });
    return format::MakeAllocId(t, th.next_counter++);
  }
  // Address frees (format version 6): UseAddressFrees() stamps the header;
  // then the *At calls write the version-6 rows, with the order values the
  // preload's cells would give (trace_format.h, AddressOrder: 0 when the
  // address's previous event was the same thread's or there was none),
  // unless a test passes its own (`order` >= 0).
  void UseAddressFrees() {
    EditHeader([](format::FileHeader& h) {
      h.flags |= format::kFileFlagAddressFrees;
      h.version = format::FormatVersionFor(h.flags);
    });
  }
  uint64_t AllocAt(uint32_t t, uint64_t time, format::Api api, uint64_t size, uint64_t stack,
                   uint64_t address, int order = -1) {
    Thread& th = T(t);
    const uint64_t o = CellEvent(t, address, order);
    Put(t, [&](format::ChunkEncoder& e) {
      return e.PutAllocAddress(time, api, size, stack, 0, address, o);
    });
    return format::MakeAllocId(t, th.next_counter++);
  }
  void FreeAt(uint32_t t, uint64_t time, uint64_t address, format::Api api = format::Api::kFree,
              int order = -1) {
    const uint64_t o = CellEvent(t, address, order);
    Put(t, [&](format::ChunkEncoder& e) { return e.PutFreeAddress(time, api, address, o); });
  }
  uint64_t ReallocAtAddress(uint32_t t, uint64_t time, uint64_t new_time, uint64_t old_address,
                            uint64_t size, uint64_t stack, uint64_t address, int old_order = -1,
                            int order = -1) {
    Thread& th = T(t);
    const uint64_t oo = CellEvent(t, old_address, old_order);
    const uint64_t o = CellEvent(t, address, order);
    Put(t, [&](format::ChunkEncoder& e) {
      return e.PutReallocAddress(time, new_time, format::Api::kRealloc, old_address, oo, size,
                                 stack, address, o);
    });
    return format::MakeAllocId(t, th.next_counter++);
  }

  void StackNode(uint32_t t, uint64_t node, uint64_t parent, uint64_t ip) {
    Put(t, [&](format::ChunkEncoder& e) { return e.PutStackNode(node, parent, ip); });
  }
  void Module(uint32_t t, uint64_t time, uint64_t id, uint64_t load, const std::string& path,
              const std::string& build_id, std::vector<format::SegmentInfo> segments) {
    Put(t, [&](format::ChunkEncoder& e) {
      return e.PutModule(time, id, load, path.data(), path.size(),
                         reinterpret_cast<const uint8_t*>(build_id.data()), build_id.size(),
                         segments.data(), segments.size());
    });
  }
  void Process(uint32_t t, uint64_t time, const std::string& exe,
               const std::vector<std::string>& argv, uint64_t parent_pid = 1,
               const std::string& parent_trace = "") {
    std::vector<const char*> ptrs;
    size_t bytes = 0;
    for (const auto& a : argv) {
      ptrs.push_back(a.c_str());
      bytes += a.size();
    }
    Put(t, [&](format::ChunkEncoder& e) {
      return e.PutProcess(time, exe.data(), exe.size(), ptrs.data(), ptrs.size(), bytes,
                          parent_pid, parent_trace.data(), parent_trace.size());
    });
  }
  void Fork(uint32_t t, uint64_t time, uint64_t child_pid) {
    Put(t, [&](format::ChunkEncoder& e) { return e.PutFork(time, child_pid); });
  }
  void Inherited(uint32_t t, uint64_t time, uint64_t id, format::Api api, uint64_t size,
                 uint64_t stack) {
    Put(t, [&](format::ChunkEncoder& e) { return e.PutInherited(time, id, api, size, stack); });
  }
  void Rss(uint32_t t, uint64_t time, uint64_t bytes) {
    Put(t, [&](format::ChunkEncoder& e) { return e.PutRss(time, bytes); });
  }
  void Marker(uint32_t t, uint64_t time, const std::string& name) {
    Put(t, [&](format::ChunkEncoder& e) { return e.PutMarker(time, name.data(), name.size()); });
  }
  void AllocFailed(uint32_t t, uint64_t time, uint64_t size) {
    Put(t, [&](format::ChunkEncoder& e) {
      return e.PutAllocFailed(time, format::Api::kMalloc, size, 0, 0);
    });
  }
  void End(uint32_t t, uint64_t time, int64_t status = 0,
           format::EndReason reason = format::EndReason::kExit) {
    Put(t, [&](format::ChunkEncoder& e) { return e.PutEnd(time, reason, status); });
  }

  // The preload's exec sequence: kExec, then kEnd(kExec) (ExecEnd); a
  // failed exec adds kExecFailed after them.
  void Exec(uint32_t t, uint64_t time, const std::string& path) {
    Put(t, [&](format::ChunkEncoder& e) { return e.PutExec(time, path.data(), path.size()); });
  }
  void ExecEnd(uint32_t t, uint64_t time, const std::string& path) {
    Exec(t, time, path);
    End(t, time, 0, format::EndReason::kExec);
  }
  void ExecFailed(uint32_t t, uint64_t time) {
    Put(t, [&](format::ChunkEncoder& e) { return e.PutExecFailed(time); });
  }

  // Issue 5's records (leak scan, classes, free errors).
  void LeakScan(uint32_t t, uint64_t time, uint64_t scan,
                format::ScanReason reason = format::ScanReason::kExit) {
    uint64_t zeros[format::kLeakClassCount] = {};
    Put(t, [&](format::ChunkEncoder& e) {
      return e.PutLeakScan(time, scan, reason, 10, 0, 0, 4096, 0, zeros, zeros);
    });
  }
  void BlockClasses(uint32_t t, uint64_t scan, format::LeakClass c,
                    const std::vector<uint64_t>& ids) {
    Put(t, [&](format::ChunkEncoder& e) {
      return e.PutBlockClasses(scan, c, ids.data(), ids.size());
    });
  }
  void FreeError(uint32_t t, uint64_t time, format::Api api, format::FreeError error,
                 uint64_t address, uint64_t stack, uint64_t alloc_id) {
    Put(t, [&](format::ChunkEncoder& e) {
      return e.PutFreeError(time, api, error, format::FreeAction::kSkipped, address, stack,
                            alloc_id);
    });
  }

  // Writes thread t's pending chunk as a block (no-op if empty).
  void Flush(uint32_t t) {
    Thread& th = T(t);
    if (!th.open || th.encoder.empty()) return;
    th.encoder.Seal();
    format::BlockHeader b = format::MakeBlockHeader(
        th.encoder.data(), static_cast<uint32_t>(th.encoder.size()), format::Codec::kRaw,
        static_cast<uint32_t>(th.encoder.size()));
    block_offsets_.push_back(bytes_.size());
    if (zstd_) {
      std::vector<uint8_t> out(ZSTD_compressBound(th.encoder.size()));
      size_t n = ZSTD_compress(out.data(), out.size(), th.encoder.data(), th.encoder.size(), 1);
      b.codec = static_cast<uint8_t>(format::Codec::kZstd);
      b.payload_size = static_cast<uint32_t>(n);
      Append(&b, sizeof b);
      Append(out.data(), n);
    } else {
      Append(&b, sizeof b);
      Append(th.encoder.data(), th.encoder.size());
    }
    th.open = false;
    ++th.sequence;
  }
  void FlushAll() {
    for (auto& [t, th] : threads_) Flush(t);
  }

  // Base time of thread t's next chunk (default 0; the preload writes the
  // chunk's start time, a lower bound of its records' times).
  void set_base_time(uint32_t t, uint64_t time) { T(t).last_time = time; }

  // Compress blocks with zstd (codec 1) from now on.
  void set_zstd(bool on) { zstd_ = on; }

  // The trace so far (after FlushAll, complete).
  const std::string& bytes() const { return bytes_; }
  // File offsets of every block written.
  const std::vector<size_t>& block_offsets() const { return block_offsets_; }

  bool WriteFile(const std::string& path) {
    FlushAll();
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (f == nullptr) return false;
    bool ok = std::fwrite(bytes_.data(), 1, bytes_.size(), f) == bytes_.size();
    return std::fclose(f) == 0 && ok;
  }

 private:
  struct Thread {
    format::ChunkEncoder encoder;
    std::vector<uint8_t> buffer;
    bool open = false;
    uint64_t sequence = 0;
    uint64_t next_counter = 0;
    uint64_t last_time = 0;
  };

  // The preload's cell at `address` (one event more, by thread t): the
  // order value of the event, or `forced` if a test gives one.
  uint64_t CellEvent(uint32_t t, uint64_t address, int forced) {
    Cell& c = cells_[address];
    const bool hand_off = c.used && c.owner != t;
    ++c.count;
    c.used = true;
    c.owner = t;
    if (forced >= 0) return static_cast<uint64_t>(forced);
    return hand_off ? format::AddressOrder(c.count) : format::kAddressOrderNone;
  }
  struct Cell {
    uint32_t count = 0;
    uint32_t owner = 0;
    bool used = false;
  };
  std::map<uint64_t, Cell> cells_;

  Thread& T(uint32_t t) {
    auto& th = threads_[t];
    if (th == nullptr) th = std::make_unique<Thread>();
    return *th;
  }

  template <typename F>
  void Put(uint32_t t, F&& put) {
    Thread& th = T(t);
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!th.open) {
        th.buffer.assign(capacity_, 0);
        format::ChunkHeader h{};
        h.thread_index = t;
        h.tid = 1000 + t;
        h.sequence = th.sequence;
        h.base_time_us = th.last_time;
        h.first_alloc_counter = th.next_counter;
        th.encoder.Begin(th.buffer.data(), th.buffer.size(), h);
        th.open = true;
      }
      if (put(th.encoder)) return;
      Flush(t);
    }
    std::abort();  // record larger than a chunk
  }

  void Append(const void* p, size_t n) { bytes_.append(static_cast<const char*>(p), n); }

  size_t capacity_;
  bool zstd_ = false;
  std::string bytes_;
  std::vector<size_t> block_offsets_;
  std::map<uint32_t, std::unique_ptr<Thread>> threads_;
};

}  // namespace heapsight::testing

#endif  // HEAPSIGHT_TESTS_ANALYZER_TEST_TRACE_WRITER_H_
