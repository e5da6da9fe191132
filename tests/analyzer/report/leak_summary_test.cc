// tests/analyzer/report/leak_summary_test.cc: the numbers and text `heapsight
// record` prints after the program exits.
#include "analyzer/report/leak_summary.h"

#include <fstream>
#include <sstream>

#include "gtest/gtest.h"
#include "tests/analyzer/golden.h"
#include "tests/analyzer/sample_trace.h"

namespace heapsight::analyzer {
namespace {

TEST(LeakSummaryTest, SumsAFamilyAndAppliesSuppressions) {
  std::string a = testing::WriteSampleTrace("sum_a");
  std::string b = testing::WriteSampleTrace("sum_b", /*with_end=*/false);
  absl::StatusOr<LeakSummary> s = SummarizeTraces({a, b});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->processes, 2u);
  EXPECT_EQ(s->totals.leaked.bytes, 2 * 6200u);
  EXPECT_EQ(s->totals.leaked.blocks, 6u);
  EXPECT_EQ(s->totals.runtime.bytes, 2 * 72704u);
  EXPECT_EQ(s->allocs, 12u);
  EXPECT_EQ(s->frees, 6u);
  EXPECT_EQ(s->peak_bytes, 79032u);
  EXPECT_FALSE(s->complete);

  std::string supp = ::testing::TempDir() + "/sum_supp.txt";
  std::ofstream(supp) << "leak:libsample.so\n";
  absl::StatusOr<LeakSummary> t = SummarizeTraces({a}, supp);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->totals.leaked.bytes, 1200u);
  EXPECT_EQ(t->totals.suppressed.bytes, 5000u);
  EXPECT_TRUE(t->complete);

  std::string out_path = ::testing::TempDir() + "/sum_out.txt";
  std::FILE* out = std::fopen(out_path.c_str(), "w");
  PrintLeakSummary(out, *s);
  std::fclose(out);
  std::ifstream in(out_path);
  std::stringstream text;
  text << in.rdbuf();
  testing::ExpectGolden("leak_summary.txt", text.str());

  EXPECT_FALSE(SummarizeTraces({"/nonexistent/x.hst"}).ok());
  EXPECT_FALSE(SummarizeTraces({a}, "/nonexistent/supp").ok());
}

}  // namespace
}  // namespace heapsight::analyzer
