// tests/scenarios/programs/fork_threads_program.cc: fork() while other
// threads allocate and free (heapsight's atfork handlers must leave the
// child with consistent tables and no lock held by a vanished thread).
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>

namespace {

std::atomic<bool> g_stop{false};
// The workers allocate flat out only around each fork: from 2 ms before it,
// for at most kBurst iterations each (about 8 ms under heapsight), and rest
// while a child runs. The fork still lands while they are inside malloc and
// free, and the parent's trace stays about 250,000 events instead of
// millions (the test reads every record; a loaded machine made fork slow
// enough for 6 M events and a 3 GB test).
constexpr unsigned kBurst = 4096;
std::atomic<unsigned> g_burst{0};  // the burst's number; 0 = none yet
void* volatile g_sink;

void* Worker(void*) {
  void* keep[64] = {};
  unsigned burst = 0, done = 0;
  for (unsigned i = 0; !g_stop.load(std::memory_order_relaxed); ++i) {
    unsigned now = g_burst.load(std::memory_order_relaxed);
    if (now != burst) {
      burst = now;
      done = 0;
    }
    if (burst == 0 || done++ >= kBurst) {
      usleep(200);
      continue;
    }
    free(keep[i % 64]);
    keep[i % 64] = malloc(11000 + i % 7);
  }
  for (void* p : keep) free(p);
  return nullptr;
}

}  // namespace

int main() {
  pthread_t threads[3];
  for (pthread_t& t : threads) pthread_create(&t, nullptr, Worker, nullptr);
  int failures = 0;
  for (int i = 0; i < 20; ++i) {
    g_burst = i + 1;
    usleep(2000);
    pid_t pid = fork();
    if (pid == 0) {
      for (int j = 0; j < 100; ++j) {
        void* p = malloc(12000);
        g_sink = p;
        free(p);
      }
      exit(0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) ++failures;
  }
  g_stop = true;
  for (pthread_t t : threads) pthread_join(t, nullptr);
  printf("failures %d\n", failures);
  return failures;
}
