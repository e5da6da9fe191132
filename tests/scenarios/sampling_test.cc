// tests/scenarios/sampling_test.cc: HEAPSIGHT_SAMPLE_BYTES. The same program
// (programs/sampling_program.cc) recorded whole and sampled: the sampled
// trace holds about the expected share of each kind of allocation, each
// with its real stack, every recorded free names a recorded allocation,
// the ~200,000 frees of unsampled blocks are neither recorded nor reported
// as bad, and the exit leak scan is off.
#include <gtest/gtest.h>

#include <cmath>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

constexpr uint64_t kPeriod = 100000;

TraceContents Record(const std::map<std::string, std::string>& env) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("sampling_program")}, dir, env);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "sampling done\n");
  if (run.traces.size() != 1u) {
    ADD_FAILURE() << "traces: " << run.traces.size();
    return {};
  }
  TraceContents t = ReadTrace(run.traces[0]);
  EXPECT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);
  return t;
}

// Expected number of sampled allocations of `size` bytes among `n`, and a
// band of six standard deviations around it (the sampler is seeded the
// same way every run, so the count is the same every run too).
void ExpectSampledShare(int sampled, int n, uint64_t size) {
  double p = 1.0 - std::exp(-static_cast<double>(size) / kPeriod);
  double mean = n * p, sd = std::sqrt(n * p * (1 - p));
  EXPECT_GE(sampled, mean - 6 * sd) << n << " allocations of " << size << " bytes";
  EXPECT_LE(sampled, mean + 6 * sd) << n << " allocations of " << size << " bytes";
}

TEST(SamplingScenario, WholeTraceControl) {
  TraceContents t = Record({});
  EXPECT_EQ(t.header.flags & format::kFileFlagSampled, 0u);
  EXPECT_EQ(t.header.sample_period_bytes, 0u);
  MagicCounts blocks = CountMagic(t, 1000, 1001);
  EXPECT_EQ(blocks.allocs[format::Api::kMalloc], 200000);
  EXPECT_EQ(blocks.live.size(), 1000u);
  MagicCounts grown = CountMagic(t, 5000, 5001);
  EXPECT_EQ(grown.reallocs, 10000);
  EXPECT_EQ(CountTag(t, format::RecordTag::kLeakScan), 1);
}

TEST(SamplingScenario, SampledTraceHoldsItsShare) {
  TraceContents t = Record({{"HEAPSIGHT_SAMPLE_BYTES", std::to_string(kPeriod)}});
  EXPECT_NE(t.header.flags & format::kFileFlagSampled, 0u);
  EXPECT_EQ(t.header.sample_period_bytes, kPeriod);

  // 200,000 blocks of 1,000 bytes: about 1,990 sampled.
  MagicCounts blocks = CountMagic(t, 1000, 1001);
  int sampled = blocks.allocs[format::Api::kMalloc];
  ExpectSampledShare(sampled, 200000, 1000);
  // The estimate pprof makes of the bytes: within 15% of the 200 MB.
  double p = 1.0 - std::exp(-1000.0 / kPeriod);
  EXPECT_NEAR(sampled * 1000.0 / p, 200e6, 0.15 * 200e6);
  // Of the 1,000 blocks live at exit, about 10 were sampled.
  EXPECT_LE(blocks.live.size(), 40u);
  EXPECT_EQ(blocks.frees[format::Api::kFree] + static_cast<int>(blocks.live.size()), sampled);

  // 10,000 reallocs to 5,000 bytes: the new side is sampled on its own
  // (about 488), whatever became of the 100-byte block (about 10 sampled).
  MagicCounts grown = CountMagic(t, 5000, 5001);
  int grown_sampled = 0;
  for (const auto& [api, n] : grown.allocs) grown_sampled += n;
  ExpectSampledShare(grown_sampled, 10000, 5000);
  EXPECT_TRUE(grown.live.empty());  // every sampled one was freed again
  MagicCounts small = CountMagic(t, 100, 101);
  ExpectSampledShare(small.allocs[format::Api::kMalloc], 10000, 100);
  EXPECT_TRUE(small.live.empty());  // freed by realloc (kRealloc or kFree)

  // Every recorded free names a recorded allocation; the unsampled blocks'
  // frees are not errors.
  EXPECT_EQ(UnpairedFrees(t), 0u);
  EXPECT_EQ(CountTag(t, format::RecordTag::kFreeError), 0);
  EXPECT_EQ(CountTag(t, format::RecordTag::kLeakScan), 0);

  // Sampled allocations keep their real stacks.
  std::string exe = ScenarioProgram("sampling_program");
  ProgramSymbols symbols(exe, t);
  ASSERT_EQ(symbols.Error(), "");
  int named = 0, blocks_seen = 0;
  for (const auto& r : t.records) {
    if (r.tag != format::RecordTag::kAlloc || r.size != 1000) continue;
    ++blocks_seen;
    std::vector<std::string> frames = symbols.Frames(t, r.stack);
    bool has = false;
    for (const std::string& f : frames) has = has || f == "AllocateBlocks";
    named += has;
  }
  EXPECT_EQ(named, blocks_seen);
}

}  // namespace
}  // namespace heapsight::testing
