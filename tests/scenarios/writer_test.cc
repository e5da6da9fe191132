// tests/scenarios/writer_test.cc: the writer thread and its spool (issue 15
// target 3) and HEAPSIGHT_FLUSH_MS (issue 19), under the real preload:
// SIGKILL keeps every chunk a thread handed over (recovered from the spool
// by the next reader), a trace read while the program runs has an idle
// thread's events within the flush period, and fork in a threaded program,
// a daemon that closes every fd and chdirs, and exit while threads
// allocate all give complete, exact traces and leave no spool behind.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>
#include <regex>
#include <thread>

#include "tests/scenarios/scenario_util.h"

extern char** environ;

namespace heapsight::testing {
namespace {

// One chunk (128 KiB) holds fewer than 22,000 alloc+free pairs of this
// program's blocks: what a SIGKILL may cost (the partial chunk), today and
// with the writer thread.
constexpr int kOneChunkOfPairs = 22000;

// A traced program left running: its pid and the read end of its stdout.
struct Live {
  pid_t pid = -1;
  int out = -1;
};

Live Start(const std::vector<std::string>& argv, const std::string& dir,
           const std::map<std::string, std::string>& env) {
  std::map<std::string, std::string> merged;
  for (char** e = environ; *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq == nullptr) continue;
    std::string key(*e, static_cast<size_t>(eq - *e));
    if (key == "LD_PRELOAD" || key.rfind("HEAPSIGHT_", 0) == 0 || key.rfind("_HEAPSIGHT_", 0) == 0) {
      continue;
    }
    merged[key] = eq + 1;
  }
  merged["LD_PRELOAD"] = BuildPath("preload/libheapsight.so");
  merged["HEAPSIGHT_OUTPUT"] = dir + "/%e.%p.hst";
  for (const auto& [k, v] : env) merged[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : merged) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (auto& s : argv_copy) args.push_back(s.data());
  args.push_back(nullptr);
  int fds[2];
  if (pipe(fds) != 0) return {};
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 1);
    close(fds[0]);
    close(fds[1]);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  return {pid, fds[0]};
}

// Reads the program's stdout until "ready" (false at EOF: it died).
bool WaitReady(const Live& live) {
  std::string got;
  char buf[64];
  while (got.find("ready\n") == std::string::npos) {
    ssize_t n = read(live.out, buf, sizeof buf);
    if (n <= 0) return false;
    got.append(buf, static_cast<size_t>(n));
  }
  return true;
}

bool Running(pid_t pid) {
  int status;
  return waitpid(pid, &status, WNOHANG) == 0;
}

int KillAndWait(Live* live) {
  kill(live->pid, SIGKILL);
  int status = 0;
  waitpid(live->pid, &status, 0);
  close(live->out);
  return WIFSIGNALED(status) ? WTERMSIG(status) : -1;
}

std::vector<std::string> FilesEndingIn(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  if (DIR* d = opendir(dir.c_str()); d != nullptr) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.size() > suffix.size() &&
          name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0) {
        out.push_back(dir + "/" + name);
      }
    }
    closedir(d);
  }
  std::sort(out.begin(), out.end());
  return out;
}

uint64_t FileSize(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0 ? static_cast<uint64_t>(st.st_size) : 0;
}

// "writer thread: N chunks handed over" of each HEAPSIGHT_STATS line.
std::vector<int> HandedOver(const std::string& err) {
  std::vector<int> out;
  std::regex re("writer thread: (\\d+) chunks handed over");
  for (std::sregex_iterator it(err.begin(), err.end(), re), end; it != end; ++it) {
    out.push_back(std::stoi((*it)[1]));
  }
  return out;
}

TEST(WriterScenario, SigkillKeepsChunksLeftInTheSpool) {
  // The writer writes nothing (test switch): every full chunk waits in the
  // spool, the worst moment for a SIGKILL. The next reader recovers them.
  std::string dir = MakeTempDir();
  const int n = 150000;
  Live live = Start({ScenarioProgram("writer_program"), "sleep", std::to_string(n)}, dir,
                    {{"_HEAPSIGHT_TEST_WRITER", "paused"}});
  ASSERT_TRUE(WaitReady(live));
  std::vector<std::string> traces = FilesEndingIn(dir, ".hst");
  ASSERT_EQ(traces.size(), 1u);
  ASSERT_EQ(FilesEndingIn(dir, ".spool").size(), 1u);
  EXPECT_EQ(KillAndWait(&live), SIGKILL);
  // Nothing but the header reached the trace itself.
  EXPECT_EQ(FileSize(traces[0]), sizeof(format::FileHeader));
  TraceContents t = ReadTrace(traces[0]);
  ASSERT_EQ(t.error, "");
  EXPECT_FALSE(t.complete);
  MagicCounts c = CountMagic(t, 3001, 3002);
  EXPECT_GE(c.by_size[3001], n - kOneChunkOfPairs);
  EXPECT_LE(c.by_size[3001], n);
  EXPECT_EQ(UnpairedFrees(t), 0u);
  // Recovered once, into the trace; the spool is gone.
  EXPECT_TRUE(FilesEndingIn(dir, ".spool").empty());
  TraceContents again = ReadTrace(traces[0]);
  EXPECT_EQ(CountMagic(again, 3001, 3002).by_size[3001], c.by_size[3001]);
}

TEST(WriterScenario, SigkillKeepsEveryFullChunk) {
  std::string dir = MakeTempDir();
  const int n = 150000;
  Live live = Start({ScenarioProgram("writer_program"), "sleep", std::to_string(n)}, dir, {});
  ASSERT_TRUE(WaitReady(live));
  EXPECT_EQ(KillAndWait(&live), SIGKILL);
  std::vector<std::string> traces = FilesEndingIn(dir, ".hst");
  ASSERT_EQ(traces.size(), 1u);
  TraceContents t = ReadTrace(traces[0]);
  ASSERT_EQ(t.error, "");
  MagicCounts c = CountMagic(t, 3001, 3002);
  EXPECT_GE(c.by_size[3001], n - kOneChunkOfPairs);
  EXPECT_LE(c.by_size[3001], n);
  EXPECT_EQ(UnpairedFrees(t), 0u);
  EXPECT_TRUE(FilesEndingIn(dir, ".spool").empty());
}

// Polls the growing trace(s) of a live program until `n` blocks of `size`
// are in one of them or `seconds` pass; returns the last count. `alive`:
// stop early once it returns false. The programs wait until killed, so a
// positive wait's `seconds` is only a hang guard (kHangSeconds; flaky23,
// 2026-12-07: these were 10-15 s, about a second's work on an idle
// machine); only WithoutFlushMsAnIdleThreadsChunkWaits waits a fixed time,
// for something that must not happen (a loaded machine can only make it
// pass wrongly, never fail).
constexpr int kHangSeconds = 60;

template <typename Alive>
int PollCount(Alive alive, const std::string& dir, uint64_t size, int n, int seconds) {
  int count = 0;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  while (std::chrono::steady_clock::now() < deadline) {
    for (const std::string& path : FilesEndingIn(dir, ".hst")) {
      TraceContents t = ReadTrace(path);
      if (t.error.empty()) count = std::max(count, CountMagic(t, size, size + 1).by_size[size]);
    }
    if (count >= n) break;
    if (!alive()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return count;
}

TEST(WriterScenario, FlushMsPutsAnIdleThreadsEventsInTheFile) {
  // A worker allocates 1,000 blocks (far less than a chunk) and sleeps. With
  // FLUSH_MS=1000 they are in the file about a second later, while the
  // program still runs (the bound here is generous: a loaded machine).
  std::string dir = MakeTempDir();
  const int n = 1000;
  Live live = Start({ScenarioProgram("writer_program"), "idle", std::to_string(n)}, dir,
                    {{"HEAPSIGHT_FLUSH_MS", "1000"}});
  ASSERT_TRUE(WaitReady(live));
  int count = PollCount([&] { return Running(live.pid); }, dir, 3004, n, kHangSeconds);
  EXPECT_TRUE(Running(live.pid));
  EXPECT_EQ(count, n);
  // The live program's spool was not touched by the reader.
  EXPECT_EQ(FilesEndingIn(dir, ".spool").size(), 1u);
  EXPECT_EQ(KillAndWait(&live), SIGKILL);
}

TEST(WriterScenario, FlushMsStillFlushesAfterALeakScanRequest) {
  // A leak scan on request (what record --serve's /debug/heapsight/leaks
  // asks for) flushes every thread, which stops the writer first; the
  // writer must come back, or an idle thread's later events never reach
  // the file (they did not, before). The worker's second batch comes 3 s
  // after "ready", long after the scan the signal asked for.
  std::string dir = MakeTempDir();
  const int n = 1000;
  Live live = Start({ScenarioProgram("writer_program"), "idle-twice", std::to_string(n)}, dir,
                    {{"HEAPSIGHT_FLUSH_MS", "1000"}, {"HEAPSIGHT_LEAK_SIGNAL", "SIGUSR2"}});
  ASSERT_TRUE(WaitReady(live));
  ASSERT_EQ(kill(live.pid, SIGUSR2), 0);
  EXPECT_EQ(PollCount([&] { return Running(live.pid); }, dir, 3004, n, kHangSeconds), n);
  EXPECT_EQ(PollCount([&] { return Running(live.pid); }, dir, 3005, n, kHangSeconds), n);
  EXPECT_TRUE(Running(live.pid));
  EXPECT_EQ(KillAndWait(&live), SIGKILL);
}

TEST(WriterScenario, WithoutFlushMsAnIdleThreadsChunkWaits) {
  // The default (FLUSH_MS=0) is today's behaviour: the worker's partial
  // chunk stays in memory while the program runs.
  std::string dir = MakeTempDir();
  const int n = 1000;
  Live live = Start({ScenarioProgram("writer_program"), "idle", std::to_string(n)}, dir, {});
  ASSERT_TRUE(WaitReady(live));
  int count = PollCount([&] { return Running(live.pid); }, dir, 3004, n, 2);
  EXPECT_TRUE(Running(live.pid));
  EXPECT_EQ(count, 0);
  EXPECT_EQ(KillAndWait(&live), SIGKILL);
}

TEST(WriterScenario, FlushMsInAForkChild) {
  // The child of a threaded program starts a writer of its own at the end
  // of the fork handler, so its events reach its own trace while it runs.
  std::string dir = MakeTempDir();
  const int n = 1000;
  Live live = Start({ScenarioProgram("writer_program"), "fork-idle", std::to_string(n)}, dir,
                    {{"HEAPSIGHT_FLUSH_MS", "1000"}});
  ASSERT_TRUE(WaitReady(live));  // printed by the child
  int count = PollCount([&] { return Running(live.pid); }, dir, 3002, n, kHangSeconds);
  EXPECT_EQ(count, n);
  EXPECT_EQ(FilesEndingIn(dir, ".hst").size(), 2u);
  // The child's trace is the one with them.
  for (const std::string& path : FilesEndingIn(dir, ".hst")) {
    TraceContents t = ReadTrace(path);
    bool child = (t.header.flags & format::kFileFlagForkChild) != 0;
    EXPECT_EQ(CountMagic(t, 3002, 3003).by_size[3002], child ? n : 0) << path;
  }
  // Both writers are alive: two spools, neither recovered by the reader.
  EXPECT_EQ(FilesEndingIn(dir, ".spool").size(), 2u);
  // The child is not ours to wait for: killed by the pid in its trace's
  // header, then the parent.
  for (const std::string& path : FilesEndingIn(dir, ".hst")) {
    TraceContents t = ReadTrace(path);
    if (t.header.flags & format::kFileFlagForkChild) kill(static_cast<pid_t>(t.header.pid), SIGKILL);
  }
  EXPECT_EQ(KillAndWait(&live), SIGKILL);
}

TEST(WriterScenario, ForkInAThreadedProgram) {
  std::string dir = MakeTempDir();
  const int n = 100000;
  RunResult run = RunTraced({ScenarioProgram("writer_program"), "fork", std::to_string(n)}, dir,
                            {{"HEAPSIGHT_STATS", "1"}});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 2u);
  // Both writers wrote everything and removed their spools before exit
  // (checked before any reader could recover a spool into the trace).
  EXPECT_TRUE(FilesEndingIn(dir, ".spool").empty());
  int parents = 0, children = 0;
  for (const std::string& path : run.traces) {
    TraceContents t = ReadTrace(path);
    ASSERT_EQ(t.error, "") << path;
    EXPECT_TRUE(t.complete) << path;
    EXPECT_EQ(UnpairedFrees(t), 0u) << path;
    bool child = (t.header.flags & format::kFileFlagForkChild) != 0;
    MagicCounts own = CountMagic(t, child ? 3002 : 3001, child ? 3003 : 3002);
    uint64_t size = child ? 3002 : 3001;
    EXPECT_EQ(own.by_size[size], n) << path;
    EXPECT_EQ(own.frees[format::Api::kFree], n) << path;
    (child ? children : parents) += 1;
  }
  EXPECT_EQ(parents, 1);
  EXPECT_EQ(children, 1);
  // Both processes handed chunks to a writer thread of their own.
  std::vector<int> handed = HandedOver(run.err);
  ASSERT_EQ(handed.size(), 2u) << run.err;
  EXPECT_GT(handed[0], 0);
  EXPECT_GT(handed[1], 0);
}

TEST(WriterScenario, DaemonThatClosesEveryFdAndChdirs) {
  std::string dir = MakeTempDir();
  const int n = 150000;
  RunResult run = RunTraced({ScenarioProgram("writer_program"), "daemon", std::to_string(n)}, dir,
                            {{"HEAPSIGHT_STATS", "1"}});
  ASSERT_EQ(run.exit_code, 0) << run.err;  // 3: an fd of ours was left open
  ASSERT_EQ(run.traces.size(), 1u);
  // The spool was emptied and removed by absolute path after the chdir
  // (checked before a reader could recover it into the trace).
  EXPECT_TRUE(FilesEndingIn(dir, ".spool").empty());
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);
  MagicCounts c = CountMagic(t, 3001, 3002);
  EXPECT_EQ(c.by_size[3001], n);
  EXPECT_EQ(c.frees[format::Api::kFree], n);
}

TEST(WriterScenario, ExitWhileThreadsStillAllocate) {
  std::string dir = MakeTempDir();
  const int n = 150000;
  RunResult run = RunTraced(
      {ScenarioProgram("writer_program"), "busy-exit", std::to_string(n)}, dir,
      {{"HEAPSIGHT_STATS", "1"}});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  // Stopped, drained and removed at exit, before a reader could recover it.
  EXPECT_TRUE(FilesEndingIn(dir, ".spool").empty());
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);
  MagicCounts c = CountMagic(t, 3001, 3002);
  EXPECT_EQ(c.by_size[3001], n);
  EXPECT_EQ(c.frees[format::Api::kFree], n);
  EXPECT_EQ(UnpairedFrees(t), 0u);
  std::vector<int> handed = HandedOver(run.err);
  ASSERT_EQ(handed.size(), 1u) << run.err;
  EXPECT_GT(handed[0], 0);
}

}  // namespace
}  // namespace heapsight::testing
