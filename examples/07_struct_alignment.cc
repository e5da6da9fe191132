// examples/07_struct_alignment.cc: lesson 7, struct alignment.
//
// One million records with a careless field order (Padded: 32 bytes, 16 of
// them padding) vs the same fields sorted by size (Packed: 16 bytes, see the
// static_asserts). The allocated bytes differ by exactly
// kRecords x (sizeof(Padded) - sizeof(Packed)) = 16,000,000 bytes.
// Second part: per-thread counters. Adjacent longs share a cache line (false
// sharing); alignas(64) gives each its own line, which shows in the trace as
// an aligned operator new[] (std::align_val_t) allocation.
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

#include "example_util.h"

namespace {

constexpr size_t kRecords = 1000000;
constexpr int kThreads = 2;
constexpr long kIncrements = 1000000;

struct Padded {
  bool active;      // 1 + 7 padding
  double score;     // 8
  uint16_t kind;    // 2 + 2 padding
  int32_t count;    // 4
  bool flagged;     // 1 + 7 padding
};
struct Packed {
  double score;     // 8
  int32_t count;    // 4
  uint16_t kind;    // 2
  bool active;      // 1
  bool flagged;     // 1
};
static_assert(sizeof(Padded) == 32, "Padded is 32 bytes");
static_assert(sizeof(Packed) == 16, "Packed is 16 bytes");

HS_NOINLINE Padded* AllocatePadded() {
  Padded* records = new Padded[kRecords];
  for (size_t i = 0; i < kRecords; ++i) records[i] = Padded{true, 1.0, 1, 1, false};
  return records;
}

HS_NOINLINE Packed* AllocatePacked() {
  Packed* records = new Packed[kRecords];
  for (size_t i = 0; i < kRecords; ++i) records[i] = Packed{1.0, 1, 1, true, false};
  return records;
}

struct SharedCounter {
  std::atomic<long> value{0};
};
struct alignas(64) PaddedCounter {
  std::atomic<long> value{0};
};
static_assert(sizeof(PaddedCounter) == 64);

template <class Counter>
HS_NOINLINE void Count(Counter* counters) {
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([counters, t] {
      for (long i = 0; i < kIncrements; ++i) {
        counters[t].value.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }
  for (auto& th : threads) th.join();
}

HS_NOINLINE SharedCounter* AllocateSharedCounters() { return new SharedCounter[kThreads]; }
HS_NOINLINE PaddedCounter* AllocateAlignedCounters() { return new PaddedCounter[kThreads]; }

}  // namespace

int main(int argc, char** argv) {
  examples::Mode mode;
  if (!examples::ParseMode(argc, argv, &mode)) return 2;
  if (mode == examples::Mode::kCostly) {
    Padded* records = AllocatePadded();
    SharedCounter* counters = AllocateSharedCounters();
    Count(counters);
    delete[] counters;
    delete[] records;
  } else {
    Packed* records = AllocatePacked();
    PaddedCounter* counters = AllocateAlignedCounters();
    Count(counters);
    delete[] counters;
    delete[] records;
  }
  return 0;
}
