// tests/preload/thread_capture_test.cc: stopping the other threads for a
// leak scan (preload/thread_capture.h): which threads are found, that they
// really stand still, what is captured of each (registers, stack pointer,
// thread pointer), threads that block the signal, and the signal's
// disposition before, during and after.
#include "preload/thread_capture.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/thread_stack.h"

namespace heapsight::preload {
namespace {

constexpr uintptr_t kMagicR12 = 0x5eed5eed12121212;
constexpr uintptr_t kMagicR13 = 0x5eed5eed13131313;

// A thread spinning in assembly with known values in r12 and r13 until
// *stop is non-zero, bumping *progress on every turn.
void SpinWithMagicRegisters(std::atomic<int>* stop, std::atomic<uint64_t>* progress) {
  __asm__ volatile(
      "movabsq %[m12], %%r12\n\t"
      "movabsq %[m13], %%r13\n"
      "1:\n\t"
      "lock incq (%[progress])\n\t"
      "pause\n\t"
      "cmpl $0, (%[stop])\n\t"
      "je 1b\n\t"
      :
      : [m12] "i"(kMagicR12), [m13] "i"(kMagicR13), [stop] "r"(stop), [progress] "r"(progress)
      : "r12", "r13", "memory", "cc");
}

struct Worker {
  std::atomic<int> stop{0};
  std::atomic<uint64_t> progress{0};
  std::atomic<pid_t> tid{0};
  std::atomic<uintptr_t> self{0};  // pthread_self(): the thread pointer on x86-64 glibc
  std::atomic<uintptr_t> stack_lo{0}, stack_hi{0};
  std::thread thread;

  void Start() {
    thread = std::thread([this] {
      testing::StoreCurrentThreadStack(&stack_lo, &stack_hi);
      self = static_cast<uintptr_t>(pthread_self());
      tid = static_cast<pid_t>(syscall(SYS_gettid));
      SpinWithMagicRegisters(&stop, &progress);
    });
    while (progress.load() == 0) std::this_thread::yield();
  }
  void Stop() {
    stop = 1;
    thread.join();
  }
};

TEST(ThreadCapture, AloneThereIsNothingToStop) {
  ThreadCapture capture;
  ASSERT_TRUE(StopOtherThreads(0, 100, &capture));
  EXPECT_EQ(capture.count, 0u);
  EXPECT_EQ(capture.stopped, 0u);
  EXPECT_EQ(capture.missed, 0u);
  EXPECT_EQ(capture.threads, nullptr);
  ResumeOtherThreads(&capture);
}

TEST(ThreadCapture, StopsEveryOtherThreadAndCapturesItsState) {
  Worker workers[3];
  for (Worker& w : workers) w.Start();
  ThreadCapture capture;
  ASSERT_TRUE(StopOtherThreads(0, 2000, &capture));
  EXPECT_EQ(capture.count, 3u);
  EXPECT_EQ(capture.stopped, 3u);
  EXPECT_EQ(capture.missed, 0u);
  // Stopped means stopped: no progress while captured.
  uint64_t progress_at_stop[3];
  for (int i = 0; i < 3; ++i) progress_at_stop[i] = workers[i].progress.load();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  for (int i = 0; i < 3; ++i) EXPECT_EQ(workers[i].progress.load(), progress_at_stop[i]) << i;

  std::map<pid_t, const CapturedThread*> by_tid;
  for (size_t i = 0; i < capture.count; ++i) by_tid[capture.threads[i].tid] = &capture.threads[i];
  for (Worker& w : workers) {
    auto it = by_tid.find(w.tid.load());
    ASSERT_NE(it, by_tid.end()) << "worker " << w.tid << " not captured";
    const CapturedThread& t = *it->second;
    EXPECT_TRUE(t.stopped);
    EXPECT_TRUE(t.sp_known);
    EXPECT_EQ(t.regs[REG_R12], kMagicR12);
    EXPECT_EQ(t.regs[REG_R13], kMagicR13);
    EXPECT_EQ(t.regs[REG_RSP], t.sp);
    EXPECT_GE(t.sp, w.stack_lo.load());
    EXPECT_LT(t.sp, w.stack_hi.load());
    EXPECT_EQ(t.tp, w.self.load());
  }
  ResumeOtherThreads(&capture);
  EXPECT_EQ(capture.threads, nullptr);
  // Resumed: every worker moves on.
  for (int i = 0; i < 3; ++i) {
    while (workers[i].progress.load() == progress_at_stop[i]) std::this_thread::yield();
  }
  for (Worker& w : workers) w.Stop();
}

TEST(ThreadCapture, CurrentThreadPointerIsPthreadSelf) {
  EXPECT_EQ(CurrentThreadPointer(), static_cast<uintptr_t>(pthread_self()));
  uintptr_t other = 0, other_self = 0;
  std::thread([&] {
    other = CurrentThreadPointer();
    other_self = static_cast<uintptr_t>(pthread_self());
  }).join();
  EXPECT_EQ(other, other_self);
  EXPECT_NE(other, CurrentThreadPointer());
}

std::atomic<int> g_program_handler_calls{0};
void ProgramHandler(int) { ++g_program_handler_calls; }

[[noreturn]] void BorrowSignalChild() {
  alarm(20);
  int sig = SIGRTMIN + 6;
  struct sigaction mine = {};
  mine.sa_handler = ProgramHandler;
  sigaction(sig, &mine, nullptr);
  Worker w;
  w.Start();
  ThreadCapture capture;
  bool ok = StopOtherThreads(sig, 2000, &capture);
  struct sigaction during = {};
  sigaction(sig, nullptr, &during);
  bool borrowed = (during.sa_flags & SA_SIGINFO) != 0 && during.sa_sigaction != nullptr;
  bool stopped = ok && capture.count == 1 && capture.stopped == 1;
  ResumeOtherThreads(&capture);
  struct sigaction after = {};
  sigaction(sig, nullptr, &after);
  bool restored = after.sa_handler == ProgramHandler && (after.sa_flags & SA_SIGINFO) == 0;
  w.Stop();
  raise(sig);  // the program's handler runs again
  bool handled = g_program_handler_calls.load() == 1;
  _exit((stopped ? 0 : 1) | (borrowed ? 0 : 2) | (restored ? 0 : 4) | (handled ? 0 : 8));
}

// A requested signal is used even when the program has a handler for it;
// the program's handler is back afterwards. Run in a child: the capture's
// signal state is process-wide.
TEST(ThreadCapture, RequestedSignalIsBorrowedAndGivenBack) {
  EXPECT_EXIT(BorrowSignalChild(), ::testing::ExitedWithCode(0), "");
}

[[noreturn]] void AutomaticSignalChild() {
  alarm(20);
  struct sigaction mine = {};
  mine.sa_handler = ProgramHandler;
  sigaction(SIGRTMAX, &mine, nullptr);
  Worker w;
  w.Start();
  ThreadCapture capture;
  bool ok = StopOtherThreads(0, 2000, &capture) && capture.stopped == 1;
  struct sigaction top = {}, next = {};
  sigaction(SIGRTMAX, nullptr, &top);
  sigaction(SIGRTMAX - 1, nullptr, &next);
  bool kept = top.sa_handler == ProgramHandler;
  bool picked = (next.sa_flags & SA_SIGINFO) != 0;
  ResumeOtherThreads(&capture);
  sigaction(SIGRTMAX - 1, nullptr, &next);
  bool restored = next.sa_handler == SIG_DFL && (next.sa_flags & SA_SIGINFO) == 0;
  w.Stop();
  _exit((ok ? 0 : 1) | (kept ? 0 : 2) | (picked ? 0 : 4) | (restored ? 0 : 8));
}

// Signal 0 picks a real-time signal nobody handles, from the top down.
TEST(ThreadCapture, AutomaticSignalSkipsHandledOnes) {
  EXPECT_EXIT(AutomaticSignalChild(), ::testing::ExitedWithCode(0), "");
}

// True if the thread whose /proc/self/task/TID/syscall this is waits in
// read(2) (the file starts with the syscall number, "running" otherwise).
bool InReadSyscall(const std::string& path) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  char buf[64] = {};
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  return n >= 2 && buf[0] == '0' && buf[1] == ' ';
}

[[noreturn]] void BlockedThreadChild() {
  alarm(20);
  int fds[2];
  if (pipe(fds) != 0) _exit(100);
  std::atomic<pid_t> tid{0};
  std::atomic<uintptr_t> lo{0}, hi{0};
  std::thread blocked([&] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    testing::StoreCurrentThreadStack(&lo, &hi);
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    char c;
    if (read(fds[0], &c, 1) != 1) _exit(101);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);  // a signal pending here would arrive now
  });
  while (tid.load() == 0) std::this_thread::yield();
  // Until it sits in read(2) (syscall 0 in /proc/.../syscall): a sleep
  // guessed that, and a loaded machine could run the capture before
  // (flaky23, 2026-12-07). Bounded by alarm(20) above.
  std::string syscall_path = "/proc/self/task/" + std::to_string(tid.load()) + "/syscall";
  while (!InReadSyscall(syscall_path)) usleep(1000);
  ThreadCapture capture;
  bool ok = StopOtherThreads(0, 200, &capture);
  bool missed = ok && capture.count == 1 && capture.missed == 1 && capture.stopped == 0 &&
                capture.not_signalled == 1 && capture.threads[0].tid == tid.load() &&
                !capture.threads[0].stopped;
  bool sp = ok && capture.count == 1 && capture.threads[0].sp_known &&
            capture.threads[0].sp >= lo.load() && capture.threads[0].sp < hi.load();
  ResumeOtherThreads(&capture);
  if (write(fds[1], "x", 1) != 1) _exit(102);
  blocked.join();  // survived its pending signal
  _exit((missed ? 0 : 1) | (sp ? 0 : 2));
}

// The writer thread's exemption (trace_flusher.h): an exempt thread is
// neither signalled nor listed; the others are stopped as usual.
TEST(ThreadCapture, AnExemptThreadIsLeftRunning) {
  Worker exempt, other;
  exempt.Start();
  other.Start();
  while (exempt.tid.load() == 0 || other.tid.load() == 0) std::this_thread::yield();
  ExemptFromCapture(0, exempt.tid.load());
  ThreadCapture capture;
  EXPECT_TRUE(StopOtherThreads(0, 1000, &capture));
  EXPECT_EQ(capture.count, 1u);
  if (capture.count >= 1) {
    EXPECT_EQ(capture.threads[0].tid, other.tid.load());
  }
  EXPECT_EQ(capture.stopped, 1u);
  EXPECT_EQ(capture.missed, 0u);
  // The exempt thread keeps running while the other is stopped.
  uint64_t before = exempt.progress.load();
  while (exempt.progress.load() == before) std::this_thread::yield();
  ResumeOtherThreads(&capture);
  ExemptFromCapture(0, 0);
  exempt.Stop();
  other.Stop();
}

// A thread that blocks the signal, sitting in a system call, is missed
// without being signalled (its SigBlk says it could not answer; scan24:
// before, it was signalled and waited for until the timeout); its stack
// pointer comes from /proc/self/task/TID/syscall. It survives unblocking.
TEST(ThreadCapture, ThreadBlockingTheSignalIsMissedButItsStackIsKnown) {
  EXPECT_EXIT(BlockedThreadChild(), ::testing::ExitedWithCode(0), "");
}

std::atomic<int> g_first_waited_signal{0};

[[noreturn]] void SigwaitThreadChild() {
  alarm(20);
  std::atomic<pid_t> tid{0};
  std::atomic<uintptr_t> lo{0}, hi{0};
  std::thread waiter([&] {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, nullptr);
    testing::StoreCurrentThreadStack(&lo, &hi);
    tid = static_cast<pid_t>(syscall(SYS_gettid));
    int sig = 0;
    while (sigwait(&all, &sig) != 0) {
    }
    g_first_waited_signal = sig;
  });
  while (tid.load() == 0) std::this_thread::yield();
  std::string syscall_path = "/proc/self/task/" + std::to_string(tid.load()) + "/syscall";
  for (;;) {
    int fd = open(syscall_path.c_str(), O_RDONLY | O_CLOEXEC);
    char buf[64] = {};
    ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof buf - 1);
    if (fd >= 0) close(fd);
    if (n > 0 && std::atoi(buf) == SYS_rt_sigtimedwait) break;
    usleep(1000);
  }
  ThreadCapture capture;
  bool ok = StopOtherThreads(0, 2000, &capture);
  bool missed = ok && capture.count == 1 && capture.missed == 1 && capture.not_signalled == 1 &&
                capture.stopped == 0;
  bool sp = ok && capture.count == 1 && capture.threads[0].sp_known &&
            capture.threads[0].sp >= lo.load() && capture.threads[0].sp < hi.load();
  ResumeOtherThreads(&capture);
  // The program's own signal is the first its sigwait returns.
  pthread_kill(waiter.native_handle(), SIGUSR1);
  waiter.join();
  bool first_is_ours = g_first_waited_signal.load() == SIGUSR1;
  _exit((missed ? 0 : 1) | (sp ? 0 : 2) | (first_is_ours ? 0 : 4));
}

// A daemon's sigwait thread waits for every signal: the kernel unblocks the
// waited-for signals while it sleeps, so the stop signal would be returned
// to its sigwait (the program would act on a signal it never got) instead
// of running our handler. It is not signalled, and missed with its
// stack pointer known.
TEST(ThreadCapture, SigwaitThreadIsNotSignalled) {
  EXPECT_EXIT(SigwaitThreadChild(), ::testing::ExitedWithCode(0), "");
}

}  // namespace
}  // namespace heapsight::preload
