// tests/scenarios/programs/thread_unwind_program.cc: threads that each make
// a few allocations from one call site, all alive at once, the shape of a
// service's thread pool. Which of a thread's stacks libunwind unwinds (its
// first few, before the unwind cache starts; every one with
// HEAPSIGHT_UNWIND_CACHE=0) and how (unw_step for a thread's first
// kSteppedUnwinds, unw_backtrace after: preload/unwinder.h) must not change
// a frame: every allocation of size 7000 + i % 2 is Allocate <- Worker.
//
// Usage: thread_unwind_program [THREADS [ALLOCATIONS_PER_THREAD]]
// (defaults 16 and 40).
#include <pthread.h>
#include <stdlib.h>

#include <vector>

#define KEEP() asm volatile("" ::: "memory")

namespace {
int g_per_thread = 40;
pthread_barrier_t g_barrier;
}  // namespace

extern "C" __attribute__((noinline)) void* Allocate(size_t size) {
  void* p = malloc(size);
  KEEP();
  return p;
}

extern "C" __attribute__((noinline)) void* Worker(void*) {
  std::vector<void*> blocks(static_cast<size_t>(g_per_thread));
  for (int i = 0; i < g_per_thread; ++i) {
    blocks[static_cast<size_t>(i)] = Allocate(7000 + static_cast<size_t>(i % 2));
  }
  // Every thread is alive, with its blocks, until all have allocated.
  pthread_barrier_wait(&g_barrier);
  for (void* p : blocks) free(p);
  KEEP();
  return nullptr;
}

int main(int argc, char** argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 16;
  if (argc > 2) g_per_thread = atoi(argv[2]);
  if (threads < 1 || g_per_thread < 1) return 2;
  pthread_barrier_init(&g_barrier, nullptr, static_cast<unsigned>(threads));
  std::vector<pthread_t> ids(static_cast<size_t>(threads));
  for (auto& id : ids) {
    if (pthread_create(&id, nullptr, Worker, nullptr) != 0) return 1;
  }
  for (auto& id : ids) pthread_join(id, nullptr);
  return 0;
}
