// tests/scenarios/programs/host_busy_exit_program.cc: issue 12, host harm 2.
// argv[1] threads loop on malloc/free for ever; main allocates one block
// of 7777 bytes (still live at exit), sleeps 200 ms and returns 4 while
// they are still busy.
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

namespace {

void* Worker(void*) {
  void* keep[8] = {};
  for (unsigned i = 0;; ++i) {
    free(keep[i % 8]);
    keep[i % 8] = malloc(16 + i % 200);
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
  struct timespec pause = {0, 200 * 1000 * 1000};
  nanosleep(&pause, nullptr);
  return 4;
}
