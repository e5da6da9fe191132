// bench/thread_pool_bench.cc: what a tracer costs a pool of threads that
// each allocate a little, the shape of a service's worker pool. THREADS
// threads each make PER_THREAD allocations (64-64+PER_THREAD bytes, one call
// site), then wait until every thread has allocated, then free them and
// exit. Run through bench/startup_cost_bench.py, which compares the CPU
// time, page faults and peak RSS of plain and traced runs.
//
// Usage: thread_pool_bench [THREADS [PER_THREAD]]   (defaults 200 and 40)
#include <pthread.h>
#include <stdlib.h>

#include <vector>

namespace {

int g_per_thread = 40;
pthread_barrier_t g_barrier;

void* Work(void*) {
  std::vector<void*> blocks;
  blocks.reserve(static_cast<size_t>(g_per_thread));
  for (int i = 0; i < g_per_thread; ++i) blocks.push_back(malloc(64 + static_cast<size_t>(i)));
  // Every thread is alive, with its blocks, until all have allocated.
  pthread_barrier_wait(&g_barrier);
  for (void* p : blocks) free(p);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 200;
  if (argc > 2) g_per_thread = atoi(argv[2]);
  if (threads < 1 || g_per_thread < 1) return 2;
  pthread_barrier_init(&g_barrier, nullptr, static_cast<unsigned>(threads));
  std::vector<pthread_t> ids(static_cast<size_t>(threads));
  for (auto& id : ids) {
    if (pthread_create(&id, nullptr, Work, nullptr) != 0) return 1;
  }
  for (auto& id : ids) pthread_join(id, nullptr);
  return 0;
}
