// tests/cli/site_temporaries_test.cc: temporary allocations per call site
// (issue 13) in `report`, `collapse`/`flamegraph --metric temporary` and
// the pprof profile's temporary_* sample types, on temporaries_program
// (its header lists the exact count of every site) run under the preload.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "tests/cli/cli_test_util.h"
#include "tests/support/run_traced.h"

namespace heapsight::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

class SiteTemporariesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir());
    RunResult run = RunTraced({BuildPath("tests/cli/temporaries_program")}, *dir_);
    ASSERT_EQ(run.exit_code, 0) << run.err;
    ASSERT_EQ(run.traces.size(), 1u);
    trace_ = new std::string(run.traces[0]);
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete trace_;
  }
  static std::string* dir_;
  static std::string* trace_;
};
std::string* SiteTemporariesTest::dir_ = nullptr;
std::string* SiteTemporariesTest::trace_ = nullptr;

constexpr char kNs[] = "(anonymous namespace)::";

TEST_F(SiteTemporariesTest, CollapseCountsEverySiteExactly) {
  RunResult r = RunHeapsight({"collapse", "--metric", "temporary", *trace_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // Sites with no temporaries (make_outer, make_kept, make_free_between,
  // start_realloc, make_long_lived) have no line.
  EXPECT_EQ(r.out, absl::StrCat("main;", kNs, "nested_pairs;", kNs, "make_inner 50\n",
                                "main;", kNs, "new_delete;", kNs, "new_array 30\n",
                                "main;", kNs, "realloc_then_free;", kNs, "grow_realloc 20\n",
                                "main;", kNs, "temp_loop;", kNs, "temp_alloc 100\n"));
  RunResult bytes = RunHeapsight({"collapse", "--metric", "temporary_bytes", *trace_});
  ASSERT_EQ(bytes.exit_code, 0) << bytes.err;
  EXPECT_EQ(bytes.out, absl::StrCat("main;", kNs, "nested_pairs;", kNs, "make_inner 800\n",
                                    "main;", kNs, "new_delete;", kNs, "new_array 480\n",
                                    "main;", kNs, "realloc_then_free;", kNs, "grow_realloc 2000\n",
                                    "main;", kNs, "temp_loop;", kNs, "temp_alloc 3200\n"));
}

TEST_F(SiteTemporariesTest, ReportListsMostTemporaryAllocations) {
  RunResult r = RunHeapsight({"report", "--top", "10", "--frames", "1", *trace_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("temporary allocations: 200 of 550 (36.4%)\n"));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(
                         "most temporary allocations:\n"
                         "  100 temporary of 100 allocations (100.0%), 3,200 bytes  malloc\n"
                         "      ", kNs, "temp_alloc() (temporaries_program.cc:")));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(
                         "  50 temporary of 50 allocations (100.0%), 800 bytes  malloc\n"
                         "      ", kNs, "make_inner() (temporaries_program.cc:")));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(
                         "  30 temporary of 30 allocations (100.0%), 480 bytes  operator "
                         "new[](unsigned long)\n      ", kNs, "new_array() (")));
  EXPECT_THAT(r.out, HasSubstr(absl::StrCat(
                         "  20 temporary of 20 allocations (100.0%), 2,000 bytes  realloc\n"
                         "      ", kNs, "grow_realloc(void*) (")));
  // Four sites, then the next list.
  size_t list = r.out.find("most temporary allocations:\n");
  ASSERT_NE(list, std::string::npos);
  size_t next = r.out.find("top call sites by bytes not freed at exit:", list);
  if (next == std::string::npos) next = r.out.find("allocation sizes", list);
  std::string section = r.out.substr(list, next - list);
  EXPECT_EQ(std::count(section.begin(), section.end(), '\n'), 1 + 4 * 2) << section;
}

TEST_F(SiteTemporariesTest, ReportJsonListsMostTemporaryAllocations) {
  RunResult r = RunHeapsight({"report", "--format", "json", "--top", "10", *trace_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json doc = nlohmann::json::parse(r.out, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(doc.is_discarded()) << r.out;
  EXPECT_EQ(doc["schema"], "heapsight-report/2");
  ASSERT_EQ(doc["processes"].size(), 1u);
  const nlohmann::json& p = doc["processes"][0];
  EXPECT_EQ(p["totals"]["temporary"], 200);
  EXPECT_EQ(p["totals"]["allocations"], 550);
  const nlohmann::json& most = p["top_sites"]["most_temporary"];
  ASSERT_EQ(most.size(), 4u) << most.dump(1);
  const std::vector<std::pair<std::string, int>> expected = {
      {"temp_alloc()", 100}, {"make_inner()", 50}, {"new_array()", 30}, {"grow_realloc(void*)", 20}};
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(most[i]["temporary_count"], expected[i].second) << i;
    EXPECT_EQ(most[i]["alloc_count"], expected[i].second) << i;
    // The shared frame object (docs/heapsight-json.schema.json).
    const nlohmann::json& leaf = most[i]["frames"][0];
    EXPECT_EQ(leaf["function"], absl::StrCat(kNs, expected[i].first)) << leaf.dump();
    EXPECT_THAT(leaf["file"].get<std::string>(), HasSubstr("temporaries_program.cc")) << leaf.dump();
  }
  EXPECT_EQ(most[0]["temporary_bytes"], 3200);
  EXPECT_EQ(most[3]["api"], "realloc");
}

TEST_F(SiteTemporariesTest, FlameGraphOfTemporaries) {
  std::string svg = *dir_ + "/temporary.svg";
  RunResult r = RunHeapsight({"flamegraph", "--metric", "temporary", "-o", svg, *trace_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string text = ReadFile(svg);
  // The older name is accepted; the title names the metric's one name.
  EXPECT_THAT(text, HasSubstr("heapsight: temporary_count of "));
  EXPECT_THAT(text, HasSubstr("total 200 allocations"));
  EXPECT_THAT(text, HasSubstr("temp_alloc"));
  EXPECT_THAT(text, Not(HasSubstr("make_long_lived")));
}

TEST_F(SiteTemporariesTest, PprofHasTemporarySampleTypes) {
  std::string go = FindGo();
  if (go.empty()) GTEST_SKIP() << "go is not installed";
  std::string profile = *dir_ + "/t.pb.gz";
  RunResult r = RunHeapsight({"pprof", "-o", profile, *trace_});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string scratch = MakeTempDir();
  RunResult top = GoPprof(go, scratch,
                          {"-top", "-nodefraction=0", "-sample_index=temporary_objects", profile});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_THAT(top.out, HasSubstr("Type: temporary_objects\n"));
  EXPECT_THAT(top.out, HasSubstr("Showing nodes accounting for 200, 100% of 200 total"));
  EXPECT_THAT(top.out, HasSubstr(absl::StrCat("       100 50.00% 50.00%        100 50.00%  ", kNs,
                                              "temp_alloc\n")));
  EXPECT_THAT(top.out, HasSubstr(absl::StrCat("        20 10.00%   100%         20 10.00%  ", kNs,
                                              "grow_realloc\n")));
  RunResult space = GoPprof(go, scratch, {"-top", "-nodefraction=0", "-unit=B",
                                          "-sample_index=temporary_space", profile});
  ASSERT_EQ(space.exit_code, 0) << space.err;
  EXPECT_THAT(space.out, HasSubstr("of 6480B total"));
  // Go's four types keep their indices, and inuse_space stays the default.
  RunResult plain = GoPprof(go, scratch, {"-top", profile});
  EXPECT_THAT(plain.out, HasSubstr("Type: inuse_space\n"));
  RunResult raw = GoPprof(go, scratch, {"-raw", profile});
  EXPECT_THAT(raw.out, HasSubstr("alloc_objects/count alloc_space/bytes inuse_objects/count "
                                 "inuse_space/bytes[dflt] temporary_objects/count "
                                 "temporary_space/bytes\n"));
  RunResult allocs =
      GoPprof(go, scratch, {"-top", "-nodefraction=0", "-sample_index=1", "-unit=B", profile});
  EXPECT_THAT(allocs.out, HasSubstr("Type: alloc_space\n"));
}

TEST(SiteTemporariesSampledTest, SampledTracesHaveNoTemporaries) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({BuildPath("tests/cli/temporaries_program")}, dir,
                            {{"HEAPSIGHT_SAMPLE_BYTES", "64"}});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  RunResult collapse = RunHeapsight({"collapse", "--metric", "temporary", run.traces[0]});
  EXPECT_EQ(collapse.exit_code, 1);
  EXPECT_THAT(collapse.err, HasSubstr("--metric temporary_count needs an exact trace"));
  RunResult report = RunHeapsight({"report", run.traces[0]});
  EXPECT_EQ(report.exit_code, 0) << report.err;
  EXPECT_THAT(report.out, Not(HasSubstr("most temporary allocations:")));
  RunResult json = RunHeapsight({"report", "--format", "json", run.traces[0]});
  EXPECT_EQ(json.exit_code, 0) << json.err;
  EXPECT_THAT(json.out, Not(HasSubstr("most_temporary")));
  EXPECT_THAT(json.out, Not(HasSubstr("temporary_count")));
}

}  // namespace
}  // namespace heapsight::testing
