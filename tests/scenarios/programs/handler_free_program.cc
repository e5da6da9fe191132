// tests/scenarios/programs/handler_free_program.cc: a signal handler that
// frees a traced block and allocates another of the same size, landing
// inside the real allocator's call (heapsight's defer zone,
// preload/defer_zone.h), over and over (hang24).
//
// Without heapsight, glibc's free puts the block at the head of this
// thread's tcache bin and the next malloc of that size takes it back: the
// handler's malloc returns the block its free just released. A preload
// that defers such a free to the end of the interrupted hook breaks that:
// the malloc finds the bin one block short, and where the interrupted call
// holds the arena lock (a real free of a non-tcache block), a few such
// handler runs empty the bin and the handler's malloc takes that lock
// again: glibc deadlocks (lock_stress_program keep-in-handler). Here the
// interrupted call is a munmap (the free of a 4 MiB mmapped block), where
// glibc holds no lock, so a deferring preload shows up as a count, not as
// a hang: the handler counts the runs whose malloc did not get the freed
// block back.
//
// A POSIX timer sends SIGPROF to the main thread every 100 us; the handler
// knows it landed in the real free's munmap from the interrupted
// instruction pointer (libc's munmap is a syscall and a return), and only
// then frees and allocates. The loop stops once kWantLanded handler runs
// landed there (or after kMaxRounds).
// Prints "landed <n> not_reused <n> runs <n> rounds <n>".
#include <dlfcn.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <cstdint>

namespace {

constexpr size_t kBig = 4 << 20;
constexpr long kWantLanded = 20;
constexpr int kMaxRounds = 20000;
// glibc 2.36's munmap: mov, syscall, cmp, jae, ret and the error path.
constexpr uintptr_t kMunmapBytes = 33;

uintptr_t g_munmap = 0;
void* g_kept = nullptr;
volatile long g_landed = 0;
volatile long g_not_reused = 0;
volatile long g_runs = 0;

// Frees and allocates only when it landed in munmap: a handful of events
// in all, so the thread's chunk never fills (a nested free whose record
// does not fit is deferred, address mode).
void OnProf(int, siginfo_t*, void* context) {
  const auto* uc = static_cast<const ucontext_t*>(context);
  const auto ip = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
  g_runs = g_runs + 1;
  if (ip < g_munmap || ip >= g_munmap + kMunmapBytes) return;
  g_landed = g_landed + 1;
  void* old = g_kept;
  free(old);
  void* fresh = malloc(777);
  g_kept = fresh;
  if (fresh != old) g_not_reused = g_not_reused + 1;
}

}  // namespace

int main() {
  // libc's own munmap (a preload may interpose the symbol).
  void* libc = dlopen("libc.so.6", RTLD_NOW | RTLD_NOLOAD);
  if (libc == nullptr) return 2;
  g_munmap = reinterpret_cast<uintptr_t>(dlsym(libc, "munmap"));
  // A fixed threshold: glibc would otherwise raise it past kBig after the
  // first free of an mmapped block, and serve the rest from the heap.
  mallopt(M_MMAP_THRESHOLD, 1 << 20);
  g_kept = malloc(777);

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = OnProf;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigaction(SIGPROF, &sa, nullptr);
  sigevent ev;
  memset(&ev, 0, sizeof ev);
  ev.sigev_notify = SIGEV_THREAD_ID;
  ev.sigev_signo = SIGPROF;
  ev._sigev_un._tid = static_cast<pid_t>(syscall(SYS_gettid));
  timer_t timer;
  if (timer_create(CLOCK_MONOTONIC, &ev, &timer) != 0) return 3;
  itimerspec every{{0, 100 * 1000}, {0, 100 * 1000}};
  timer_settime(timer, 0, &every, nullptr);

  int rounds = 0;
  for (; rounds < kMaxRounds && g_landed < kWantLanded; ++rounds) {
    auto* p = static_cast<char*>(malloc(kBig));
    memset(p, 1, kBig);
    free(p);
  }

  timer_delete(timer);
  sigset_t prof;
  sigemptyset(&prof);
  sigaddset(&prof, SIGPROF);
  sigprocmask(SIG_BLOCK, &prof, nullptr);  // a signal still pending stays so
  free(g_kept);
  printf("landed %ld not_reused %ld runs %ld rounds %d\n", g_landed, g_not_reused, g_runs,
         rounds);
  return 0;
}
