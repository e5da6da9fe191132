// bench/leak_scan_bench.cc: the leak scan on a large heap (issue 5's
// target: 1 million live blocks totalling 1 GB must classify in seconds).
//
// Builds a heap of N blocks (default 1,000,000) whose sizes average
// TOTAL/N bytes (default 1 GiB), every block's memory filled: a global array
// holds 3/4 of the blocks (still reachable), each of those also points to
// its successor in a chain and holds an interior pointer; 1/8 form lost
// chains (definite head, indirect rest); 1/8 are only held by interior
// pointers (possibly lost); the rest of each block is non-pointer data.
//
//   leak_scan_bench classify [N] [TOTAL]   times LeakClassifier alone
//                                          (the scan's core) in this process
//   leak_scan_bench exit [N] [TOTAL]       builds the heap and exits; run it
//                                          under libheapsight.so and read the
//                                          scan time from the trace:
//      heapsight record -o t.hst -- leak_scan_bench exit
//      heapsight leaks --format=json t.hst | jq '.processes[0].scan_duration_us'
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <random>
#include <vector>

#include "preload/leak_scan.h"

namespace {

void** g_roots = nullptr;  // the still-reachable blocks
size_t g_root_count = 0;

struct Heap {
  std::vector<uintptr_t> starts;
  std::vector<uint64_t> sizes;
};

Heap Build(size_t n, uint64_t total) {
  std::mt19937_64 rng(1);
  uint64_t mean = total / n;
  std::vector<char*> blocks(n);
  std::vector<uint64_t> sizes(n);
  for (size_t i = 0; i < n; ++i) {
    uint64_t size = mean / 2 + rng() % mean;  // mean/2 .. 3*mean/2
    if (size < 32) size = 32;
    sizes[i] = size;
    blocks[i] = static_cast<char*>(std::malloc(size));
    // Non-pointer data (small integers and text), as most heap bytes are.
    std::memset(blocks[i], static_cast<int>(i & 0x7f), size);
  }
  g_roots = static_cast<void**>(std::calloc(n, sizeof(void*)));
  size_t reachable = n * 3 / 4, lost_end = reachable + n / 8;
  for (size_t i = 0; i < n; ++i) {
    auto* w = reinterpret_cast<uintptr_t*>(blocks[i]);
    if (i < reachable) {
      g_roots[g_root_count++] = blocks[i];
      w[0] = reinterpret_cast<uintptr_t>(blocks[(i + 1) % reachable]);
      w[1] = reinterpret_cast<uintptr_t>(blocks[rng() % reachable]) + 8;
    } else if (i < lost_end) {
      // Lost chains of 16: the head is definite, the rest indirect.
      w[0] = (i + 1 < lost_end && (i + 1) % 16 != 0) ? reinterpret_cast<uintptr_t>(blocks[i + 1])
                                                      : 0;
    } else {
      // Possibly lost: an interior pointer from a reachable block.
      reinterpret_cast<uintptr_t*>(blocks[rng() % reachable])[2] =
          reinterpret_cast<uintptr_t>(blocks[i]) + 16;
    }
  }
  Heap heap;
  std::vector<size_t> order(n);
  for (size_t i = 0; i < n; ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return blocks[a] < blocks[b]; });
  for (size_t i : order) {
    heap.starts.push_back(reinterpret_cast<uintptr_t>(blocks[i]));
    heap.sizes.push_back(sizes[i]);
  }
  return heap;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "classify";
  size_t n = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1000000;
  uint64_t total = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : (uint64_t{1} << 30);
  auto t0 = std::chrono::steady_clock::now();
  Heap heap = Build(n, total);
  auto t1 = std::chrono::steady_clock::now();
  uint64_t bytes = 0;
  for (uint64_t s : heap.sizes) bytes += s;
  std::printf("heap: %zu blocks, %.1f MiB, built in %.2f s\n", n, bytes / 1048576.0,
              std::chrono::duration<double>(t1 - t0).count());
  if (std::strcmp(mode, "exit") == 0) return 0;  // the preload scans at exit

  heapsight::preload::LeakClassifier c;
  if (!c.Init(heap.starts.data(), heap.sizes.data(), n, {})) return 1;
  // The root array is a heap block too under the preload; here it is the root.
  c.ScanRange(reinterpret_cast<uintptr_t>(g_roots),
              reinterpret_cast<uintptr_t>(g_roots + g_root_count));
  c.Finish();
  auto t2 = std::chrono::steady_clock::now();
  uint64_t count[5] = {};
  for (size_t i = 0; i < n; ++i) ++count[static_cast<int>(c.ClassOf(i))];
  std::printf("classified in %.3f s (%.1f M words): definite %lu, indirect %lu, possible %lu, "
              "reachable %lu\n",
              std::chrono::duration<double>(t2 - t1).count(), c.words_scanned() / 1e6,
              static_cast<unsigned long>(count[1]), static_cast<unsigned long>(count[2]),
              static_cast<unsigned long>(count[3]), static_cast<unsigned long>(count[4]));
  return 0;
}
