// tests/preload/raw_log_test.cc: the preload's non-allocating logger
// (preload/raw_log.h): number formatting at the extremes, truncation at the
// buffer's end, and RawLog's one line on stderr with errno kept.
#include "preload/raw_log.h"

#include <errno.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <climits>
#include <cstdint>
#include <string>

namespace heapsight::preload {
namespace {

std::string Text(const RawBuffer& b) { return std::string(b.data(), b.size()); }

TEST(RawLog, Numbers) {
  RawBuffer b;
  b.Num(0).Str(" ").Num(-1).Str(" ").Num(INT64_MAX).Str(" ").Num(INT64_MIN);
  EXPECT_EQ(Text(b), "0 -1 9223372036854775807 -9223372036854775808");
  RawBuffer h;
  h.Hex(0).Str(" ").Hex(0xdeadbeef).Str(" ").Hex(UINT64_MAX);
  EXPECT_EQ(Text(h), "0x0 0xdeadbeef 0xffffffffffffffff");
}

TEST(RawLog, NullStringIsNothing) {
  RawBuffer b;
  b.Str("a").Str(nullptr).Str("").Str("b");
  EXPECT_EQ(Text(b), "ab");
}

TEST(RawLog, TruncatesAt511Bytes) {
  RawBuffer b;
  std::string long_text(600, 'x');
  b.Str(long_text.c_str());
  EXPECT_EQ(b.size(), 511u);
  b.Str("more").Num(12345).Hex(1);  // nothing fits any more
  EXPECT_EQ(Text(b), std::string(511, 'x'));
  // A number cut at the end keeps its leading digits.
  RawBuffer c;
  c.Str(std::string(508, 'y').c_str()).Num(123456);
  EXPECT_EQ(Text(c), std::string(508, 'y') + "123");
}

TEST(RawLog, WritesOneLineToStderrAndKeepsErrno) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  int saved_stderr = dup(2);
  ASSERT_GE(saved_stderr, 0);
  ASSERT_EQ(dup2(fds[1], 2), 2);
  RawBuffer b;
  b.Str("cannot write trace ").Str("/x.hst").Str(": ").Str(ErrnoName(ENOENT));
  errno = EDQUOT;
  RawLog(b);
  int errno_after = errno;
  RawBuffer full;
  full.Str(std::string(600, 'z').c_str());
  RawLog(full);  // the longest message still ends with its newline
  dup2(saved_stderr, 2);
  close(saved_stderr);
  close(fds[1]);
  std::string got;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) > 0;) got.append(buf, static_cast<size_t>(n));
  close(fds[0]);
  EXPECT_EQ(errno_after, EDQUOT);
  EXPECT_EQ(got, "heapsight: cannot write trace /x.hst: No such file or directory\n"
                 "heapsight: " + std::string(511, 'z') + "\n");
}

// Issue 12: a warning written to a stderr pipe whose reader is gone must
// not kill the host with SIGPIPE (default action), must leave no SIGPIPE
// pending and the signal mask as it was, and keeps errno. Run in a child:
// on the old logger the child dies of SIGPIPE.
TEST(RawLog, ClosedStderrPipeRaisesNoSigpipe) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGPIPE, SIG_DFL);
    int fds[2];
    if (pipe(fds) != 0 || dup2(fds[1], 2) != 2) _exit(10);
    close(fds[0]);  // no reader
    RawBuffer b;
    b.Str("to nobody");
    errno = ENOENT;
    RawLog(b);
    if (errno != ENOENT) _exit(11);
    sigset_t pending, mask;
    if (sigpending(&pending) != 0 || sigismember(&pending, SIGPIPE) == 1) _exit(12);
    if (pthread_sigmask(SIG_SETMASK, nullptr, &mask) != 0 || sigismember(&mask, SIGPIPE) == 1) {
      _exit(13);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_FALSE(WIFSIGNALED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// A SIGPIPE the program had pending (blocked) before the warning stays
// pending: the logger takes back only the one its own write generated.
TEST(RawLog, ProgramsPendingSigpipeStaysPending) {
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    signal(SIGPIPE, SIG_DFL);
    sigset_t pipe_only;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, nullptr);
    raise(SIGPIPE);
    int fds[2];
    if (pipe(fds) != 0 || dup2(fds[1], 2) != 2) _exit(10);
    close(fds[0]);
    RawBuffer b;
    b.Str("to nobody");
    RawLog(b);
    sigset_t pending, mask;
    if (sigpending(&pending) != 0 || sigismember(&pending, SIGPIPE) != 1) _exit(12);
    if (pthread_sigmask(SIG_SETMASK, nullptr, &mask) != 0 || sigismember(&mask, SIGPIPE) != 1) {
      _exit(13);
    }
    _exit(0);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_FALSE(WIFSIGNALED(status)) << "killed by signal " << WTERMSIG(status);
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(RawLog, ErrnoNames) {
  EXPECT_STREQ(ErrnoName(EACCES), "Permission denied");
  EXPECT_STREQ(ErrnoName(ENOSPC), "No space left on device");
  EXPECT_STREQ(ErrnoName(EMFILE), "Too many open files");
  EXPECT_STREQ(ErrnoName(0), "error");
  EXPECT_STREQ(ErrnoName(EAGAIN), "error");  // not in the list
}

}  // namespace
}  // namespace heapsight::preload
