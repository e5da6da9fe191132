// tests/scenarios/single_thread_test.cc: issue 19, heapsight keeps a
// single-threaded host single-threaded in glibc's eyes. The writer (chunk
// compression and writes, FLUSH_MS's freshness pass) runs on a raw task
// (preload/service_task.h), never a glibc thread, so __libc_single_threaded
// stays 1 and glibc's malloc stays on its lock-free single-thread path.
// programs/single_thread_program.cc fills many chunks and prints
// "single=<__libc_single_threaded> tasks=<kernel tasks>"; the trace must
// still hold exactly its allocations, under full tracing, sampling with
// HEAPSIGHT_FLUSH_MS=1000 and HEAPSIGHT_LEAK_SIGNAL (what `record --serve`
// sets), `record --serve` itself, paused mode with `heapsight attach` and
// `detach` (the control loop is a raw task too), and in a fork child and an
// exec'd image.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <cstring>
#include <string>

#include "tests/scenarios/scenario_util.h"

extern char** environ;

namespace heapsight::testing {
namespace {

// One chunk holds fewer than 22,000 alloc+free pairs: 100,000 fill several.
constexpr long kPairs = 100000;
constexpr long kKept = 7;  // blocks the program keeps live to its end
constexpr uint64_t kMain = 3201, kChild = 3202;

std::string Program() { return ScenarioProgram("single_thread_program"); }

int Sum(const std::map<format::Api, int>& m) {
  int n = 0;
  for (const auto& [api, count] : m) n += count;
  return n;
}

// The trace at `path` holds exactly n+7 allocations of `size`, n frees of
// them, 7 live at the end, and is complete.
void ExpectExact(const std::string& path, uint64_t size, long n) {
  TraceContents t = ReadTrace(path);
  ASSERT_EQ(t.error, "") << path;
  EXPECT_TRUE(t.complete) << path;
  MagicCounts c = CountMagic(t, size, size + 1);
  EXPECT_EQ(Sum(c.allocs), n + kKept) << path;
  EXPECT_EQ(Sum(c.frees), n) << path;
  EXPECT_EQ(c.live.size(), static_cast<size_t>(kKept)) << path;
  EXPECT_EQ(c.bytes, static_cast<uint64_t>(n + kKept) * size) << path;
}

TEST(SingleThreadScenario, PlainRunIsTheBaseline) {
  RunResult r = RunPlain({Program(), "churn", std::to_string(kPairs)});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "single=1 tasks=1\n");
}

// Full tracing: the chunks that fill are handed to the writer task (a
// second kernel task), and glibc still sees one thread.
TEST(SingleThreadScenario, FullTracingWithTheWriter) {
  std::string dir = MakeTempDir();
  RunResult r = RunTraced({Program(), "churn", std::to_string(kPairs)}, dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "single=1 tasks=2\n") << r.err;
  ASSERT_EQ(r.traces.size(), 1u);
  ExpectExact(r.traces[0], kMain, kPairs);
}

// Without the writer (chunks written inline) there is no second task.
TEST(SingleThreadScenario, InlineWritingHasNoTask) {
  std::string dir = MakeTempDir();
  RunResult r = RunTraced({Program(), "churn", std::to_string(kPairs)}, dir,
                          {{"_HEAPSIGHT_TEST_WRITER", "off"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "single=1 tasks=1\n") << r.err;
  ASSERT_EQ(r.traces.size(), 1u);
  ExpectExact(r.traces[0], kMain, kPairs);
}

// Sampling as `record --serve` runs it: FLUSH_MS=1000 starts the task with
// the trace, LEAK_SIGNAL installs its handler without a thread (sampled).
// sample_bytes=16 samples every 3201-byte block (1 - exp(-200)), so the
// counts stay exact while the sampled code paths run.
TEST(SingleThreadScenario, SampledWithFreshnessAndLeakSignal) {
  std::string dir = MakeTempDir();
  RunResult r = RunTraced({Program(), "churn", std::to_string(kPairs)}, dir,
                          {{"HEAPSIGHT_SAMPLE_BYTES", "16"},
                           {"HEAPSIGHT_FLUSH_MS", "1000"},
                           {"HEAPSIGHT_LEAK_SIGNAL", "SIGUSR2"}});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "single=1 tasks=2\n") << r.err;
  ASSERT_EQ(r.traces.size(), 1u);
  ExpectExact(r.traces[0], kMain, kPairs);
}

// The real `heapsight record --serve` (unix socket), sampled.
TEST(SingleThreadScenario, RecordServeSampled) {
  std::string dir = MakeTempDir();
  std::string command = "'" + BuildPath("cli/heapsight") + "' record -q --serve '" + dir +
                        "/serve.sock' --option sample_bytes=16 -o '" + dir + "' -- '" + Program() +
                        "' churn " + std::to_string(kPairs) + " 2>&1";
  FILE* p = popen(command.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << out;
  EXPECT_EQ(out, "single=1 tasks=2\n");
}

std::string Shell(const std::string& command) {
  std::string out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return "<popen failed>";
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int st = pclose(p);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) out += "<status " + std::to_string(st) + ">";
  return out;
}

// Paused mode: the control task answers attach and detach; the window
// holds exactly the churn between them, and glibc never saw a thread.
TEST(SingleThreadScenario, PausedAttachDetach) {
  std::string dir = MakeTempDir();
  int in[2], out[2];
  ASSERT_EQ(pipe(in), 0);
  ASSERT_EQ(pipe(out), 0);
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "HEAPSIGHT_", 10) != 0 && std::strncmp(*e, "LD_PRELOAD=", 11) != 0) {
      env.push_back(*e);
    }
  }
  env.push_back("LD_PRELOAD=" + BuildPath("preload/libheapsight.so"));
  env.push_back("HEAPSIGHT_OUTPUT=" + dir + "/%e.%p.hst");
  env.push_back("HEAPSIGHT_START=paused");
  std::string program = Program(), mode = "wait", count = std::to_string(kPairs);
  std::vector<char*> argv = {program.data(), mode.data(), count.data(), nullptr};
  std::vector<char*> envp;
  for (auto& e : env) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    close(in[1]);
    close(out[0]);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  auto read_line = [&]() {
    std::string line;
    char c;
    for (;;) {
      pollfd pfd{out[0], POLLIN, 0};
      if (poll(&pfd, 1, 20000) <= 0) return line + "<timeout>";
      if (read(out[0], &c, 1) != 1) return line + "<eof>";
      if (c == '\n') return line;
      line += c;
    }
  };
  auto send = [&](const char* line) { (void)!write(in[1], line, std::strlen(line)); };
  std::string heapsight = "'" + BuildPath("cli/heapsight") + "'";
  EXPECT_EQ(read_line(), "ready");
  std::string attach = Shell(heapsight + " attach " + std::to_string(pid));
  EXPECT_NE(attach.find("recording process " + std::to_string(pid)), std::string::npos) << attach;
  send("go\n");
  EXPECT_EQ(read_line(), "done");
  std::string detach = Shell(heapsight + " detach " + std::to_string(pid));
  EXPECT_EQ(detach.find("<status"), std::string::npos) << detach;
  send("end\n");
  // The control task and the program's thread; the writer, started at the
  // window's first full chunk, was stopped by the detach.
  EXPECT_EQ(read_line(), "single=1 tasks=2");
  int st = 0;
  EXPECT_EQ(waitpid(pid, &st, 0), pid);
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 0) << st;
  close(in[1]);
  close(out[0]);
  std::vector<std::string> traces;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() == ".hst") traces.push_back(e.path().string());
  }
  ASSERT_EQ(traces.size(), 1u);
  ExpectExact(traces[0], kMain, kPairs);
}

// A fork child gets a writer task of its own at its first full chunk, and
// both processes stay single-threaded with exact traces.
TEST(SingleThreadScenario, ForkChild) {
  std::string dir = MakeTempDir();
  RunResult r = RunTraced({Program(), "fork", std::to_string(kPairs)}, dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "child single=1 tasks=2\nsingle=1 tasks=2\n") << r.err;
  ASSERT_EQ(r.traces.size(), 2u);
  int parents = 0, children = 0;
  for (const std::string& path : r.traces) {
    TraceContents t = ReadTrace(path);
    MagicCounts child = CountMagic(t, kChild, kChild + 1);
    if (Sum(child.allocs) != 0) {
      ++children;
      ExpectExact(path, kChild, kPairs);
    } else {
      ++parents;
      ExpectExact(path, kMain, kPairs);
    }
  }
  EXPECT_EQ(parents, 1);
  EXPECT_EQ(children, 1);
}

// exec: the writer is stopped before the exec (its chunks written); the
// new image starts a task of its own.
TEST(SingleThreadScenario, ExecdImage) {
  std::string dir = MakeTempDir();
  RunResult r = RunTraced({Program(), "exec", std::to_string(kPairs)}, dir);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "single=1 tasks=2\n") << r.err;
  ASSERT_EQ(r.traces.size(), 2u);
  // Both images churn 3201-byte blocks: one trace per image, each exact
  // (the first image's kept blocks are lost to the exec, still live).
  for (const std::string& path : r.traces) ExpectExact(path, kMain, kPairs);
}

}  // namespace
}  // namespace heapsight::testing
