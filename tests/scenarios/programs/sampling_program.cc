// tests/scenarios/programs/sampling_program.cc: a fixed allocation pattern
// for HEAPSIGHT_SAMPLE_BYTES (tests/scenarios/sampling_test.cc).
//
//   AllocateBlocks: 200,000 x malloc(1000), each freed at once except the
//                   last 1,000, which stay live until exit
//   GrowBlocks:     10,000 x { malloc(100), realloc to 5000, free }
//   MixedSizes:     100,000 x malloc + free, alternately 24 and 12,000 bytes
//                   (one call site of two very different sizes, for the
//                   analyzer's per-allocation estimates)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace {

constexpr int kBlocks = 200000;
constexpr int kKept = 1000;
constexpr int kGrown = 10000;

void* g_kept[kKept];

}  // namespace

// extern "C": the test names frames from the ELF symbol table, unmangled.
extern "C" __attribute__((noinline)) void AllocateBlocks() {
  for (int i = 0; i < kBlocks; ++i) {
    void* p = malloc(1000);
    memset(p, 1, 16);
    if (i >= kBlocks - kKept) {
      g_kept[i - (kBlocks - kKept)] = p;
    } else {
      free(p);
    }
  }
}

extern "C" __attribute__((noinline)) void GrowBlocks() {
  for (int i = 0; i < kGrown; ++i) {
    void* p = malloc(100);
    memset(p, 2, 100);
    void* q = realloc(p, 5000);
    if (q == nullptr) abort();
    free(q);
  }
}

extern "C" __attribute__((noinline)) void MixedSizes() {
  for (int i = 0; i < 100000; ++i) {
    void* p = malloc(i % 2 == 0 ? 24 : 12000);
    memset(p, 3, 16);
    free(p);
  }
}

int main() {
  AllocateBlocks();
  GrowBlocks();
  MixedSizes();
  puts("sampling done");
  return 0;
}
