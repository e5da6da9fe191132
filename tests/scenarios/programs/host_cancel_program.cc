// tests/scenarios/programs/host_cancel_program.cc: issue 12, host harm 1.
// Workers loop on free(malloc(64)) with pthread_testcancel() every 1,000
// iterations; main starts them, sleeps 10 ms, cancels and joins them, 20
// rounds. argv[1]: workers per round (default 1). Prints "ok". An alarm
// turns a deadlock into death by SIGALRM instead of a hang.
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

namespace {

void* Worker(void*) {
  for (unsigned long i = 0;; ++i) {
    free(malloc(64));
    if (i % 1000 == 0) pthread_testcancel();
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  alarm(30);
  int threads = argc > 1 ? atoi(argv[1]) : 1;
  if (threads < 1 || threads > 64) return 2;
  for (int round = 0; round < 20; ++round) {
    pthread_t t[64];
    for (int i = 0; i < threads; ++i) {
      if (pthread_create(&t[i], nullptr, Worker, nullptr) != 0) return 3;
    }
    struct timespec ten_ms = {0, 10 * 1000 * 1000};
    nanosleep(&ten_ms, nullptr);
    for (int i = 0; i < threads; ++i) pthread_cancel(t[i]);
    for (int i = 0; i < threads; ++i) {
      void* result = nullptr;
      pthread_join(t[i], &result);
      if (result != PTHREAD_CANCELED) return 4;
    }
  }
  printf("ok\n");
  return 0;
}
