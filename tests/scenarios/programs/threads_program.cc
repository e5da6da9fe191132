// tests/scenarios/programs/threads_program.cc: 4 threads x 100,000
// allocations; each round, every thread frees the blocks its neighbour
// allocated (cross-thread frees, address reuse across threads). Each thread
// keeps its last 10 blocks alive.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

namespace {

constexpr int kThreads = 4;
constexpr int kRounds = 100;
constexpr int kPerRound = 1000;
constexpr int kKept = 10;

void* g_blocks[kThreads][kPerRound];
pthread_barrier_t g_barrier;

void* Worker(void* arg) {
  int self = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  int neighbour = (self + 1) % kThreads;
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kPerRound; ++i) g_blocks[self][i] = malloc(2000 + self);
    pthread_barrier_wait(&g_barrier);
    bool last = round == kRounds - 1;
    for (int i = 0; i < kPerRound; ++i) {
      if (last && i < kKept) continue;
      free(g_blocks[neighbour][i]);
    }
    pthread_barrier_wait(&g_barrier);
  }
  return nullptr;
}

}  // namespace

int main() {
  pthread_barrier_init(&g_barrier, nullptr, kThreads);
  pthread_t threads[kThreads];
  for (int i = 0; i < kThreads; ++i) {
    pthread_create(&threads[i], nullptr, Worker, reinterpret_cast<void*>(static_cast<intptr_t>(i)));
  }
  for (pthread_t t : threads) pthread_join(t, nullptr);
  puts("threads done");
  return 0;
}
