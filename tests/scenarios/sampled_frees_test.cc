// tests/scenarios/sampled_frees_test.cc: the sampled free path (issue 15
// target 4). In sampled mode a free asks the live table's counting filter
// first and passes an unsampled block straight to the allocator; these
// tests check on a real program (programs/sampled_frees_program.cc: two
// threads, 40,000 blocks of 3,000-3,999 bytes through malloc, calloc,
// new[] and realloc, a quarter freed by the other thread, all freed by
// the end) that this never loses a sampled block's free and never
// records an unsampled one.
#include <gtest/gtest.h>
#include <stdio.h>

#include <cmath>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

constexpr int kBlocks = 2 * 20000;
// Each realloc'd block starts as a malloc of the same size range: 50,000
// allocations (10,000 of them realloc's new sides), 50,000 frees (10,000
// of them realloc's old sides).
constexpr int kAllocations = kBlocks + kBlocks / 4;

std::string Capture(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

struct Recorded {
  TraceContents trace;
  std::string path;
};

Recorded Record(const std::string& sample_bytes) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("sampled_frees_program")}, dir,
                            {{"HEAPSIGHT_SAMPLE_BYTES", sample_bytes}});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "sampled frees done\n");
  if (run.traces.size() != 1u) {
    ADD_FAILURE() << "traces: " << run.traces.size();
    return {};
  }
  Recorded r{ReadTrace(run.traces[0]), run.traces[0]};
  EXPECT_EQ(r.trace.error, "");
  EXPECT_TRUE(r.trace.complete);
  EXPECT_NE(r.trace.header.flags & format::kFileFlagSampled, 0u);
  return r;
}

int Sum(const std::map<format::Api, int>& m) {
  int n = 0;
  for (const auto& [api, count] : m) n += count;
  return n;
}

// A period of 1 byte: every interval is at most 37 bytes, so every block
// of 3,000 bytes or more is sampled, and the counts are exact: all 40,000
// allocations, all 50,000 frees, each through its own call.
TEST(SampledFrees, EveryBlockSampledEveryFreeRecorded) {
  Recorded r = Record("1");
  const TraceContents& t = r.trace;
  MagicCounts m = CountMagic(t, 3000, 4000);
  EXPECT_EQ(Sum(m.allocs), kAllocations);
  EXPECT_EQ(m.allocs[format::Api::kMalloc], kBlocks / 2);
  EXPECT_EQ(m.allocs[format::Api::kCalloc], kBlocks / 4);
  EXPECT_EQ(m.allocs[format::Api::kNewArray], kBlocks / 4);
  EXPECT_EQ(m.allocs[format::Api::kRealloc], kBlocks / 4);
  EXPECT_EQ(m.reallocs, kBlocks / 4);
  EXPECT_EQ(Sum(m.frees), kAllocations);
  EXPECT_EQ(m.frees[format::Api::kDeleteArray], kBlocks / 4);
  EXPECT_TRUE(m.live.empty()) << m.live.size() << " blocks never freed";
  EXPECT_EQ(m.unmatched_magic_frees, 0);
  EXPECT_EQ(UnpairedFrees(t), 0u);
  EXPECT_EQ(CountTag(t, format::RecordTag::kFreeError), 0);
}

// Go's rate, 512 KiB, and a finer 64 KiB: a share of the blocks is
// sampled, and exactly those are freed in the trace. Every recorded free
// pairs with a recorded allocation (no unsampled free recorded), no
// sampled block is left live (no sampled free missed), nothing is called a
// bad free, and the leak report finds nothing left.
void ExpectExactPairs(const std::string& period, double mean_share) {
  SCOPED_TRACE("HEAPSIGHT_SAMPLE_BYTES=" + period);
  Recorded r = Record(period);
  const TraceContents& t = r.trace;
  MagicCounts m = CountMagic(t, 3000, 4000);
  int sampled = Sum(m.allocs);
  // About 3,500 / period of the allocations, within six standard
  // deviations.
  double mean = kAllocations * mean_share, sd = std::sqrt(mean * (1 - mean_share));
  EXPECT_GE(sampled, mean - 6 * sd);
  EXPECT_LE(sampled, mean + 6 * sd);
  EXPECT_GT(sampled, 0);
  EXPECT_EQ(Sum(m.frees), sampled);
  EXPECT_TRUE(m.live.empty()) << m.live.size() << " sampled blocks never freed";
  EXPECT_EQ(m.unmatched_magic_frees, 0);
  EXPECT_EQ(UnpairedFrees(t), 0u);
  EXPECT_EQ(CountTag(t, format::RecordTag::kFreeError), 0);

  std::string leaks = Capture("'" + BuildPath("cli/heapsight") + "' leaks '" + r.path + "' 2>&1");
  EXPECT_NE(leaks.find("heapsight: no leaks in sampled_frees_program"), std::string::npos)
      << leaks;
  EXPECT_NE(leaks.find("SUMMARY: heapsight: 0 byte(s) leaked in 0 allocation(s)."),
            std::string::npos)
      << leaks;
}

TEST(SampledFrees, SampledBlocksPairExactly) {
  ExpectExactPairs("524288", 1.0 - std::exp(-3500.0 / 524288));
  ExpectExactPairs("65536", 1.0 - std::exp(-3500.0 / 65536));
}

}  // namespace
}  // namespace heapsight::testing
