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
//   leak_scan_bench roots [N] [TOTAL] [ROOT_MIB]
//                                          times LeakClassifier on a root
//                                          mapping of ROOT_MIB (default 256)
//                                          copied in 64 KiB pieces as the
//                                          exit scan reads mappings; most of
//                                          its words point between the heap's
//                                          lowest and highest block but into
//                                          no block (cc1plus's GC pages),
//                                          see Roots() below; a fifth argument
//                                          "outside" puts those words above
//                                          the highest block instead
//   leak_scan_bench exit [N] [TOTAL]       builds the heap and exits; run it
//                                          under libheapsight.so and read the
//                                          scan time from the trace:
//      heapsight record -o t.hst -- leak_scan_bench exit
//      heapsight leaks --format=json t.hst | jq '.processes[0].scan_duration_us'
#include <sys/mman.h>

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

// Words scanned and, where the classifier has the granule filter (scan24),
// the words it let through to the block search.
template <typename Classifier>
uint64_t WordsSearched(const Classifier& c) {
  if constexpr (requires { c.words_searched(); }) {
    return c.words_searched();
  } else {
    return 0;
  }
}

// The "roots" mode: a heap of n blocks plus one large (mmap'ed, so placed
// apart) block, and a root mapping whose words are, in a fixed random mix:
// 60% "foreign" pointers (the program's own memory that lies between the
// heap's blocks, as another allocator's pages do: addresses in the widest
// gap between two blocks, which need not be mapped as they are only
// compared; "outside": the same moved above the highest block), 30% small
// integers, 9% text-like bytes, 1% pointers to heap blocks.
int Roots(Heap& heap, size_t root_mib, bool foreign_inside) {
  void* big = std::malloc(size_t{4} << 20);
  size_t words = root_mib * (size_t{1} << 20) / sizeof(uintptr_t);
  auto* roots = static_cast<uintptr_t*>(mmap(nullptr, words * sizeof(uintptr_t),
                                             PROT_READ | PROT_WRITE,
                                             MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  if (big == nullptr || roots == MAP_FAILED) return 1;
  // The big block joins the sorted block list.
  auto at = std::upper_bound(heap.starts.begin(), heap.starts.end(),
                             reinterpret_cast<uintptr_t>(big));
  size_t pos = static_cast<size_t>(at - heap.starts.begin());
  heap.starts.insert(at, reinterpret_cast<uintptr_t>(big));
  heap.sizes.insert(heap.sizes.begin() + static_cast<std::ptrdiff_t>(pos), size_t{4} << 20);
  uintptr_t gap_lo = 0, gap_size = 0;
  for (size_t i = 0; i + 1 < heap.starts.size(); ++i) {
    uintptr_t end = (heap.starts[i] + heap.sizes[i] + 4095) & ~uintptr_t{4095};
    if (heap.starts[i + 1] > end && heap.starts[i + 1] - end > gap_size) {
      gap_lo = end;
      gap_size = heap.starts[i + 1] - end;
    }
  }
  uintptr_t lo = heap.starts.front(), hi = heap.starts.back() + heap.sizes.back();
  if (!foreign_inside || gap_size < 4096) {
    gap_lo = hi + (uintptr_t{1} << 30);
    gap_size = uintptr_t{1} << 30;
  }
  const uintptr_t foreign_size = std::min<uintptr_t>(gap_size, uintptr_t{64} << 20);
  std::mt19937_64 rng(2);
  for (size_t i = 0; i < words; ++i) {
    uint64_t r = rng() % 100;
    if (r < 60) {
      roots[i] = gap_lo + (rng() % foreign_size & ~uintptr_t{7});
    } else if (r < 90) {
      roots[i] = rng() % 4096;
    } else if (r < 99) {
      roots[i] = 0x6f6c6c6568206120u + rng() % 256;
    } else {
      roots[i] = heap.starts[rng() % heap.starts.size()];
    }
  }
  std::printf("span of the blocks %#lx-%#lx; foreign words in %#lx-%#lx (%s the span)\n",
              static_cast<unsigned long>(lo), static_cast<unsigned long>(hi),
              static_cast<unsigned long>(gap_lo),
              static_cast<unsigned long>(gap_lo + foreign_size),
              gap_lo >= lo && gap_lo < hi ? "inside" : "outside");
  std::vector<uintptr_t> buffer((size_t{64} << 10) / sizeof(uintptr_t));
  auto t0 = std::chrono::steady_clock::now();
  heapsight::preload::LeakClassifier c;
  if (!c.Init(heap.starts.data(), heap.sizes.data(), heap.starts.size(), {})) return 1;
  for (size_t i = 0; i < words; i += buffer.size()) {
    size_t n = std::min(buffer.size(), words - i);
    std::memcpy(buffer.data(), roots + i, n * sizeof(uintptr_t));
    c.ScanCopiedWords(buffer.data(), n);
  }
  c.Finish();
  auto t1 = std::chrono::steady_clock::now();
  uint64_t count[5] = {};
  for (size_t i = 0; i < heap.starts.size(); ++i) ++count[static_cast<int>(c.ClassOf(i))];
  double seconds = std::chrono::duration<double>(t1 - t0).count();
  std::printf("roots: %.1f M words scanned, %lu searched, in %.3f s (%.2f ns per word): "
              "definite %lu, indirect %lu, possible %lu, reachable %lu\n",
              c.words_scanned() / 1e6, static_cast<unsigned long>(WordsSearched(c)), seconds,
              seconds * 1e9 / static_cast<double>(c.words_scanned()),
              static_cast<unsigned long>(count[1]), static_cast<unsigned long>(count[2]),
              static_cast<unsigned long>(count[3]), static_cast<unsigned long>(count[4]));
  return 0;
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
  if (std::strcmp(mode, "roots") == 0) {
    return Roots(heap, argc > 4 ? std::strtoull(argv[4], nullptr, 10) : 256,
                 !(argc > 5 && std::strcmp(argv[5], "outside") == 0));
  }

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
