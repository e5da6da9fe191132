// bench/synthetic_trace.cc: writes a large synthetic heapsight trace, for
// the analyzer's time and memory against trace size (issue 16: memory is
// bounded by what is live, time is linear in the trace's length). Not run
// by any test; bench/scale_bench.py drives it.
//
// The trace: `threads` threads, each allocating blocks of 16..1039 bytes
// from 64 stacks (3 frames deep) and freeing its oldest block once it has
// `live` live, until the file reaches `megabytes` MB; zstd-compressed
// chunks of 256 KiB through the format's own encoder (format/chunk_encoder.h).
//
// Usage: synthetic_trace OUT.hst MEGABYTES [THREADS=4] [LIVE=64]
#include <fcntl.h>
#include <unistd.h>
#include <zstd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <vector>

#include "format/chunk_encoder.h"
#include "format/trace_format.h"

namespace {

using heapsight::format::Api;
using heapsight::format::BlockHeader;
using heapsight::format::ChunkEncoder;
using heapsight::format::ChunkHeader;
using heapsight::format::Codec;
using heapsight::format::FileHeader;

constexpr size_t kChunkBytes = 256 << 10;

struct Thread {
  uint32_t index = 0;
  uint64_t sequence = 0;
  uint64_t counter = 0;  // next allocation counter
  std::vector<uint8_t> buffer = std::vector<uint8_t>(kChunkBytes);
  ChunkEncoder encoder;
  bool open = false;
  std::deque<uint64_t> live;
};

class Writer {
 public:
  explicit Writer(int fd) : fd_(fd), out_(ZSTD_compressBound(kChunkBytes)) {}
  bool Write(const void* p, size_t n) {
    written_ += n;
    return ::write(fd_, p, n) == static_cast<ssize_t>(n);
  }
  void Open(Thread& t, uint64_t time) {
    ChunkHeader h{};
    h.thread_index = t.index;
    h.tid = 10000 + t.index;
    h.sequence = t.sequence;
    h.base_time_us = time;
    h.first_alloc_counter = t.counter;
    t.encoder.Begin(t.buffer.data(), t.buffer.size(), h);
    t.open = true;
  }
  bool Flush(Thread& t) {
    if (!t.open || t.encoder.empty()) return true;
    t.encoder.Seal();
    size_t n = ZSTD_compress(out_.data(), out_.size(), t.encoder.data(), t.encoder.size(), 1);
    if (ZSTD_isError(n)) return false;
    BlockHeader b = heapsight::format::MakeBlockHeader(
        t.encoder.data(), static_cast<uint32_t>(t.encoder.size()), Codec::kZstd,
        static_cast<uint32_t>(n));
    t.open = false;
    ++t.sequence;
    return Write(&b, sizeof b) && Write(out_.data(), n);
  }
  uint64_t written() const { return written_; }

 private:
  int fd_;
  std::vector<uint8_t> out_;
  uint64_t written_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s OUT.hst MEGABYTES [THREADS=4] [LIVE=64]\n", argv[0]);
    return 2;
  }
  const uint64_t target = std::strtoull(argv[2], nullptr, 10) << 20;
  const uint32_t threads = argc > 3 ? static_cast<uint32_t>(std::atoi(argv[3])) : 4;
  const size_t live = argc > 4 ? static_cast<size_t>(std::atoll(argv[4])) : 64;
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::perror(argv[1]);
    return 1;
  }
  FileHeader h{};
  std::memcpy(h.magic, heapsight::format::kFileMagic, sizeof h.magic);
  h.version = heapsight::format::kFormatVersion;
  h.header_size = sizeof h;
  h.page_size = 4096;
  h.pid = 4242;
  h.ppid = 1;
  h.start_realtime_ns = 1700000000000000000ull;
  h.start_monotonic_ns = 1000;
  Writer w(fd);
  if (!w.Write(&h, sizeof h)) return 1;
  std::vector<Thread> ts(threads);
  uint64_t time = 0, allocs = 0, frees = 0;
  // Put one record on thread t, flushing its chunk when it is full.
  auto put = [&](Thread& t, auto&& record) {
    for (int attempt = 0; attempt < 2; ++attempt) {
      if (!t.open) w.Open(t, time);
      if (record(t.encoder)) return true;
      if (!w.Flush(t)) return false;
    }
    return false;
  };
  for (uint32_t i = 0; i < threads; ++i) {
    ts[i].index = i + 1;
    for (uint64_t s = 0; s < 64; ++s) {  // stacks: root -> mid -> leaf s
      uint64_t base = (i + 1) * 1000;
      put(ts[i], [&](ChunkEncoder& e) {
        return (s > 0 || e.PutStackNode(base + 1, 0, 0x401000)) &&
               (s > 0 || e.PutStackNode(base + 2, base + 1, 0x402000)) &&
               e.PutStackNode(base + 10 + s, base + 2, 0x403000 + 0x40 * s);
      });
    }
  }
  uint64_t rng = 88172645463325252ull;
  while (w.written() < target) {
    ++time;
    for (Thread& t : ts) {
      rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
      uint64_t stack = t.index * 1000 + 10 + rng % 64;
      if (!put(t, [&](ChunkEncoder& e) {
            return e.PutAlloc(time, Api::kMalloc, 16 + (rng >> 8) % 1024, stack, 0, 0);
          })) {
        return 1;
      }
      t.live.push_back(heapsight::format::MakeAllocId(t.index, t.counter++));
      ++allocs;
      if (t.live.size() > live) {
        uint64_t id = t.live.front();
        t.live.pop_front();
        if (!put(t, [&](ChunkEncoder& e) {
              return e.PutFree(time, Api::kFree, id, t.index, t.counter);
            })) {
          return 1;
        }
        ++frees;
      }
    }
  }
  for (Thread& t : ts) {
    if (!w.Flush(t)) return 1;
  }
  if (close(fd) != 0) return 1;
  std::printf("%s: %llu bytes, %llu allocations, %llu frees, %zu live at the end\n", argv[1],
              static_cast<unsigned long long>(w.written()), static_cast<unsigned long long>(allocs),
              static_cast<unsigned long long>(frees), threads * live);
  return 0;
}
