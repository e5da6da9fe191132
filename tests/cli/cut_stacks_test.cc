// tests/cli/cut_stacks_test.cc: a stack the recorder cut at its depth cap
// (HEAPSIGHT_MAX_DEPTH, 256 frames by default) says so in every output
// (issue 14, fault 5): pprof, collapse, flamegraph, growth, diff, report and
// leaks. deep_recursion_program allocates at the bottom of a 300-deep
// recursion, so its stacks keep GrowAtTheBottom and 255 Recurse frames and
// lose the rest (main included).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/cli/cli_test_util.h"
#include "tests/support/run_traced.h"

namespace heapsight::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kCut[] = "[... more frames not recorded]";
constexpr char kRecurse[] = "(anonymous namespace)::Recurse";

class CutStacksTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir());
    for (const char* blocks : {"400", "200"}) {
      RunResult run = RunTraced({BuildPath("tests/cli/deep_recursion_program"), blocks}, *dir_,
                                {{"HEAPSIGHT_OUTPUT", absl::StrCat(*dir_, "/deep", blocks, ".hst")}});
      ASSERT_EQ(run.exit_code, 0) << run.err;
    }
    big_ = new std::string(*dir_ + "/deep400.hst");
    small_ = new std::string(*dir_ + "/deep200.hst");
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete big_;
    delete small_;
  }
  static std::string* dir_;
  static std::string* big_;
  static std::string* small_;
};
std::string* CutStacksTest::dir_ = nullptr;
std::string* CutStacksTest::big_ = nullptr;
std::string* CutStacksTest::small_ = nullptr;

TEST_F(CutStacksTest, CollapseRootIsTheCut) {
  RunResult r = RunHeapsight({"collapse", "--metric", "leaked_bytes", *big_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // One site: the marker, 255 Recurse frames, the allocating function.
  std::string expected = kCut;
  for (int i = 0; i < 255; ++i) absl::StrAppend(&expected, ";", kRecurse);
  absl::StrAppend(&expected, ";(anonymous namespace)::GrowAtTheBottom 40000\n");
  EXPECT_EQ(r.out, expected);
}

TEST_F(CutStacksTest, ShallowStacksHaveNoMarker) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({BuildPath("tests/cli/temporaries_program")}, dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  RunResult r = RunHeapsight({"collapse", "--metric", "alloc_count", run.traces.at(0)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("not recorded")));
  EXPECT_THAT(r.out, HasSubstr("\nmain;"));
}

TEST_F(CutStacksTest, FlameGraphShowsTheCut) {
  std::string svg = *dir_ + "/deep.svg.out";
  RunResult r = RunHeapsight({"flamegraph", "-o", svg, *big_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(ReadFile(svg), HasSubstr(kCut));
}

TEST_F(CutStacksTest, PprofShowsTheCutAsTheRoot) {
  std::string go = FindGo();
  if (go.empty()) GTEST_SKIP() << "go is not installed";
  std::string profile = *dir_ + "/deep.pb.gz.out";
  RunResult r = RunHeapsight({"pprof", "-o", profile, *big_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string scratch = MakeTempDir();
  RunResult top = GoPprof(go, scratch, {"-top", "-nodefraction=0", "-unit=B",
                                        "-sample_index=alloc_space", profile});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_THAT(top.out, HasSubstr(absl::StrCat("0     0%   100%     40000B   100%  ", kCut, "\n")));
  RunResult traces = GoPprof(go, scratch, {"-traces", profile});
  ASSERT_EQ(traces.exit_code, 0) << traces.err;
  // Leaf first: the marker is the last frame of the stack.
  EXPECT_THAT(traces.out, HasSubstr(absl::StrCat(kRecurse, "\n             ", kCut, "\n")));
}

TEST_F(CutStacksTest, GrowthDiffReportAndLeaksShowTheCut) {
  RunResult growth = RunHeapsight({"growth", *big_});
  ASSERT_EQ(growth.exit_code, 0) << growth.err;
  EXPECT_THAT(growth.out, HasSubstr("(250 more) <- ... more frames not recorded\n")) << growth.out;

  RunResult diff = RunHeapsight({"diff", *small_, *big_});
  ASSERT_EQ(diff.exit_code, 0) << diff.err;
  EXPECT_THAT(diff.out, HasSubstr("(250 more) <- ... more frames not recorded\n")) << diff.out;
  RunResult json = RunHeapsight({"diff", "--format", "json", *small_, *big_});
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, HasSubstr("\"frames_not_recorded\": \"unknown\""));

  RunResult report = RunHeapsight({"report", *big_});
  EXPECT_THAT(report.out, HasSubstr("<- ... more frames not recorded\n"));
  RunResult leaks = RunHeapsight({"leaks", *big_});
  EXPECT_THAT(leaks.out, HasSubstr("more frames not recorded"));
}

}  // namespace
}  // namespace heapsight::testing
