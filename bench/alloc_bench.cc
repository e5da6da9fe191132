// bench/alloc_bench.cc: a malloc-heavy microbenchmark for comparing
// heapsight with heaptrack and valgrind.
//
// Every allocation is made from a call chain 12 frames deep (noinline,
// no sibling calls), from one of four leaf paths so the trace holds a few
// distinct stacks. Sizes are pseudo-random in [8, 255]. Half the blocks are
// freed at once, the other half go into a ring of live blocks and are freed
// when their slot is reused (and at the end). The total work is split evenly
// over --threads threads.
//
// Usage: alloc_bench [--threads N] [--allocs TOTAL] [--ring SLOTS] [--spawn]
//                    [--many-stacks] [--depth 12|60|200] [--recursive]
// --spawn runs even a single worker on a thread of its own, so its stacks
// are as deep as with N threads (a tracer that ends stacks at main records
// four frames fewer for a worker running on the main thread).
// --many-stacks makes every allocation come from one of 4,096 distinct call
// chains (12 levels of two mutually recursive functions), picked at random, for
// tracers that cache recent stacks.
// --depth D (12, the default, 60 or 200) makes every stack D frames deep
// (Worker, Loop, Allocate and a chain of D - 3 functions down to malloc):
// the same four paths, deeper.
// --recursive: an interpreter's shape. Each worker first recurses 60 frames
// deep (Descend), then runs its loop there; every allocation comes from a
// chain of 1 to 8 frames of ForkA/ForkB picked at random (up to 510
// distinct tops), so the 60 outer frames stay while the top ones vary.
// Prints one line: threads, allocations, frees, wall seconds, ns per op
// (wall), where an op is one allocation or one free.
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

namespace {

// Keeps the compiler from pairing and deleting malloc/free; each thread adds
// its sum once at the end (no shared cache line on the hot path).
std::atomic<uint64_t> g_checksum{0};

// xorshift64*: cheap and deterministic per thread.
struct Rng {
  uint64_t state;
  uint64_t Next() {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return state * 2685821657736338717ull;
  }
};

template <int kDepth, int kPath>
__attribute__((noinline)) void* Chain(size_t size) {
  if constexpr (kDepth == 0) {
    void* p = std::malloc(size);
    static_cast<volatile unsigned char*>(p)[0] = static_cast<unsigned char>(size);
    return p;
  } else {
    void* p = Chain<kDepth - 1, kPath>(size);
    asm volatile("" : : "r"(p) : "memory");  // not a tail call: keep the frame
    return p;
  }
}

// --many-stacks: `level` more frames of ForkA/ForkB, one of 2^level chains
// chosen by the bits of `bits`.
__attribute__((noinline)) void* ForkB(uint64_t bits, int level, size_t size);
__attribute__((noinline)) void* ForkA(uint64_t bits, int level, size_t size) {
  void* p = level == 0   ? std::malloc(size)
            : (bits & 1) ? ForkA(bits >> 1, level - 1, size)
                         : ForkB(bits >> 1, level - 1, size);
  asm volatile("" : : "r"(p) : "memory");
  return p;
}
__attribute__((noinline)) void* ForkB(uint64_t bits, int level, size_t size) {
  void* p = level == 0   ? std::malloc(size)
            : (bits & 1) ? ForkA(bits >> 1, level - 1, size)
                         : ForkB(bits >> 1, level - 1, size);
  asm volatile("" : : "r"(p) : "memory");
  return p;
}

bool g_many_stacks = false;
bool g_recursive = false;
int g_depth = 12;

// `kChain` + 1 frames from Allocate down to malloc.
template <int kChain>
__attribute__((always_inline)) inline void* AllocateChain(size_t size, uint64_t path) {
  switch (path & 3) {
    case 0: return Chain<kChain, 0>(size);
    case 1: return Chain<kChain, 1>(size);
    case 2: return Chain<kChain, 2>(size);
    default: return Chain<kChain, 3>(size);
  }
}

// With Worker and Loop above it, g_depth frames: Worker -> Loop -> Allocate
// -> Chain<depth-4> ... Chain<0> -> malloc.
__attribute__((noinline)) void* Allocate(size_t size, uint64_t path) {
  void* p;
  if (g_many_stacks) {
    p = ForkA(path, 12, size);
  } else if (g_recursive) {
    p = ForkA(path >> 3, static_cast<int>(path & 7), size);
  } else if (g_depth == 60) {
    p = AllocateChain<56>(size, path);
  } else if (g_depth == 200) {
    p = AllocateChain<196>(size, path);
  } else {
    p = AllocateChain<8>(size, path);
  }
  asm volatile("" : : "r"(p) : "memory");
  return p;
}

__attribute__((noinline)) unsigned Release(void* p) {
  unsigned byte = static_cast<volatile unsigned char*>(p)[0];
  std::free(p);
  return byte;
}

struct WorkerResult {
  uint64_t allocs = 0;
  uint64_t frees = 0;
};

__attribute__((noinline)) void Loop(uint64_t allocs, size_t ring_slots, uint64_t seed,
                                    WorkerResult* result) {
  Rng rng{seed * 0x9E3779B97F4A7C15ull + 1};
  uint64_t checksum = 0;
  std::vector<void*> ring(ring_slots, nullptr);
  size_t next_slot = 0;
  for (uint64_t i = 0; i < allocs; ++i) {
    uint64_t r = rng.Next();
    size_t size = 8 + (r % 248);
    void* p = Allocate(size, r >> 20);
    ++result->allocs;
    if ((r >> 40) & 1) {  // half: freed at once
      checksum += Release(p);
      ++result->frees;
    } else {  // the other half: freed later, when the ring slot comes round
      void*& slot = ring[next_slot];
      next_slot = (next_slot + 1) % ring_slots;
      if (slot != nullptr) {
        checksum += Release(slot);
        ++result->frees;
      }
      slot = p;
    }
  }
  for (void* p : ring) {
    if (p != nullptr) {
      checksum += Release(p);
      ++result->frees;
    }
  }
  g_checksum.fetch_add(checksum, std::memory_order_relaxed);
}

// --recursive: `levels` frames of Descend above Loop.
__attribute__((noinline)) void Descend(int levels, uint64_t allocs, size_t ring_slots,
                                       uint64_t seed, WorkerResult* result) {
  if (levels == 0) {
    Loop(allocs, ring_slots, seed, result);
  } else {
    Descend(levels - 1, allocs, ring_slots, seed, result);
  }
  asm volatile("" ::: "memory");  // not a tail call: keep the frame
}

__attribute__((noinline)) void Worker(uint64_t allocs, size_t ring_slots, uint64_t seed,
                                      WorkerResult* result) {
  if (g_recursive) {
    Descend(60, allocs, ring_slots, seed, result);
  } else {
    Loop(allocs, ring_slots, seed, result);
  }
  asm volatile("" ::: "memory");
}

uint64_t ParseCount(const char* text) {
  char* end = nullptr;
  double v = std::strtod(text, &end);  // accepts 2e6
  if (end == text || v < 1) {
    std::fprintf(stderr, "alloc_bench: bad count '%s'\n", text);
    std::exit(2);
  }
  return static_cast<uint64_t>(v);
}

}  // namespace

int main(int argc, char** argv) {
  uint64_t threads = 1, total = 2'000'000, ring = 4096;
  bool spawn = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (i + 1 < argc && arg == "--threads") {
      threads = ParseCount(argv[++i]);
    } else if (i + 1 < argc && arg == "--allocs") {
      total = ParseCount(argv[++i]);
    } else if (i + 1 < argc && arg == "--ring") {
      ring = ParseCount(argv[++i]);
    } else if (arg == "--spawn") {
      spawn = true;
    } else if (arg == "--many-stacks") {
      g_many_stacks = true;
    } else if (arg == "--recursive") {
      g_recursive = true;
    } else if (i + 1 < argc && arg == "--depth") {
      g_depth = static_cast<int>(ParseCount(argv[++i]));
      if (g_depth != 12 && g_depth != 60 && g_depth != 200) {
        std::fprintf(stderr, "alloc_bench: --depth is 12, 60 or 200\n");
        return 2;
      }
    } else {
      std::fprintf(stderr,
                   "usage: alloc_bench [--threads N] [--allocs TOTAL] [--ring SLOTS] [--spawn] "
                   "[--many-stacks] [--depth 12|60|200] [--recursive]\n");
      return 2;
    }
  }
  std::vector<WorkerResult> results(threads);
  auto start = std::chrono::steady_clock::now();
  if (threads == 1 && !spawn) {
    Worker(total, ring, 1, &results[0]);
  } else {
    std::vector<std::thread> pool;
    for (uint64_t t = 0; t < threads; ++t) {
      uint64_t share = total / threads + (t < total % threads ? 1 : 0);
      pool.emplace_back(Worker, share, ring, t + 1, &results[t]);
    }
    for (auto& th : pool) th.join();
  }
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint64_t allocs = 0, frees = 0;
  for (const auto& r : results) {
    allocs += r.allocs;
    frees += r.frees;
  }
  std::printf("threads=%llu allocs=%llu frees=%llu wall_s=%.6f ns_per_op=%.2f checksum=%llu\n",
              static_cast<unsigned long long>(threads), static_cast<unsigned long long>(allocs),
              static_cast<unsigned long long>(frees), wall,
              wall * 1e9 / static_cast<double>(allocs + frees),
              static_cast<unsigned long long>(g_checksum.load() & 0xffff));
  return 0;
}
