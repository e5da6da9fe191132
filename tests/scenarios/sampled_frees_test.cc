// tests/scenarios/sampled_frees_test.cc: the sampled free path (issue 15
// target 4). In sampled mode a free asks the live table's counting filter
// first and passes an unsampled block straight to the allocator; these
// tests check on a real program (programs/sampled_frees_program.cc: two
// threads, 40,000 blocks of 3,000-3,999 bytes through malloc, calloc,
// new[] and realloc, a quarter freed by the other thread, all freed by
// the end) that this never loses a sampled block's free and never
// records an unsampled one; and on programs/sampled_apis_program.cc that
// every allocation API's fast path (preload/recorder.h) records what the
// generic path records, failures included.
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

// --- Every API through the hooks' fast paths (preload/recorder.h) ---------

// programs/sampled_apis_program.cc: kApiRounds blocks of 3,000-3,999 bytes
// through each of 16 allocation calls, each freed at once by the matching
// call, then 15 calls that must fail.
constexpr int kApiRounds = 500;

struct ApiRun {
  TraceContents trace;
  MagicCounts magic;
};

ApiRun RecordApis(const std::map<std::string, std::string>& env) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("sampled_apis_program")}, dir, env);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "sampled apis done\n");
  EXPECT_EQ(run.err, "");
  if (run.traces.size() != 1u) {
    ADD_FAILURE() << "traces: " << run.traces.size();
    return {};
  }
  ApiRun r;
  r.trace = ReadTrace(run.traces[0]);
  EXPECT_EQ(r.trace.error, "");
  EXPECT_TRUE(r.trace.complete);
  r.magic = CountMagic(r.trace, 3000, 4000);
  return r;
}

// Every failure is recorded, whichever path the call took (a failing
// call of a thread with bytes left before its sampling point takes the
// fast path, which takes its count back and records the failure): one per
// call, two for realloc (of NULL and of a live block).
void ExpectFailures(const MagicCounts& m) {
  const std::map<format::Api, int> want = {
      {format::Api::kMalloc, 1},        {format::Api::kCalloc, 1},
      {format::Api::kRealloc, 2},       {format::Api::kReallocArray, 1},
      {format::Api::kPosixMemalign, 1}, {format::Api::kAlignedAlloc, 1},
      {format::Api::kMemalign, 1},      {format::Api::kValloc, 1},
      {format::Api::kPvalloc, 1},       {format::Api::kNew, 1},
      {format::Api::kNewArray, 1},      {format::Api::kNewAligned, 1},
      {format::Api::kNewNothrow, 1},    {format::Api::kNewArrayAlignedNothrow, 1},
  };
  EXPECT_EQ(m.failed, want);
}

// Each block recorded through the API that made it, and freed through the
// one that freed it.
void ExpectEveryApi(const MagicCounts& m) {
  const int n = kApiRounds;
  const std::map<format::Api, int> allocs = {
      {format::Api::kMalloc, 2 * n},  // with free and with free_sized
      {format::Api::kCalloc, n},
      {format::Api::kRealloc, 2 * n},  // of NULL, and growing a 100-byte block
      {format::Api::kReallocArray, n},
      {format::Api::kPosixMemalign, n},
      {format::Api::kAlignedAlloc, n},
      {format::Api::kMemalign, n},
      {format::Api::kValloc, n},
      {format::Api::kPvalloc, n},
      {format::Api::kNewArray, n},
      {format::Api::kNew, n},
      {format::Api::kNewAligned, n},
      {format::Api::kNewNothrow, n},
      {format::Api::kNewArrayAlignedNothrow, n},
  };
  EXPECT_EQ(m.allocs, allocs);
  EXPECT_EQ(m.reallocs, n);
  const std::map<format::Api, int> frees = {
      {format::Api::kFree, 10 * n},       {format::Api::kFreeSized, n},
      {format::Api::kDeleteArray, n},     {format::Api::kDeleteSized, n},
      {format::Api::kDeleteAligned, n},   {format::Api::kDeleteNothrow, n},
      {format::Api::kDeleteArrayAligned, n},
  };
  EXPECT_EQ(m.frees, frees);
  EXPECT_TRUE(m.live.empty()) << m.live.size() << " blocks never freed";
}

// The exact trace, as the reference: every call recorded.
TEST(SampledApis, ExactTraceRecordsEveryCall) {
  ApiRun r = RecordApis({});
  EXPECT_EQ(r.trace.header.flags & format::kFileFlagSampled, 0u);
  ExpectEveryApi(r.magic);
  ExpectFailures(r.magic);
  EXPECT_EQ(UnpairedFrees(r.trace), 0u);
  EXPECT_EQ(CountTag(r.trace, format::RecordTag::kFreeError), 0);
}

// Period 1: every block of 3,000 bytes or more is sampled, so every call
// leaves the fast path for the generic one, and the sampled trace holds
// exactly what the exact one holds.
TEST(SampledApis, PeriodOneRecordsEveryCall) {
  ApiRun r = RecordApis({{"HEAPSIGHT_SAMPLE_BYTES", "1"}});
  EXPECT_NE(r.trace.header.flags & format::kFileFlagSampled, 0u);
  ExpectEveryApi(r.magic);
  ExpectFailures(r.magic);
  EXPECT_EQ(UnpairedFrees(r.trace), 0u);
  EXPECT_EQ(CountTag(r.trace, format::RecordTag::kFreeError), 0);
}

// A period of 1 TiB (the largest): the program's 1.7 MB never reach a
// sampling point after the thread's first allocation, so every call takes
// the fast path: no block is recorded, none of their frees either (the
// filter passes them to the allocator, and a recorded free would have no
// allocation to pair with), and still every failure is.
TEST(SampledApis, UnsampledCallsLeaveNoRecordButFailures) {
  ApiRun r = RecordApis({{"HEAPSIGHT_SAMPLE_BYTES", "1099511627776"}});
  EXPECT_NE(r.trace.header.flags & format::kFileFlagSampled, 0u);
  EXPECT_TRUE(r.magic.allocs.empty());
  EXPECT_TRUE(r.magic.frees.empty());
  EXPECT_EQ(CountTag(r.trace, format::RecordTag::kAlloc), 0);
  EXPECT_EQ(CountTag(r.trace, format::RecordTag::kRealloc), 0);
  EXPECT_EQ(CountTag(r.trace, format::RecordTag::kFree), 0);
  EXPECT_EQ(CountTag(r.trace, format::RecordTag::kFreeError), 0);
  ExpectFailures(r.magic);
  EXPECT_EQ(CountTag(r.trace, format::RecordTag::kAllocFailed), 15);
}

// With a heap limit the fast paths stay off (the limit counts every
// call): sampled by the generic path, every call still recorded at
// period 1.
TEST(SampledApis, HeapLimitKeepsTheGenericPath) {
  ApiRun r = RecordApis({{"HEAPSIGHT_SAMPLE_BYTES", "1"}, {"HEAPSIGHT_HEAP_LIMIT", "1G"}});
  ExpectEveryApi(r.magic);
  ExpectFailures(r.magic);
  EXPECT_EQ(UnpairedFrees(r.trace), 0u);
}

}  // namespace
}  // namespace heapsight::testing
