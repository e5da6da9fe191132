// tests/scenarios/threads_test.cc: 4 threads x 100,000 allocations with
// cross-thread frees (programs/threads_program.cc).
#include <gtest/gtest.h>

#include <set>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

void CheckThreads(const std::map<std::string, std::string>& env) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("threads_program")}, dir, env);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "threads done\n");
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);
  MagicCounts c = CountMagic(t, 2000, 2004);
  EXPECT_EQ(c.allocs[format::Api::kMalloc], 400000);
  for (uint64_t size = 2000; size < 2004; ++size) EXPECT_EQ(c.by_size[size], 100000);
  EXPECT_EQ(c.frees[format::Api::kFree], 400000 - 40);
  EXPECT_EQ(c.live.size(), 40u);
  EXPECT_EQ(UnpairedFrees(t), 0u);
  EXPECT_EQ(CountTag(t, format::RecordTag::kFreeError), 0);
  // Allocation ids name 5 distinct threads (main + 4 workers).
  std::set<uint32_t> threads;
  for (const auto& r : t.records) {
    if (r.tag == format::RecordTag::kAlloc) threads.insert(format::AllocIdThread(r.id));
  }
  EXPECT_GE(threads.size(), 5u);
}

TEST(ThreadsScenario, FourThreadsCrossFrees) { CheckThreads({}); }

TEST(ThreadsScenario, FourThreadsRawBlocksNoAddresses) {
  CheckThreads({{"HEAPSIGHT_ZSTD_LEVEL", "0"}, {"HEAPSIGHT_RECORD_ADDRESSES", "0"}});
}

TEST(ThreadsScenario, FourThreadsFramePointerUnwinder) {
  CheckThreads({{"HEAPSIGHT_UNWIND", "fp"}});
}

}  // namespace
}  // namespace heapsight::testing
