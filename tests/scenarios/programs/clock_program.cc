// tests/scenarios/programs/clock_program.cc: allocations spread over time,
// for the timestamp clock (tests/scenarios/clock_test.cc).
//
//   clock_program         the main thread alone: malloc(3001)/free 2,000
//                         times, ~20 us of wall time apart (40 ms or more)
//   clock_program thread  the same, then a second thread doing it with
//                         malloc(3002)
// A count, not a duration: on a loaded machine the program gets less CPU,
// and the tests count allocations exactly.
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

namespace {

constexpr int kCount = 2000;

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

void Spin(uint64_t ns) {
  for (uint64_t end = NowNs() + ns; NowNs() < end;) {
  }
}

// Allocates and frees `count` blocks of `size` bytes, ~20 us apart.
void AllocateTimes(size_t size, int count) {
  for (int i = 0; i < count; ++i) {
    void* p = malloc(size);
    memset(p, 1, size);
    free(p);
    Spin(20000);
  }
}

void* Worker(void*) {
  AllocateTimes(3002, kCount);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  AllocateTimes(3001, kCount);
  if (argc > 1 && strcmp(argv[1], "thread") == 0) {
    pthread_t t;
    if (pthread_create(&t, nullptr, Worker, nullptr) != 0) return 1;
    pthread_join(t, nullptr);
  }
  puts("clock done");
  return 0;
}
