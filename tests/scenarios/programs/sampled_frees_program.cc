// tests/scenarios/programs/sampled_frees_program.cc: every block freed, many
// by another thread, for the sampled free path
// (tests/scenarios/sampled_frees_test.cc).
//
// Two workers each make kPerWorker blocks of 3,000-3,999 bytes, in turn
// through malloc, calloc, new[] and malloc + realloc (the realloc keeps the
// size in that range). Each worker keeps the last 256 of its blocks live,
// and frees every other block itself and hands the rest to the other
// worker, which frees them (through the matching call). Smaller blocks of
// 16-200 bytes, freed at once, keep the allocator busy between them. At
// the end nothing of the program's is live.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <mutex>
#include <thread>
#include <vector>

namespace {

constexpr int kWorkers = 2;
constexpr int kPerWorker = 20000;
constexpr int kKeep = 256;

struct Block {
  void* p;
  int kind;  // 0 malloc, 1 calloc, 2 new[], 3 realloc
};

// What each worker hands to the other.
std::mutex g_mu;
std::vector<Block> g_inbox[kWorkers];

size_t MagicSize(int worker, int i) { return 3000 + (static_cast<size_t>(i) * 37 + worker) % 1000; }

Block Make(int worker, int i) {
  size_t size = MagicSize(worker, i);
  Block b{nullptr, i % 4};
  switch (b.kind) {
    case 0: b.p = malloc(size); break;
    case 1: b.p = calloc(1, size); break;
    case 2: b.p = new char[size]; break;
    default: {
      void* p = malloc(size);
      b.p = realloc(p, MagicSize(worker, i + 1));
      break;
    }
  }
  if (b.p == nullptr) abort();
  memset(b.p, i, 8);
  return b;
}

void Release(const Block& b) {
  if (b.kind == 2) {
    delete[] static_cast<char*>(b.p);
  } else {
    free(b.p);
  }
}

void Drain(int worker) {
  std::vector<Block> got;
  {
    std::lock_guard<std::mutex> hold(g_mu);
    got.swap(g_inbox[worker]);
  }
  for (const Block& b : got) Release(b);
}

void Worker(int worker) {
  std::vector<Block> kept(kKeep, Block{nullptr, 0});
  for (int i = 0; i < kPerWorker; ++i) {
    Block b = Make(worker, i);
    Block& slot = kept[i % kKeep];
    if (slot.p != nullptr) {
      if (i % 2 == 0) {
        Release(slot);
      } else {
        std::lock_guard<std::mutex> hold(g_mu);
        g_inbox[1 - worker].push_back(slot);
      }
    }
    slot = b;
    void* small = malloc(16 + static_cast<size_t>(i) % 185);
    free(small);
    if (i % 64 == 0) Drain(worker);
  }
  for (const Block& b : kept) Release(b);
}

}  // namespace

int main() {
  std::vector<std::thread> threads;
  for (int w = 0; w < kWorkers; ++w) threads.emplace_back(Worker, w);
  for (std::thread& t : threads) t.join();
  for (int w = 0; w < kWorkers; ++w) Drain(w);
  puts("sampled frees done");
  return 0;
}
