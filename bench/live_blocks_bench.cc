// bench/live_blocks_bench.cc: a program with many live blocks at once, for
// the tracer's memory per live block (issue 15, target 2).
//
// Allocates --blocks blocks (default 20,000,000) of pseudo-random sizes in
// [16, 48] bytes, all live at once, then frees them all in random order
// (unless --keep: then they are still live at exit, as in a leaking program;
// run that with HEAPSIGHT_LEAK_SCAN=0 and HEAPSIGHT_STATS=1 to see the live
// table's bytes per block at exit). Peak RSS is measured by the caller
// (bench/live_blocks_bench.py), plain and under the preload.
//
// Usage: live_blocks_bench [--blocks N] [--keep]
// Prints one line: blocks, wall seconds.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace {

uint64_t g_state = 0x9e3779b97f4a7c15ULL;
uint64_t Next() {  // xorshift64*
  g_state ^= g_state >> 12;
  g_state ^= g_state << 25;
  g_state ^= g_state >> 27;
  return g_state * 0x2545f4914f6cdd1dULL;
}

}  // namespace

int main(int argc, char** argv) {
  size_t blocks = 20000000;
  bool keep = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--blocks") == 0 && i + 1 < argc) {
      blocks = static_cast<size_t>(std::atof(argv[++i]));
    } else if (std::strcmp(argv[i], "--keep") == 0) {
      keep = true;
    } else {
      std::fprintf(stderr, "usage: live_blocks_bench [--blocks N] [--keep]\n");
      return 2;
    }
  }
  auto start = std::chrono::steady_clock::now();
  // The pointer array itself comes from mmap'ed-size malloc: one block.
  auto** live = static_cast<void**>(std::malloc(blocks * sizeof(void*)));
  if (live == nullptr) return 1;
  uint64_t checksum = 0;
  for (size_t i = 0; i < blocks; ++i) {
    size_t size = 16 + Next() % 33;
    auto* p = static_cast<unsigned char*>(std::malloc(size));
    if (p == nullptr) return 1;
    p[0] = static_cast<unsigned char>(i);
    live[i] = p;
  }
  if (!keep) {
    for (size_t i = blocks; i > 1; --i) std::swap(live[i - 1], live[Next() % i]);
    for (size_t i = 0; i < blocks; ++i) {
      checksum += *static_cast<unsigned char*>(live[i]);
      std::free(live[i]);
    }
    std::free(live);
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("blocks %zu wall %.3f checksum %llu\n", blocks, seconds,
              static_cast<unsigned long long>(checksum));
  return 0;
}
