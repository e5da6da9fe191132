// tests/preload/task_status_test.cc: what preload/task_status.h reads of a
// thread in /proc/self/task/TID: its state and blocked signals, and the
// system call it sleeps in with that call's stack pointer.
#include "preload/task_status.h"

#include <gtest/gtest.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "tests/support/thread_stack.h"

namespace heapsight::preload {
namespace {

pid_t Tid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

TEST(TaskStatus, PathOfATaskFile) {
  char path[64];
  TaskFilePath(1234, "status", path, sizeof path);
  EXPECT_STREQ(path, "/proc/self/task/1234/status");
  TaskFilePath(7, "syscall", path, sizeof path);
  EXPECT_STREQ(path, "/proc/self/task/7/syscall");
}

TEST(TaskStatus, SignalInMaskCountsFromSignalOne) {
  EXPECT_TRUE(SignalInMask(uint64_t{1}, 1));
  EXPECT_FALSE(SignalInMask(uint64_t{1}, 2));
  EXPECT_TRUE(SignalInMask(uint64_t{1} << 63, 64));
  EXPECT_FALSE(SignalInMask(~uint64_t{0}, 0));
  EXPECT_FALSE(SignalInMask(~uint64_t{0}, 65));
}

// The calling thread runs, and its SigBlk has exactly what it blocked.
TEST(TaskStatus, OwnStateAndBlockedSignals) {
  std::thread([] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGRTMIN + 3);
    pthread_sigmask(SIG_SETMASK, &set, nullptr);
    TaskStatus status;
    ASSERT_TRUE(ReadTaskStatus(Tid(), &status));
    EXPECT_EQ(status.state, 'R');
    EXPECT_EQ(status.blocked, (uint64_t{1} << (SIGUSR2 - 1)) | (uint64_t{1} << (SIGRTMIN + 3 - 1)));
    EXPECT_TRUE(SignalInMask(status.blocked, SIGUSR2));
    EXPECT_FALSE(SignalInMask(status.blocked, SIGUSR1));
  }).join();
}

TEST(TaskStatus, NoSuchTask) {
  TaskStatus status;
  EXPECT_FALSE(ReadTaskStatus(0x7ffffff0, &status));
  TaskSyscall call;
  EXPECT_FALSE(ReadTaskSyscall(0x7ffffff0, &call));
}

// A thread sleeping in read(2): state S, system call 0, its stack pointer
// inside its stack.
TEST(TaskStatus, SleepingThreadsSystemCallAndStackPointer) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  std::atomic<pid_t> tid{0};
  std::atomic<uintptr_t> lo{0}, hi{0};
  std::thread reader([&] {
    testing::StoreCurrentThreadStack(&lo, &hi);
    sigset_t none;
    sigemptyset(&none);
    pthread_sigmask(SIG_SETMASK, &none, nullptr);
    tid = Tid();
    char c;
    EXPECT_EQ(read(fds[0], &c, 1), 1);
  });
  while (tid.load() == 0) std::this_thread::yield();
  TaskSyscall call;
  // Until it sleeps in read (bounded: the test's timeout).
  while (!ReadTaskSyscall(tid.load(), &call) || call.number != SYS_read) usleep(1000);
  EXPECT_GE(call.sp, lo.load());
  EXPECT_LT(call.sp, hi.load());
  TaskStatus status;
  ASSERT_TRUE(ReadTaskStatus(tid.load(), &status));
  EXPECT_EQ(status.state, 'S');
  EXPECT_EQ(status.blocked, 0u);
  ASSERT_EQ(write(fds[1], "x", 1), 1);
  reader.join();
  close(fds[0]);
  close(fds[1]);
}

}  // namespace
}  // namespace heapsight::preload
