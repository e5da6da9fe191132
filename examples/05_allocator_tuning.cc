// examples/05_allocator_tuning.cc: lesson 5, GC tuning -> allocator tuning.
//
// Go tunes its collector with GOGC. A C++ program's equivalent knobs are the
// allocator's: glibc keeps freed memory for reuse instead of returning it to
// the kernel, so RSS stays high after the heap shrinks. Both versions build
// a 256 MiB working set of 4 KiB blocks, free all but every 64th block, then
// idle briefly while heapsight samples RSS.
//   costly:   default glibc settings: the surviving blocks pin the arena's
//             pages, RSS stays near the peak while heap-in-use is ~4 MiB.
//   improved: mallopt(M_MMAP_THRESHOLD, 64 KiB) and M_TRIM_THRESHOLD set low,
//             then malloc_trim(0) after the free: glibc hands the free pages
//             back (MADV_DONTNEED) and RSS follows the heap down.
// Markers "built" and "released" (heapsight.h) bracket the release, so the
// RSS samples after "released" can be compared with the heap there.
// MALLOC_ARENA_MAX=1 in the environment also applies (fewer arenas, less
// retained memory in threaded programs); see docs/lessons.md.
#include <malloc.h>
#include <time.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#include "example_util.h"
#include "heapsight.h"

namespace {

constexpr size_t kBlockBytes = 4096;
constexpr size_t kBlocks = 64 * 1024;  // 256 MiB
constexpr size_t kKeepEvery = 64;

HS_NOINLINE std::vector<char*> BuildWorkingSet() {
  std::vector<char*> blocks;
  blocks.reserve(kBlocks);
  for (size_t i = 0; i < kBlocks; ++i) {
    char* b = static_cast<char*>(std::malloc(kBlockBytes));
    std::memset(b, 1, kBlockBytes);
    blocks.push_back(b);
  }
  return blocks;
}

HS_NOINLINE void ReleaseMost(std::vector<char*>& blocks) {
  for (size_t i = 0; i < blocks.size(); ++i) {
    if (i % kKeepEvery != 0) {
      std::free(blocks[i]);
      blocks[i] = nullptr;
    }
  }
}

// Idles ~200 ms with a trickle of small allocations so the tracer keeps
// sampling RSS.
HS_NOINLINE void Idle() {
  for (int i = 0; i < 40; ++i) {
    void* p = std::malloc(32);
    examples::KeepAlive(p);
    std::free(p);
    timespec ts{0, 5 * 1000 * 1000};
    nanosleep(&ts, nullptr);
  }
}

}  // namespace

int main(int argc, char** argv) {
  examples::Mode mode;
  if (!examples::ParseMode(argc, argv, &mode)) return 2;
  if (mode == examples::Mode::kImproved) {
    mallopt(M_MMAP_THRESHOLD, 64 * 1024);
    mallopt(M_TRIM_THRESHOLD, 128 * 1024);
  }
  std::vector<char*> blocks = BuildWorkingSet();
  Idle();
  heapsight_marker("built");
  ReleaseMost(blocks);
  if (mode == examples::Mode::kImproved) malloc_trim(0);
  heapsight_marker("released");  // RSS samples after this show what glibc kept
  Idle();
  for (char* b : blocks) std::free(b);
  return 0;
}
