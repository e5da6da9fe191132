// tests/scenarios/lock_stress_test.cc: the thread-state lock
// (preload/thread_state.h) under the real preload, with other threads
// taking every state's lock while the owners record
// (programs/lock_stress_program.cc: the writer's freshness flushes, leak
// requests that flush every thread, fork, thread churn, signals landing
// inside the hooks). No record may be lost or doubled: exact counts in
// the parent's trace and in every child's.
#include <gtest/gtest.h>
#include <signal.h>

#include <set>
#include <string>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

constexpr int kWorkers = 3;
constexpr uint64_t kRounds = 4;
constexpr uint64_t kPairs = 60000;
constexpr size_t kForks = 6;

void CheckStress(std::map<std::string, std::string> env) {
  env["HEAPSIGHT_FLUSH_MS"] = "1";
  env["HEAPSIGHT_LEAK_SIGNAL"] = "SIGUSR2";
  std::string dir = MakeTempDir();
  RunResult run =
      RunTraced({ScenarioProgram("lock_stress_program"), std::to_string(SIGUSR2)}, dir, env);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("forks 6 failures 0\n"), std::string::npos) << run.out;
  EXPECT_NE(run.out.find("handler "), std::string::npos) << run.out;
  ASSERT_EQ(run.traces.size(), 1 + kForks);
  size_t parents = 0, children = 0;
  for (const std::string& path : run.traces) {
    TraceContents t = ReadTrace(path);
    ASSERT_EQ(t.error, "") << path;
    EXPECT_TRUE(t.complete) << path;
    EXPECT_EQ(UnpairedFrees(t), 0u) << path;
    EXPECT_EQ(CountTag(t, format::RecordTag::kFreeError), 0) << path;
    if (t.header.flags & format::kFileFlagForkChild) {
      ++children;
      MagicCounts c = CountMagic(t, 9000, 9001);
      EXPECT_EQ(c.by_size[9000], 1) << path;
      EXPECT_EQ(c.frees[format::Api::kFree], 1) << path;
      continue;
    }
    ++parents;
    MagicCounts c = CountMagic(t, 5000, 5000 + kWorkers);
    for (uint64_t size = 5000; size < 5000 + kWorkers; ++size) {
      EXPECT_EQ(c.by_size[size], kRounds * kPairs) << size;
    }
    EXPECT_EQ(c.allocs[format::Api::kMalloc], kWorkers * kRounds * kPairs);
    EXPECT_EQ(c.frees[format::Api::kFree], kWorkers * kRounds * kPairs);
    EXPECT_EQ(c.live.size(), 0u);
    // Every worker of every round had a state of its own (a recycled
    // state gets a fresh index).
    std::set<uint32_t> threads;
    for (const auto& r : t.records) {
      if (r.tag == format::RecordTag::kAlloc && r.size >= 5000 && r.size < 5000 + kWorkers) {
        threads.insert(format::AllocIdThread(r.id));
      }
    }
    EXPECT_EQ(threads.size(), static_cast<size_t>(kWorkers * kRounds));
    // The leak requests ran (each flushed every thread's state).
    EXPECT_GE(CountTag(t, format::RecordTag::kLeakScan), 1);
  }
  EXPECT_EQ(parents, 1u);
  EXPECT_EQ(children, kForks);
}

TEST(LockStressScenario, RemoteTakersLoseNothing) { CheckStress({}); }

}  // namespace
}  // namespace heapsight::testing
