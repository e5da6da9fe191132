// tests/scenarios/programs/lock_stress_program.cc: threads allocate flat out
// while other threads keep taking their state locks (thread_state.h):
// the writer's freshness flushes (run with HEAPSIGHT_FLUSH_MS=1), leak
// requests whose thread flushes every state (HEAPSIGHT_LEAK_SIGNAL, the
// signal given as argv[1]), and fork() (the prepare handler locks every
// state). The workers come and go in rounds, so states are created, flushed
// at thread exit and recycled under all this; another thread interrupts them
// with SIGPROF every 50 us or so (inside the hooks too, where heapsight
// holds the state lock).
//
// Exact counts for the test: worker w of every round makes kPairs
// malloc(5000 + w)/free pairs and keeps none; each fork child one 9000-byte
// pair; with malloc-in-handler each handler run makes one 777-byte
// allocation (two with keep-in-handler), and each worker kWarm at its
// start. Prints "forks <n>
// failures <n>" and "handler <n>" (the signal handler's runs).
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>

namespace {

constexpr int kWorkers = 3;
constexpr int kRounds = 4;
constexpr int kPairs = 60000;
constexpr int kForks = 6;

std::atomic<bool> g_stop{false};
std::atomic<long> g_handler_runs{0};
std::atomic<int> g_forks{0};
std::atomic<pid_t> g_worker_tids[kWorkers];
void* volatile g_sink;

// The handler makes a worker hold heapsight's state lock longer when the
// signal lands inside a hook (another thread taking the lock waits for it).
// It does not allocate, unless argv[2] is "malloc-in-handler": then it
// makes a malloc(777)/free pair, which lands anywhere in the hooks, inside
// a live-table operation (shard lock held) or the real allocator (glibc's
// arena lock held, while the taker forks) too. Before nested hooks were
// deferred (preload/nested_hooks.h) this hung 3 runs of 3. The 777-byte
// blocks come from the tcache (the worker warmed it with kWarm blocks), so
// glibc itself takes no lock there.
//
// argv[2] "keep-in-handler" (not run by the tests; sig23's reproducer,
// docs/DESIGN.md): the handler also keeps one 777-byte block per worker
// from one run to the next (freed by the next run, the last by the
// worker). Its free is then a traced block's, which a nested hook deferred
// to the end of the interrupted hook; several handler runs inside one real
// free (a preempted thread gets a pending SIGPROF each time it resumes)
// emptied the tcache, and the handler's next malloc took the arena lock
// the interrupted free holds: glibc hung (2 runs in 100 under load). Since
// hang24 such a free is performed at once where no lock must be waited
// for (tests: handler_free_program).
bool g_malloc_in_handler = false;
bool g_keep_in_handler = false;
constexpr int kWarm = 4;
thread_local void* t_kept = nullptr;

void OnProf(int) {
  if (g_malloc_in_handler) {
    if (g_keep_in_handler) {
      free(t_kept);
      t_kept = malloc(777);
    }
    void* p = malloc(777);
    g_sink = p;
    free(p);
  } else {
    for (int i = 0; i < 2000; ++i) __asm__ volatile("");
  }
  g_handler_runs.fetch_add(1, std::memory_order_relaxed);
}

void* Worker(void* arg) {
  int self = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  size_t size = 5000 + static_cast<size_t>(self);
  void* warm[kWarm];
  for (void*& w : warm) w = malloc(777);
  g_sink = warm[0];
  for (void* w : warm) free(w);
  sigset_t prof;
  sigemptyset(&prof);
  sigaddset(&prof, SIGPROF);
  pthread_sigmask(SIG_UNBLOCK, &prof, nullptr);
  g_worker_tids[self].store(gettid());
  void* ring[16] = {};
  for (int i = 0; i < kPairs; ++i) {
    // A few blocks live a little longer: frees in a different order.
    void*& slot = ring[i % 16];
    free(slot);
    slot = malloc(size);
  }
  for (void*& p : ring) free(p);
  g_worker_tids[self].store(0);
  pthread_sigmask(SIG_BLOCK, &prof, nullptr);
  free(t_kept);  // the handler's last kept block
  t_kept = nullptr;
  return nullptr;
}

// Sends SIGPROF to the running workers, over and over. (A tid may name a
// worker that just left, or a new thread with the old tid: every thread
// but the workers blocks the signal, so it stays pending there, harmless.)
void* Poker(void*) {
  pid_t pid = getpid();
  while (!g_stop.load(std::memory_order_relaxed)) {
    for (auto& t : g_worker_tids) {
      pid_t tid = t.load();
      if (tid != 0) tgkill(pid, tid, SIGPROF);
    }
    timespec pause{0, 50 * 1000};
    nanosleep(&pause, nullptr);
  }
  return nullptr;
}

struct TakerArgs {
  int leak_signal;
};

// Takes every state's lock from outside, in a loop, until the workers are
// done: leak requests (their thread flushes every state) and forks.
void* Taker(void* arg) {
  auto* a = static_cast<TakerArgs*>(arg);
  int forks = 0, failures = 0;
  for (int i = 0; !g_stop.load(std::memory_order_relaxed); ++i) {
    if (a->leak_signal > 0) kill(getpid(), a->leak_signal);
    if (i % 8 == 0 && forks < kForks) {
      pid_t pid = fork();
      if (pid == 0) {
        void* p = malloc(9000);
        g_sink = p;
        free(p);
        _exit(0);
      }
      g_forks.store(++forks);
      int status = 0;
      if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
          WEXITSTATUS(status) != 0) {
        ++failures;
      }
    }
    usleep(1000);
  }
  printf("forks %d failures %d\n", forks, failures);
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  TakerArgs args{argc > 1 ? atoi(argv[1]) : 0};
  g_keep_in_handler = argc > 2 && strcmp(argv[2], "keep-in-handler") == 0;
  g_malloc_in_handler = g_keep_in_handler || (argc > 2 && strcmp(argv[2], "malloc-in-handler") == 0);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = OnProf;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGPROF, &sa, nullptr);
  sigset_t prof;
  sigemptyset(&prof);
  sigaddset(&prof, SIGPROF);
  pthread_sigmask(SIG_BLOCK, &prof, nullptr);  // inherited by every thread
  pthread_t taker, poker;
  pthread_create(&taker, nullptr, Taker, &args);
  pthread_create(&poker, nullptr, Poker, nullptr);
  for (int round = 0; round < kRounds; ++round) {
    pthread_t threads[kWorkers];
    for (int w = 0; w < kWorkers; ++w) {
      pthread_create(&threads[w], nullptr, Worker, reinterpret_cast<void*>(static_cast<intptr_t>(w)));
    }
    for (pthread_t t : threads) pthread_join(t, nullptr);
  }
  // The forks' count is exact (the test counts the children's traces).
  while (g_forks.load() < kForks) usleep(1000);
  g_stop = true;
  pthread_join(poker, nullptr);
  pthread_join(taker, nullptr);
  printf("handler %ld\n", g_handler_runs.load());
  return 0;
}
