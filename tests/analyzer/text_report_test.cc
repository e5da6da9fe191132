// tests/analyzer/text_report_test.cc: `heapsight report` text, golden.
#include "analyzer/text_report.h"

#include "gtest/gtest.h"
#include "tests/analyzer/golden.h"
#include "tests/analyzer/sample_trace.h"

namespace heapsight::analyzer {
namespace {

std::string Normalize(std::string text, const std::string& path, const std::string& as) {
  for (size_t pos; (pos = text.find(path)) != std::string::npos;) text.replace(pos, path.size(), as);
  return text;
}

TEST(TextReportTest, SingleProcessGolden) {
  std::string path = testing::WriteSampleTrace("report");
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->totals.allocs, 6u);
  EXPECT_EQ(p->totals.frees, 3u);
  EXPECT_EQ(p->totals.temporary, 1u);
  EXPECT_EQ(p->runtime_totals.allocs, 1u);
  testing::ExpectGolden("report_sample.txt", Normalize(FormatReport({&*p}), path, "TRACE"));
}

TEST(TextReportTest, FamilyAndCutShortGolden) {
  std::string a = testing::WriteSampleTrace("report_a");
  std::string b = testing::WriteSampleTrace("report_b", /*with_end=*/false);
  absl::StatusOr<ProcessProfile> pa = AnalyzeTrace(a);
  absl::StatusOr<ProcessProfile> pb = AnalyzeTrace(b);
  ASSERT_TRUE(pa.ok() && pb.ok());
  std::string text = FormatReport({&*pa, &*pb});
  text = Normalize(Normalize(text, a, "TRACE_A"), b, "TRACE_B");
  EXPECT_NE(text.find("TRACE CUT SHORT"), std::string::npos);
  EXPECT_NE(text.find("== total (2 processes)"), std::string::npos);
  testing::ExpectGolden("report_family.txt", text);
}

}  // namespace
}  // namespace heapsight::analyzer
