// tests/scenarios/programs/writer_program.cc: the writer thread's
// scenarios (issue 15 target 3, issue 19 freshness). Magic sizes: 3001 for
// the main thread's counted blocks, 3002 for a fork child's, 3003 for busy
// threads (never counted exactly), 3004 for the blocks a worker thread
// allocates before it sleeps.
//
//   sleep N      main allocates and frees N blocks of 3001, prints "ready",
//                and sleeps (the test kills it)
//   idle N       a worker thread allocates and frees N blocks of 3004 and
//                sleeps; main prints "ready" once it has, and sleeps
//   fork N       two busy threads allocate (3003) while main forks; the
//                child allocates and frees N blocks of 3002 and exits 0;
//                the parent allocates N of 3001, stops its threads, waits
//                for the child and exits 0 (1 if the child failed)
//   daemon N     chdir("/"), closes every fd, reopens 0-2 on /dev/null,
//                then allocates and frees N blocks of 3001; exits 0 if fds
//                3-9 are still closed at the end, 3 if not
//   busy-exit N  four threads allocate (3003) without end; main allocates
//                and frees N blocks of 3001 and calls exit(0) while they run
//   idle-twice N as idle, then 3 s later the worker allocates and frees N
//                blocks of 3005 and sleeps again (freshness after a leak
//                scan the test asks for in between)
//   fork-idle N  a busy thread runs (3003) while main forks; the child
//                allocates and frees N blocks of 3002, prints "ready" and
//                sleeps; the parent stops its thread and sleeps
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <atomic>

namespace {

std::atomic<bool> g_stop{false};
std::atomic<bool> g_idle_ready{false};
long g_count = 0;

void Churn(size_t size, long n) {
  for (long i = 0; i < n; ++i) {
    void* p = malloc(size);
    if (p == nullptr) exit(2);
    static_cast<volatile char*>(p)[0] = 1;
    free(p);
  }
}

void* Busy(void*) {
  while (!g_stop.load(std::memory_order_relaxed)) Churn(3003, 100);
  return nullptr;
}

void* Idle(void*) {
  Churn(3004, g_count);
  g_idle_ready.store(true);
  for (;;) pause();
  return nullptr;
}

void* IdleTwice(void*) {
  Churn(3004, g_count);
  g_idle_ready.store(true);
  // 3 s in all: the leak scan's stop signal interrupts a sleep (EINTR), so
  // sleep again for what is left.
  timespec left{3, 0};
  while (nanosleep(&left, &left) != 0) {
  }
  Churn(3005, g_count);
  for (;;) pause();
  return nullptr;
}

void Ready() {
  // write(2), not stdio: stdout is a pipe the test reads line by line.
  ssize_t n = write(STDOUT_FILENO, "ready\n", 6);
  (void)n;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  const char* mode = argv[1];
  g_count = atol(argv[2]);
  if (strcmp(mode, "sleep") == 0) {
    Churn(3001, g_count);
    Ready();
    for (;;) pause();
  }
  if (strcmp(mode, "idle") == 0) {
    pthread_t t;
    if (pthread_create(&t, nullptr, Idle, nullptr) != 0) return 2;
    while (!g_idle_ready.load()) usleep(1000);
    Ready();
    for (;;) pause();
  }
  if (strcmp(mode, "idle-twice") == 0) {
    pthread_t t;
    if (pthread_create(&t, nullptr, IdleTwice, nullptr) != 0) return 2;
    while (!g_idle_ready.load()) usleep(1000);
    Ready();
    for (;;) pause();
  }
  if (strcmp(mode, "fork") == 0) {
    pthread_t t[2];
    for (pthread_t& th : t) {
      if (pthread_create(&th, nullptr, Busy, nullptr) != 0) return 2;
    }
    Churn(3001, g_count / 2);
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
      Churn(3002, g_count);
      exit(0);
    }
    Churn(3001, g_count - g_count / 2);
    g_stop.store(true);
    for (pthread_t& th : t) pthread_join(th, nullptr);
    int status = 0;
    if (waitpid(pid, &status, 0) != pid) return 2;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 1;
  }
  if (strcmp(mode, "fork-idle") == 0) {
    pthread_t t;
    if (pthread_create(&t, nullptr, Busy, nullptr) != 0) return 2;
    Churn(3001, 1000);
    pid_t pid = fork();
    if (pid < 0) return 2;
    if (pid == 0) {
      Churn(3002, g_count);
      Ready();
      for (;;) pause();
    }
    g_stop.store(true);
    pthread_join(t, nullptr);
    for (;;) pause();
  }
  if (strcmp(mode, "daemon") == 0) {
    if (chdir("/") != 0) return 2;
    for (int fd = 0; fd < 1024; ++fd) close(fd);
    for (int fd = 0; fd < 3; ++fd) {
      if (open("/dev/null", O_RDWR) != fd) return 2;
    }
    Churn(3001, g_count);
    for (int fd = 3; fd < 10; ++fd) {
      if (fcntl(fd, F_GETFD) != -1) return 3;
    }
    return 0;
  }
  if (strcmp(mode, "busy-exit") == 0) {
    pthread_t t[4];
    for (pthread_t& th : t) {
      if (pthread_create(&th, nullptr, Busy, nullptr) != 0) return 2;
    }
    Churn(3001, g_count);
    exit(0);
  }
  return 2;
}
