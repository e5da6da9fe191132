// tests/scenarios/programs/clock_program.cc: allocations spread over time,
// for the timestamp clock (tests/scenarios/clock_test.cc).
//
//   clock_program         the main thread alone: malloc(3001)/free every
//                         ~20 us for 40 ms
//   clock_program thread  the same, then a second thread doing it with
//                         malloc(3002) for 40 ms
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

namespace {

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

void Spin(uint64_t ns) {
  for (uint64_t end = NowNs() + ns; NowNs() < end;) {
  }
}

// Allocates and frees blocks of `size` bytes every ~20 us for `ms`.
void AllocateFor(size_t size, uint64_t ms) {
  for (uint64_t end = NowNs() + ms * 1000000; NowNs() < end;) {
    void* p = malloc(size);
    memset(p, 1, size);
    free(p);
    Spin(20000);
  }
}

void* Worker(void*) {
  AllocateFor(3002, 40);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  AllocateFor(3001, 40);
  if (argc > 1 && strcmp(argv[1], "thread") == 0) {
    pthread_t t;
    if (pthread_create(&t, nullptr, Worker, nullptr) != 0) return 1;
    pthread_join(t, nullptr);
  }
  puts("clock done");
  return 0;
}
