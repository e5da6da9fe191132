// tests/scenarios/programs/dormant_program.cc: allocates known counts in
// three phases, each started by a line on stdin, for the attach/detach
// scenario (dormant_test.cc). Between phases the test runs `heapsight
// attach` / `heapsight detach` on it.
//
//   phase 1 (paused): 10 x malloc(1001) (5 freed), 7 x new char[1002],
//     1 x malloc(1003) (realloc'd in phase 2), 1 x malloc(1004) (kept),
//     3 x malloc(1005) leaked.
//   phase 2 (attached): 2 x malloc(2005) leaked (first: nothing later
//     keeps a stale copy), 20 x malloc(2001) (8 freed), 6 x new char[2002],
//     realloc of the 1003 block to 2003, calloc(3, 700) = 2100, 2 threads
//     x 50 x malloc(2004) all freed; frees the 5
//     live 1001 blocks and delete[]s the 7 1002 blocks of phase 1.
//   phase 3 (detached): 30 x malloc(3001) (10 freed), frees 4 2001 blocks.
// Counts in the window: 130 allocations (20+6+1+1+100+2), 108 frees of them
// (8+100), 22 live at its end (12 x 2001, 6 x 2002, 2003, 2100, 2 x 2005).
//
// argv[1] == "churn": a thread allocates and frees 4000-byte blocks without
// pause from start to exit, so attach and detach happen under load.
// argv[1] == "fork": at the end of phase 2 the process forks; the child
// frees a phase-2 block (inherited) and a phase-1 block (unknown),
// allocates 2 x malloc(2501) and exits; the parent waits for it.
// stdin lines: "go" starts the next phase, "exit" exits (status 0) at once.
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>

namespace {

void* g_p1[10];
char* g_p1_new[7];
void* g_p1_realloc;
void* g_p1_kept;  // freed only by the fork child (mode "fork")
void* g_p2[20];
char* g_p2_new[6];
void* g_p2_calloc;
void* g_p3[30];
std::atomic<bool> g_stop{false};

void Say(const char* s) { (void)!write(1, s, strlen(s)); }

// "go" (true) or "exit"/EOF (false).
bool WaitLine() {
  char buf[16];
  size_t n = 0;
  while (n < sizeof buf - 1) {
    ssize_t r = read(0, buf + n, 1);
    if (r <= 0) return false;
    if (buf[n] == '\n') break;
    ++n;
  }
  buf[n] = '\0';
  return strcmp(buf, "go") == 0;
}

// Overwrites the dead frames below (and their copies of leaked pointers).
__attribute__((noinline)) void Scrub() {
  volatile char buf[32768];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = 0;
}

__attribute__((noinline)) void LeakPhase1() {
  for (int i = 0; i < 3; ++i) {
    void* volatile p = malloc(1005);
    (void)p;
  }
}

__attribute__((noinline)) void Phase1() {
  for (int i = 0; i < 10; ++i) g_p1[i] = malloc(1001);
  for (int i = 5; i < 10; ++i) free(g_p1[i]);
  for (int i = 0; i < 7; ++i) g_p1_new[i] = new char[1002];
  g_p1_realloc = malloc(1003);
  g_p1_kept = malloc(1004);
  LeakPhase1();
  Scrub();
}

void* Worker(void*) {
  for (int i = 0; i < 50; ++i) {
    void* volatile p = malloc(2004);
    free(p);
  }
  return nullptr;
}

__attribute__((noinline)) void LeakPhase2() {
  for (int i = 0; i < 2; ++i) {
    void* volatile p = malloc(2005);
    (void)p;
  }
}

__attribute__((noinline)) void Phase2() {
  LeakPhase2();
  Scrub();
  for (int i = 0; i < 20; ++i) g_p2[i] = malloc(2001);
  for (int i = 12; i < 20; ++i) free(g_p2[i]);
  for (int i = 0; i < 6; ++i) g_p2_new[i] = new char[2002];
  for (int i = 0; i < 5; ++i) free(g_p1[i]);
  for (int i = 0; i < 7; ++i) delete[] g_p1_new[i];
  g_p1_realloc = realloc(g_p1_realloc, 2003);
  g_p2_calloc = calloc(3, 700);
  pthread_t t[2];
  for (pthread_t& th : t) pthread_create(&th, nullptr, Worker, nullptr);
  for (pthread_t& th : t) pthread_join(th, nullptr);
}

__attribute__((noinline)) void Phase3() {
  for (int i = 0; i < 30; ++i) g_p3[i] = malloc(3001);
  for (int i = 20; i < 30; ++i) free(g_p3[i]);
  for (int i = 0; i < 4; ++i) free(g_p2[i]);
}

void* Churn(void*) {
  while (!g_stop.load(std::memory_order_relaxed)) {
    void* volatile p = malloc(4000);
    free(p);
  }
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  pthread_t churn;
  const bool churning = argc > 1 && strcmp(argv[1], "churn") == 0;
  if (churning) pthread_create(&churn, nullptr, Churn, nullptr);
  Phase1();
  Say("phase1\n");
  if (!WaitLine()) return 0;
  Phase2();
  if (argc > 1 && strcmp(argv[1], "fork") == 0) {
    pid_t child = fork();
    if (child == 0) {
      free(g_p2[11]);
      free(g_p1_kept);
      void* volatile a = malloc(2501);
      void* volatile b = malloc(2501);
      (void)a;
      (void)b;
      _exit(0);
    }
    waitpid(child, nullptr, 0);
  }
  Say("phase2\n");
  if (!WaitLine()) return 0;
  Phase3();
  Say("phase3\n");
  WaitLine();
  if (churning) {
    g_stop = true;
    pthread_join(churn, nullptr);
  }
  return 0;
}
