// tests/scenarios/single_thread_test.cc: issue 19, heapsight keeps a
// single-threaded host single-threaded in glibc's eyes. The writer (chunk
// compression and writes, FLUSH_MS's freshness pass) runs on a raw task
// (preload/service_task.h), never a glibc thread, so __libc_single_threaded
// stays 1 and glibc's malloc stays on its lock-free single-thread path.
// programs/single_thread_program.cc fills many chunks and prints
// "single=<__libc_single_threaded> tasks=<kernel tasks>"; the trace must
// still hold exactly its allocations, under full tracing, sampling with
// HEAPSIGHT_FLUSH_MS=1000 and HEAPSIGHT_LEAK_SIGNAL (what `record --serve`
// sets), `record --serve` itself, and in a fork child and an exec'd image.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>
#include <string>

#include "tests/scenarios/scenario_util.h"

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
