// tests/preload/service_task_test.cc: heapsight's raw service task
// (preload/service_task.h) on its own: it runs, glibc still sees one
// thread, its errno and thread_locals are its own, every signal is blocked
// in it, it is named, exempt from the leak scan's stop while it runs, and
// the kernel-cleared tid word joins it; a second role runs beside the
// first, a role runs one task at a time, and a finished role starts again.
// Each test runs in a child process (a gtest binary may have threads).
#include "preload/service_task.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/single_threaded.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "preload/host_guards.h"
#include "preload/raw_syscall.h"
#include "preload/reentry_guard.h"

// Stand-ins for the rest of the preload.
namespace heapsight::preload {
constinit thread_local int t_reentry_depth __attribute__((tls_model("initial-exec"))) = 0;
std::atomic<pid_t> g_exempt[2];
void ExemptFromCapture(int slot, pid_t tid) { g_exempt[slot].store(tid); }
}  // namespace heapsight::preload

namespace heapsight::preload {
namespace {

thread_local int t_marker __attribute__((tls_model("initial-exec"))) = 0;

// What the task saw, written by the task, read after the join.
struct Seen {
  std::atomic<int> ran{0};
  int reentry = -1;
  int marker_at_start = -1;
  int errno_after_close = -1;
  bool in_task = false;
  bool on_writer = false;
  std::atomic<int> release{0};  // the task waits for it (futex-free spin)
};

void TaskMain(void* arg) {
  auto* s = static_cast<Seen*>(arg);
  s->reentry = t_reentry_depth;
  s->marker_at_start = t_marker;  // the task's own TLS: 0, not main's 7
  t_marker = 99;
  close(-1);  // glibc's wrapper stores EBADF into the task's own errno
  s->errno_after_close = errno;
  s->in_task = InServiceTask();
  s->on_writer = OnServiceTask(kWriterTask);
  s->ran.store(1);
  while (s->release.load() == 0) RawSyscall(SYS_sched_yield);
}

std::string Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Runs `body` in a forked child; the test fails if it returns false.
void InChild(const std::function<bool()>& body) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) _exit(body() ? 0 : 1);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << status;
}

#define CHECK(cond)                                             \
  do {                                                          \
    if (!(cond)) {                                              \
      fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond); \
      return false;                                             \
    }                                                           \
  } while (0)

TEST(ServiceTask, RunsUnseenByGlibcWithItsOwnTlsAndSignalsBlocked) {
  InChild([] {
    CHECK(__libc_single_threaded == 1);
    t_marker = 7;
    errno = 0;
    static Seen seen;
    int err = -1;
    CHECK(StartServiceTask(kWriterTask, TaskMain, &seen, "heapsight-test", &err));
    CHECK(err == 0);
    pid_t tid = ServiceTaskTid(kWriterTask);
    CHECK(tid > 0 && tid != getpid());
    CHECK(g_exempt[kWriterTask].load() == tid);
    errno = 0;
    while (seen.ran.load() == 0) RawSyscall(SYS_sched_yield);
    // The task's close(-1) set its own errno, not ours.
    CHECK(errno == 0);
    std::string task = "/proc/self/task/" + std::to_string(tid);
    CHECK(Read(task + "/comm") == "heapsight-test\n");
    // SigBlk: every one of the 64 signals but SIGKILL and SIGSTOP, which
    // the kernel never lets a task block.
    CHECK(Read(task + "/status").find("SigBlk:\tfffffffffffbfeff\n") != std::string::npos);
    // A second task of the same role is refused while this one runs.
    Seen other;
    CHECK(!StartServiceTask(kWriterTask, TaskMain, &other, "x", &err) && err == EBUSY);
    seen.release.store(1);
    CHECK(WaitServiceTaskExit(kWriterTask, 5000000000ull));
    CHECK(ServiceTaskTid(kWriterTask) == 0);
    CHECK(g_exempt[kWriterTask].load() == 0);
    // The kernel clears the tid word (and wakes the join) in the task's
    // exit path once it let go of the address space, before the task is
    // released from /proc/self/task: the entry goes a moment later. Wait
    // for it, bounded; a task that never went would fail here.
    bool gone = false;
    for (int i = 0; i < 5000 && !gone; ++i) {
      gone = access(task.c_str(), F_OK) != 0;
      if (!gone) usleep(1000);
    }
    CHECK(gone);
    CHECK(seen.reentry == 1);
    CHECK(seen.marker_at_start == 0);
    CHECK(seen.errno_after_close == EBADF);
    CHECK(seen.in_task && seen.on_writer);
    // Nothing of the task's reached this thread.
    CHECK(t_marker == 7);
    CHECK(!InServiceTask());
    CHECK(__libc_single_threaded == 1);
    return true;
  });
}

TEST(ServiceTask, TwoRolesRunSideBySideAndARoleStartsAgain) {
  InChild([] {
    static Seen a, b, c;
    int err = -1;
    CHECK(StartServiceTask(kWriterTask, TaskMain, &a, "heapsight-a", &err));
    CHECK(StartServiceTask(kControlTask, TaskMain, &b, "heapsight-b", &err));
    while (a.ran.load() == 0 || b.ran.load() == 0) RawSyscall(SYS_sched_yield);
    CHECK(ServiceTaskTid(kWriterTask) != ServiceTaskTid(kControlTask));
    CHECK(a.on_writer && !b.on_writer && b.in_task);
    a.release.store(1);
    CHECK(WaitServiceTaskExit(kWriterTask, 5000000000ull));
    CHECK(ServiceTaskTid(kControlTask) != 0);  // the other one runs on
    CHECK(StartServiceTask(kWriterTask, TaskMain, &c, "heapsight-c", &err));
    while (c.ran.load() == 0) RawSyscall(SYS_sched_yield);
    CHECK(c.marker_at_start == 0);  // a fresh TLS area, not the last task's 99
    b.release.store(1);
    c.release.store(1);
    CHECK(WaitServiceTaskExit(kControlTask, 5000000000ull));
    CHECK(WaitServiceTaskExit(kWriterTask, 5000000000ull));
    CHECK(__libc_single_threaded == 1);
    return true;
  });
}

TEST(ServiceTask, AForkChildForgetsTheParentsTask) {
  InChild([] {
    static Seen a, child_task;
    int err = -1;
    CHECK(StartServiceTask(kWriterTask, TaskMain, &a, "heapsight-a", &err));
    while (a.ran.load() == 0) RawSyscall(SYS_sched_yield);
    pid_t pid = fork();
    if (pid == 0) {
      // The task was not copied; its tid word was.
      ForgetServiceTaskInChild(kWriterTask);
      bool ok = ServiceTaskTid(kWriterTask) == 0 &&
                StartServiceTask(kWriterTask, TaskMain, &child_task, "heapsight-c", &err);
      while (ok && child_task.ran.load() == 0) RawSyscall(SYS_sched_yield);
      child_task.release.store(1);
      ok = ok && WaitServiceTaskExit(kWriterTask, 5000000000ull);
      _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    a.release.store(1);
    CHECK(WaitServiceTaskExit(kWriterTask, 5000000000ull));
    return true;
  });
}

}  // namespace
}  // namespace heapsight::preload
