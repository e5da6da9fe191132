// tests/analyzer/output/folded_stacks_test.cc: collapse output and name escaping.
#include "analyzer/output/folded_stacks.h"

#include <gtest/gtest.h>

#include "tests/analyzer/output/test_profiles.h"

namespace heapsight::analyzer::output {
namespace {

TEST(FoldedStacksTest, AllocBytesRootFirstMergedSorted) {
  HeapProfile p = testing::SmallProfile();
  // libc location (unsymbolized) is the root: module+offset name.
  EXPECT_EQ(FormatFoldedStacks(CollapseProfile(p, SiteMetric::kAllocBytes)),
            "libc.so.6+0x29d90;main;fill_vector;Vec<int>::grow 256\n"
            "libc.so.6+0x29d90;main;make_tree 10000\n");
  EXPECT_EQ(FormatFoldedStacks(CollapseProfile(p, SiteMetric::kAllocCount)),
            "libc.so.6+0x29d90;main;fill_vector;Vec<int>::grow 4\n"
            "libc.so.6+0x29d90;main;make_tree 10\n");
  EXPECT_EQ(FormatFoldedStacks(CollapseProfile(p, SiteMetric::kLeakedBytes)),
            "libc.so.6+0x29d90;main;fill_vector;Vec<int>::grow 128\n");
  EXPECT_EQ(FormatFoldedStacks(CollapseProfile(p, SiteMetric::kPeakBytes)),
            "libc.so.6+0x29d90;main;fill_vector;Vec<int>::grow 256\n"
            "libc.so.6+0x29d90;main;make_tree 3000\n");
  EXPECT_EQ(FormatFoldedStacks(CollapseProfile(p, SiteMetric::kTemporaryCount)),
            "libc.so.6+0x29d90;main;fill_vector;Vec<int>::grow 2\n"
            "libc.so.6+0x29d90;main;make_tree 4\n");
  EXPECT_EQ(FormatFoldedStacks(CollapseProfile(p, SiteMetric::kTemporaryBytes)),
            "libc.so.6+0x29d90;main;fill_vector;Vec<int>::grow 64\n"
            "libc.so.6+0x29d90;main;make_tree 4000\n");
}

TEST(FoldedStacksTest, SemicolonsAndLineBreaksNeverBreakTheFormat) {
  EXPECT_EQ(SanitizeFrameName("f<&g;>"), "f<&g:>");
  EXPECT_EQ(SanitizeFrameName("a\nb\rc\td"), "a b c d");
  EXPECT_EQ(SanitizeFrameName(""), "[unknown]");
  EXPECT_EQ(SanitizeFrameName("std::vector<int, std::allocator<int> >::reserve"),
            "std::vector<int, std::allocator<int> >::reserve");

  HeapProfile p = testing::SmallProfile();
  p.locations[3].frames[0].function = "weird;name\nwith break";
  std::string out = FormatFoldedStacks(CollapseProfile(p, SiteMetric::kAllocBytes));
  EXPECT_EQ(out,
            "libc.so.6+0x29d90;main;fill_vector;Vec<int>::grow 256\n"
            "libc.so.6+0x29d90;main;weird:name with break 10000\n");
  // FormatFoldedStacks sanitizes names handed to it directly, too.
  EXPECT_EQ(FormatFoldedStacks({{{"a;b", "c\nd"}, 5}}), "a:b;c d 5\n");
}

TEST(FoldedStacksTest, EmptyAndInvalidInputs) {
  HeapProfile empty;
  EXPECT_TRUE(CollapseProfile(empty, SiteMetric::kAllocBytes).empty());
  EXPECT_EQ(FormatFoldedStacks({}), "");

  HeapProfile p = testing::SmallProfile();
  p.samples[1].locations = {77};
  p.samples[0].locations.clear();
  p.samples[2].locations.clear();
  EXPECT_EQ(FormatFoldedStacks(CollapseProfile(p, SiteMetric::kAllocBytes)),
            "[invalid] 10000\n"
            "[no stack] 256\n");
}

TEST(FoldedStacksTest, SampledTracesAreScaledLikePprof) {
  HeapProfile p = testing::SmallProfile();
  p.sample_period = 4096;
  p.samples.resize(1);
  p.samples[0].values = {1, 4096, 1, 4096, 1, 4096, 1, 4096};
  EXPECT_EQ(FormatFoldedStacks(CollapseProfile(p, SiteMetric::kAllocBytes)),
            "libc.so.6+0x29d90;main;fill_vector;Vec<int>::grow 6479\n");
  EXPECT_EQ(FormatFoldedStacks(CollapseProfile(p, SiteMetric::kAllocCount)),
            "libc.so.6+0x29d90;main;fill_vector;Vec<int>::grow 1\n");
  EXPECT_EQ(SiteMetricValue(p.samples[0].values, SiteMetric::kLeakedBytes, 4096), 6479);
  EXPECT_EQ(SiteMetricValue(p.samples[0].values, SiteMetric::kPeakBytes, 0), 4096);
}

TEST(FoldedStacksTest, MetricNames) {
  for (std::string_view name : {"alloc_bytes", "alloc_count", "not_freed_bytes", "peak_bytes",
                                "temporary_count", "temporary_bytes"}) {
    absl::StatusOr<SiteMetric> m = ParseSiteMetric(name);
    ASSERT_TRUE(m.ok()) << name;
    EXPECT_EQ(SiteMetricName(*m), name);
  }
  // The older names stay accepted (scripts), and mean the same metric.
  EXPECT_EQ(*ParseSiteMetric("bytes"), SiteMetric::kAllocBytes);
  EXPECT_EQ(*ParseSiteMetric("allocations"), SiteMetric::kAllocCount);
  EXPECT_EQ(*ParseSiteMetric("leaked_bytes"), SiteMetric::kLeakedBytes);
  EXPECT_EQ(*ParseSiteMetric("temporary"), SiteMetric::kTemporaryCount);
  EXPECT_EQ(SiteMetricUnit(SiteMetric::kAllocCount), "allocations");
  EXPECT_EQ(SiteMetricUnit(SiteMetric::kPeakBytes), "bytes");
  absl::StatusOr<SiteMetric> bad = ParseSiteMetric("bogus");
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(),
            "unknown metric \"bogus\" (expected "
            "alloc_bytes|alloc_count|peak_bytes|not_freed_bytes|temporary_count|temporary_bytes; "
            "older names: bytes=alloc_bytes, allocations=alloc_count, "
            "leaked_bytes=not_freed_bytes, temporary=temporary_count)");
  EXPECT_EQ(*ParseSiteMetric("temporary_count"), SiteMetric::kTemporaryCount);
  EXPECT_EQ(SiteMetricUnit(SiteMetric::kTemporaryCount), "allocations");
  EXPECT_EQ(SiteMetricUnit(SiteMetric::kTemporaryBytes), "bytes");
  EXPECT_TRUE(SiteMetricNeedsExactTrace(SiteMetric::kTemporaryCount));
  EXPECT_FALSE(SiteMetricNeedsExactTrace(SiteMetric::kPeakBytes));
}

}  // namespace
}  // namespace heapsight::analyzer::output
