// tests/scenarios/programs/host_busy_exit_program.cc: issue 12, host harm 2.
// argv[1] threads loop on malloc/free for ever; main allocates one block
// of 7777 bytes (still live at exit), waits until the threads have done
// argv[2] loop turns in all (default 0: a loaded machine may run them
// late, and a test that needs a trace of some size says how much work),
// sleeps 200 ms and returns 4 while they are still busy.
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include <atomic>

namespace {

std::atomic<unsigned long> g_turns{0};

void* Worker(void*) {
  void* keep[8] = {};
  for (unsigned i = 0;; ++i) {
    free(keep[i % 8]);
    keep[i % 8] = malloc(16 + i % 200);
    g_turns.fetch_add(1, std::memory_order_relaxed);
  }
  return nullptr;
}

}  // namespace

void* g_main_block;

int main(int argc, char** argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 16;
  for (int i = 0; i < threads; ++i) {
    pthread_t t;
    if (pthread_create(&t, nullptr, Worker, nullptr) != 0) return 3;
  }
  g_main_block = malloc(7777);
  unsigned long want = argc > 2 ? strtoul(argv[2], nullptr, 10) : 0;
  struct timespec tick = {0, 1000 * 1000};
  while (g_turns.load(std::memory_order_relaxed) < want) nanosleep(&tick, nullptr);
  struct timespec pause = {0, 200 * 1000 * 1000};
  nanosleep(&pause, nullptr);
  return 4;
}
