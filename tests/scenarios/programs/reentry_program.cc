// tests/scenarios/programs/reentry_program.cc: run with
// LD_PRELOAD="libheapsight.so libmalloc_counter.so". Between two calls to
// the counter's reset/read functions it makes an exact number of allocation
// calls; every one of them reaches the counter exactly once (forwarded by
// heapsight). Any allocation heapsight makes on its own (directly, or via
// libunwind, zstd or libc) shows up as an extra call.
//
// Prints "<expected> <counted> <counted_from_heapsight>".
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void* volatile g_sink;

// Many distinct stacks (new stack nodes, table growth) by recursion depth.
__attribute__((noinline)) void Recurse(int depth, int i) {
  if (depth == 0) {
    void* p = malloc(static_cast<size_t>(16 + i % 64));
    g_sink = p;
    free(p);
    return;
  }
  Recurse(depth - 1, i);
  asm volatile("");
}

pthread_barrier_t g_start, g_done;

// Threads are created before counting starts (pthread_create allocates);
// their first allocation, which creates heapsight's per-thread state, and
// their work happen inside the counted window.
void* Worker(void*) {
  pthread_barrier_wait(&g_start);
  for (int i = 0; i < 5000; ++i) Recurse(i % 20, i);
  pthread_barrier_wait(&g_done);
  return nullptr;
}

int main(int argc, char** argv) {
  bool extra = argc > 1 && strcmp(argv[1], "extra") == 0;
  auto reset = reinterpret_cast<void (*)()>(dlsym(RTLD_DEFAULT, "malloc_counter_reset"));
  auto read = reinterpret_cast<void (*)(long*, long*)>(dlsym(RTLD_DEFAULT, "malloc_counter_read"));
  if (reset == nullptr || read == nullptr) return 2;
  constexpr int kThreads = 3;
  pthread_barrier_init(&g_start, nullptr, kThreads + 1);
  pthread_barrier_init(&g_done, nullptr, kThreads + 1);
  pthread_t threads[kThreads];
  for (pthread_t& t : threads) pthread_create(&t, nullptr, Worker, nullptr);
  long expected = 0;
  reset();
  pthread_barrier_wait(&g_start);
  pthread_barrier_wait(&g_done);
  expected += kThreads * 5000 * 2;
  for (int i = 0; i < 20000; ++i) {
    Recurse(i % 50, i);  // malloc + free
    expected += 2;
  }
  for (int i = 0; i < 2000; ++i) {
    void* p = calloc(3, 100);
    p = realloc(p, 1000 + i);
    void* a = aligned_alloc(64, 256);
    free(a);
    free(p);
    expected += 5;
  }
  if (extra) {
    // Negative control: one allocation the program did not make itself
    // through a counted call of its own.
    g_sink = strdup("x");
    expected += 0;
  }
  long counted = 0, from_heapsight = 0;
  read(&counted, &from_heapsight);
  printf("%ld %ld %ld\n", expected, counted, from_heapsight);
  for (pthread_t t : threads) pthread_join(t, nullptr);
  return 0;
}
