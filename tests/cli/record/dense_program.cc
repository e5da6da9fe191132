// tests/cli/record/dense_program.cc: an event-dense program, for record's
// bounded conversion wait (--convert-wait, cli/record/live_conversion.h).
// 1,000,000 allocations in a fraction of a second, each freed at once or
// after up to 1,024 others (so the free order is not the allocation
// order), nothing left at the end: far more events than the record
// process can pair in the time the program took.
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace {
void* volatile g_sink;  // keeps the allocations from being optimized out
}  // namespace

int main() {
  constexpr int kAllocations = 1'000'000;
  constexpr int kRing = 1024;
  static void* ring[kRing];
  uint64_t x = 88172645463325252ull;
  for (int i = 0; i < kAllocations; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    void* p = std::malloc(16 + x % 200);
    g_sink = p;
    if ((x >> 32) & 1) {
      std::free(p);
      continue;
    }
    void*& slot = ring[i % kRing];
    std::free(slot);
    slot = p;
  }
  for (void*& p : ring) {
    std::free(p);
    p = nullptr;
  }
  g_sink = nullptr;
  const char line[] = "done\n";
  return write(STDOUT_FILENO, line, std::strlen(line)) < 0 ? 1 : 0;
}
