// examples/03_memory_pooling.cc: lesson 3, memory pooling (Go's sync.Pool).
//
// A server handles kRequests requests; each needs a 4 KiB scratch buffer.
//   costly:   HandleWithNew allocates and deletes a Buffer per request
//             -> kRequests allocations of 4096 bytes.
//   improved: HandleWithPool takes buffers from a BufferPool that owns
//             kPoolSize buffers, created once (FillPool), plus a
//             std::pmr::unsynchronized_pool_resource for per-request
//             strings, backed by one upstream chunk reused for every request.
//             -> a small constant number of allocations, whatever kRequests.
#include <cstddef>
#include <cstring>
#include <memory>
#include <memory_resource>
#include <string>
#include <vector>

#include "example_util.h"

namespace {

constexpr int kRequests = 10000;
constexpr int kPoolSize = 4;
constexpr size_t kBufferBytes = 4096;

struct Buffer {
  char bytes[kBufferBytes];
};

HS_NOINLINE long HandleWithNew() {
  long checksum = 0;
  for (int i = 0; i < kRequests; ++i) {
    Buffer* buf = new Buffer;
    std::memset(buf->bytes, i & 0xff, sizeof buf->bytes);
    checksum += buf->bytes[i % kBufferBytes];
    delete buf;
  }
  return checksum;
}

// A fixed-size free list: Get() and Put() never allocate after FillPool.
class BufferPool {
 public:
  HS_NOINLINE void FillPool() {
    storage_.reserve(kPoolSize);
    free_.reserve(kPoolSize);
    for (int i = 0; i < kPoolSize; ++i) {
      storage_.push_back(std::make_unique<Buffer>());
      free_.push_back(storage_.back().get());
    }
  }
  Buffer* Get() {
    Buffer* b = free_.back();
    free_.pop_back();
    return b;
  }
  void Put(Buffer* b) { free_.push_back(b); }

 private:
  std::vector<std::unique_ptr<Buffer>> storage_;
  std::vector<Buffer*> free_;
};

HS_NOINLINE long HandleWithPool() {
  BufferPool pool;
  pool.FillPool();
  // Per-request strings come from a pmr pool whose upstream is a fixed arena:
  // the arena is allocated once, the pool recycles its blocks.
  std::vector<std::byte> arena(64 * 1024);
  std::pmr::monotonic_buffer_resource upstream(arena.data(), arena.size(),
                                               std::pmr::null_memory_resource());
  std::pmr::unsynchronized_pool_resource strings(&upstream);
  long checksum = 0;
  for (int i = 0; i < kRequests; ++i) {
    Buffer* buf = pool.Get();
    std::memset(buf->bytes, i & 0xff, sizeof buf->bytes);
    std::pmr::string header(100, 'h', &strings);
    checksum += buf->bytes[i % kBufferBytes] + static_cast<long>(header.size());
    pool.Put(buf);
  }
  return checksum;
}

}  // namespace

int main(int argc, char** argv) {
  examples::Mode mode;
  if (!examples::ParseMode(argc, argv, &mode)) return 2;
  long checksum = mode == examples::Mode::kCostly ? HandleWithNew() : HandleWithPool();
  examples::KeepAlive(checksum);
  return 0;
}
