// tests/analyzer/report/leak_summary_test.cc: the numbers and text `heapsight
// record` prints after the program exits.
#include "analyzer/report/leak_summary.h"

#include <algorithm>
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
  EXPECT_EQ(s->peak_bytes, 6328u);  // the program's heap: the runtime pool is not counted
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
  // The hint names the real traces; the paths vary per run.
  std::string golden_text = text.str();
  for (const std::string& path : {a, b}) {
    for (size_t pos; (pos = golden_text.find(path)) != std::string::npos;) {
      golden_text.replace(pos, path.size(), path == a ? "TRACE_A" : "TRACE_B");
    }
  }
  testing::ExpectGolden("leak_summary.txt", golden_text);

  EXPECT_FALSE(SummarizeTraces({"/nonexistent/x.hst"}).ok());
  EXPECT_FALSE(SummarizeTraces({a}, "/nonexistent/supp").ok());
}

// A family of three: the sample's image that exec'd (its blocks are
// discarded), a complete sample and one cut short.
TEST(LeakSummaryTest, FamilyTotalsNeverExceedTheSumOfTheirProcesses) {
  testing::TestTraceWriter w(/*pid=*/4343, /*ppid=*/1);
  testing::BuildSampleTrace(w, /*with_end=*/false);
  w.ExecEnd(1, 400, "/bin/ls");
  std::string exec = ::testing::TempDir() + "/fam_exec." + std::to_string(getpid()) + ".hst";
  w.WriteFile(exec);
  std::vector<std::string> family = {exec, testing::WriteSampleTrace("fam_a"),
                                     testing::WriteSampleTrace("fam_b", /*with_end=*/false)};
  absl::StatusOr<LeakSummary> all = SummarizeTraces(family);
  ASSERT_TRUE(all.ok()) << all.status();
  LeakSummary sum;
  uint64_t peak_sum = 0, peak_max = 0;
  for (const std::string& path : family) {
    absl::StatusOr<LeakSummary> one = SummarizeTraces({path});
    ASSERT_TRUE(one.ok()) << one.status();
    sum.allocs += one->allocs;
    sum.frees += one->frees;
    sum.bytes_allocated += one->bytes_allocated;
    sum.totals += one->totals;
    sum.execs += one->execs;
    peak_sum += one->peak_bytes;
    peak_max = std::max(peak_max, one->peak_bytes);
  }
  EXPECT_EQ(all->processes, 3u);
  EXPECT_EQ(all->allocs, sum.allocs);
  EXPECT_EQ(all->frees, sum.frees);
  EXPECT_EQ(all->bytes_allocated, sum.bytes_allocated);
  EXPECT_EQ(all->totals.leaked.bytes, sum.totals.leaked.bytes);
  EXPECT_EQ(all->totals.leaked.blocks, sum.totals.leaked.blocks);
  EXPECT_EQ(all->totals.runtime.bytes, sum.totals.runtime.bytes);
  EXPECT_EQ(all->totals.discarded_by_exec.bytes, sum.totals.discarded_by_exec.bytes);
  EXPECT_LE(all->peak_bytes, peak_sum);
  EXPECT_EQ(all->peak_bytes, peak_max);
  // The exec'd image's 6,200 program bytes are not leaked; the others' are.
  EXPECT_EQ(all->totals.leaked.bytes, 2 * 6200u);
  EXPECT_EQ(all->totals.discarded_by_exec.bytes, 6200u + 72704u);
  EXPECT_EQ(all->execs, 1u);
  // Only the two traces with leaks are worth `heapsight leaks`.
  EXPECT_EQ(all->traces_to_inspect, std::vector<std::string>(family.begin() + 1, family.end()));
  // The peak is the first process's with the largest one: the exec'd image.
  EXPECT_EQ(all->peak_pid, 4343u);
  EXPECT_EQ(all->peak_exe, "/nonexistent/sample_prog");
}

TEST(LeakSummaryTest, NamesThePeakProcessWithTheClocksPrecision) {
  testing::TestTraceWriter w(/*pid=*/4545, /*ppid=*/1);
  w.EditHeader([](format::FileHeader& h) { h.flags |= format::kFileFlagCoarseClock; });
  testing::BuildSampleTrace(w);
  std::string path = ::testing::TempDir() + "/coarse_sum." + std::to_string(getpid()) + ".hst";
  w.WriteFile(path);
  absl::StatusOr<LeakSummary> s = SummarizeTraces({path});
  ASSERT_TRUE(s.ok()) << s.status();
  std::string out_path = ::testing::TempDir() + "/coarse_sum_out.txt";
  std::FILE* out = std::fopen(out_path.c_str(), "w");
  PrintLeakSummary(out, *s);
  std::fclose(out);
  std::ifstream in(out_path);
  std::stringstream text;
  text << in.rdbuf();
  // The peak (6,328 bytes) is at 200 us: 0 ms on a 4 ms clock.
  EXPECT_NE(text.str().find("peak heap: 6,328 bytes in pid 4545 (sample_prog) at 0 ms;"),
            std::string::npos)
      << text.str();
  EXPECT_NE(text.str().find("run `heapsight leaks " + path + "` for the allocation stacks"),
            std::string::npos)
      << text.str();
}

}  // namespace
}  // namespace heapsight::analyzer
