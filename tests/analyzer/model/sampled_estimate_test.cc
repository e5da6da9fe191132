// tests/analyzer/model/sampled_estimate_test.cc: what a sampled trace's samples
// stand for (SiteStats::alloc_count_estimate). programs/sampling_program.cc's
// MixedSizes site allocates 50,000 blocks of 24 bytes and 50,000 of 12,000;
// sampled at one allocation per 20,000 bytes, nearly every sample is a big
// block. Weighting each sample by its own chance gets the 100,000 back;
// scaling the site's totals by their mean size (Go's and pprof's way) says
// about half.
#include <gtest/gtest.h>

#include <cmath>

#include "analyzer/output/stack_text.h"
#include "analyzer/model/trace_model.h"
#include "tests/support/run_traced.h"

namespace heapsight::analyzer {
namespace {

namespace ht = ::heapsight::testing;  // ht::RunTraced and friends

TEST(SampledEstimate, MixedSizesAreCountedPerAllocation) {
  constexpr double kPeriod = 20000;
  ht::RunResult run = ht::RunTraced({ht::BuildPath("tests/scenarios/sampling_program")}, ht::MakeTempDir(),
                            {{"HEAPSIGHT_SAMPLE_BYTES", "20000"}});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(run.traces[0]);
  ASSERT_TRUE(p.ok()) << p.status();
  const Site* mixed = nullptr;
  for (const Site& s : p->sites) {
    if (DescribeStack(*p, s.stack, 1).find("MixedSizes") != std::string::npos) mixed = &s;
  }
  ASSERT_NE(mixed, nullptr);
  const SiteStats& st = mixed->stats;
  // About 22,500 sampled big blocks and 60 small ones.
  EXPECT_GT(st.alloc_count, 20000u);
  EXPECT_LT(st.alloc_count, 25000u);
  EXPECT_NEAR(st.alloc_count_estimate, 100000, 25000);
  EXPECT_NEAR(st.alloc_bytes_estimate, 50000 * 12024.0, 0.1 * 50000 * 12024.0);
  double mean = static_cast<double>(st.alloc_bytes) / static_cast<double>(st.alloc_count);
  double scaled_by_mean = static_cast<double>(st.alloc_count) / -std::expm1(-mean / kPeriod);
  EXPECT_LT(scaled_by_mean, 60000);
}

TEST(SampledEstimate, WholeTracesHaveNone) {
  ht::RunResult run = ht::RunTraced({ht::BuildPath("tests/scenarios/sampling_program")}, ht::MakeTempDir(), {});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(run.traces.at(0));
  ASSERT_TRUE(p.ok()) << p.status();
  for (const Site& s : p->sites) {
    EXPECT_EQ(s.stats.alloc_count_estimate, 0);
    EXPECT_EQ(s.stats.alloc_bytes_estimate, 0);
  }
}

}  // namespace
}  // namespace heapsight::analyzer
