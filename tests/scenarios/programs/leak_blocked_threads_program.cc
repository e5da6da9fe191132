// tests/scenarios/programs/leak_blocked_threads_program.cc: threads that
// cannot answer the leak scan's stop signal, at the exit scan
// (leak_blocked_threads_test.cc):
//  - a sigwait thread, as daemons have one: every signal blocked, looping
//    on sigwait() over every signal; it prints any signal it gets;
//  - a thread that blocks every signal and sleeps in read(2) on a pipe.
// Each holds one block only in a local variable of its own stack (7301:
// the sigwait thread, 7302: the reader); main drops a block (7303, lost)
// and keeps one in a global (7304). main returns once both threads sleep
// in their system calls (nr 128 rt_sigtimedwait, nr 0 read in
// /proc/self/task/TID/syscall), so the exit scan finds them there.
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

std::atomic<pid_t> g_waiter_tid{0};
std::atomic<pid_t> g_reader_tid{0};
int g_pipe[2];
void* volatile g_kept = nullptr;

// A thread's start: every signal blocked, a block of `bytes` for the
// caller to keep on its stack, its tid published.
__attribute__((noinline)) void* BlockSignalsAndAllocate(size_t bytes, std::atomic<pid_t>* tid) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  void* block = std::malloc(bytes);
  std::memset(block, 0, bytes);
  *tid = static_cast<pid_t>(syscall(SYS_gettid));
  return block;
}

void* SigwaitThread(void*) {
  void* volatile mine = BlockSignalsAndAllocate(7301, &g_waiter_tid);
  sigset_t all;
  sigfillset(&all);
  for (;;) {
    int sig = 0;
    if (sigwait(&all, &sig) != 0) continue;
    // A daemon acts on what it gets; here: say so (the test wants no line).
    std::printf("sigwait got signal %d\n", sig);
    std::fflush(stdout);
  }
  return mine;
}

void* ReaderThread(void*) {
  void* volatile mine = BlockSignalsAndAllocate(7302, &g_reader_tid);
  char c;
  while (read(g_pipe[0], &c, 1) != 1) {
  }
  return mine;
}

// The system call number `tid` sleeps in (/proc/self/task/TID/syscall's
// first field), or -1 (running, unreadable).
long SleepingIn(pid_t tid) {
  std::string path = "/proc/self/task/" + std::to_string(tid) + "/syscall";
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  char buf[64] = {};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0 || buf[0] < '0' || buf[0] > '9') return -1;
  return std::strtol(buf, nullptr, 10);
}

}  // namespace

int main() {
  alarm(60);  // a hang fails the test instead of blocking it
  if (pipe(g_pipe) != 0) return 2;
  pthread_t waiter, reader;
  pthread_create(&waiter, nullptr, SigwaitThread, nullptr);
  pthread_create(&reader, nullptr, ReaderThread, nullptr);
  g_kept = std::malloc(7304);
  void* volatile lost = std::malloc(7303);
  lost = nullptr;
  (void)lost;  // dropped: 7303 is lost
  while (g_waiter_tid.load() == 0 || g_reader_tid.load() == 0) usleep(1000);
  while (SleepingIn(g_waiter_tid.load()) != SYS_rt_sigtimedwait) usleep(1000);
  while (SleepingIn(g_reader_tid.load()) != SYS_read) usleep(1000);
  std::printf("main done\n");
  std::fflush(stdout);
  return 0;
}
