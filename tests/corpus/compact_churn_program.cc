// tests/corpus/compact_churn_program.cc: a program whose frees do not follow
// allocation order, for compact_frees_test.cc. Deterministic: threads run
// one after another (each joined before the next starts), so every count,
// the peak and the leaks are the same in every run, with or without compact
// frees; yet blocks move between threads (the main thread frees what the
// workers allocated) and reallocs grow and shrink blocks of one stack.
//
// Per run: 3 workers x (3,000 node allocations of 3 sizes from one stack,
// freed in a scrambled order except every 250th, kept: 12 per worker, 36
// in all, 24 reachable from g_kept, 12 dropped: definitely lost), 3 x 200
// buffers grown by realloc 4 times (freed newest first, but the worker
// hands its last 50 to main, which frees them oldest first), and 1,000
// temporaries in main (or as many as the first argument says: a long run
// for the chunk-size test). Output: one line of totals.
#include <pthread.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

constexpr int kWorkers = 3;
constexpr int kNodes = 3000;
constexpr int kBuffers = 200;
constexpr int kHandedOver = 50;

void* g_kept[kWorkers * 8];
int g_kept_count = 0;
void* g_handed[kWorkers][kHandedOver];

__attribute__((noinline)) void* MakeNode(size_t size) {
  void* p = std::malloc(size);
  std::memset(p, 1, size);
  return p;
}

__attribute__((noinline)) void* GrowBuffer(void* p, size_t size) {
  void* q = std::realloc(p, size);
  std::memset(q, 2, size);
  return q;
}

__attribute__((noinline)) char* Temporary(size_t size) {
  char* p = new char[size];
  p[0] = 1;
  return p;
}

void* Worker(void* arg) {
  const int w = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  static void* nodes[kNodes];
  for (int i = 0; i < kNodes; ++i) nodes[i] = MakeNode(16 + 16 * static_cast<size_t>(i % 3));
  // A scrambled free order: i * 1237 mod 3000 visits every index once
  // (1237 and 3000 are coprime).
  int leaked = 0;
  for (int k = 0; k < kNodes; ++k) {
    int i = static_cast<int>((static_cast<int64_t>(k) * 1237) % kNodes);
    if (i % 250 == 0) {
      // Kept: two of three reachable, the third dropped (definitely lost).
      if (leaked++ % 3 != 2) g_kept[g_kept_count++] = nodes[i];
      nodes[i] = nullptr;  // no pointer left here: a dropped one is lost
      continue;
    }
    std::free(nodes[i]);
    nodes[i] = nullptr;
  }
  static void* buffers[kBuffers];
  for (int i = 0; i < kBuffers; ++i) buffers[i] = GrowBuffer(nullptr, 8);
  for (int step = 1; step <= 4; ++step) {
    for (int i = 0; i < kBuffers; ++i) {
      buffers[i] = GrowBuffer(buffers[i], static_cast<size_t>(8 + 24 * step + (i % 2) * 8));
    }
  }
  for (int i = kBuffers - 1; i >= kHandedOver; --i) std::free(buffers[i]);
  for (int i = 0; i < kHandedOver; ++i) g_handed[w][i] = buffers[i];
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  const long temporaries = argc > 1 ? std::atol(argv[1]) : 1000;
  for (int w = 0; w < kWorkers; ++w) {
    pthread_t t;
    if (pthread_create(&t, nullptr, Worker, reinterpret_cast<void*>(static_cast<intptr_t>(w))) !=
        0) {
      return 1;
    }
    pthread_join(t, nullptr);
  }
  // Another thread's blocks, oldest first.
  for (int w = 0; w < kWorkers; ++w) {
    for (int i = 0; i < kHandedOver; ++i) std::free(g_handed[w][i]);
  }
  long sum = 0;
  for (long i = 0; i < temporaries; ++i) {
    char* t = Temporary(static_cast<size_t>(32 + i % 4));
    sum += t[0];
    delete[] t;
  }
  std::printf("kept %d sum %ld\n", g_kept_count, sum);
  return 0;
}
