// tests/cli/json_outputs_test.cc: the report commands speak one language
// (issue 17): every JSON output (report, growth, diff, leaks) validates
// against the published schemas (docs/heapsight-json.schema.json,
// docs/leak-report.schema.json) with the one frame and call-site shape; the
// metric names and their older aliases; `leaks` lists definite, indirect
// and possible stacks by default and still-reachable ones only when asked,
// while its JSON always has every class; diff rows that would read the same
// show the library frame that tells them apart. On json_outputs_program
// run under the preload.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "tests/analyzer/json_schema_check.h"
#include "tests/cli/cli_test_util.h"
#include "tests/support/run_traced.h"

namespace heapsight::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

nlohmann::json LoadJson(const std::string& path) {
  std::ifstream in(path);
  EXPECT_TRUE(in) << path;
  return nlohmann::json::parse(in);
}

// The violations of `doc` against $defs/<def> of the shared schema.
std::vector<std::string> Violations(const nlohmann::json& doc, const std::string& def) {
  nlohmann::json schema = LoadJson(HEAPSIGHT_JSON_SCHEMA);
  nlohmann::json root = schema;
  root.erase("$defs");
  for (const auto& [k, v] : schema["$defs"][def].items()) root[k] = v;
  root["$defs"] = schema["$defs"];
  return JsonSchemaCheck(root).Validate(doc);
}

class JsonOutputsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    for (const char* n : {"1000", "3000"}) {
      std::string dir = MakeTempDir();
      RunResult run = RunTraced({BuildPath("tests/cli/json_outputs_program"), n}, dir);
      ASSERT_EQ(run.exit_code, 0) << run.err;
      ASSERT_EQ(run.traces.size(), 1u);
      traces_.push_back(run.traces[0]);
    }
  }
  static nlohmann::json Json(const std::vector<std::string>& args) {
    RunResult r = RunHeapsight(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  }
  static std::vector<std::string> traces_;
};
std::vector<std::string> JsonOutputsTest::traces_;

// A frame of the shared shape naming `function` (a prefix of the
// demangled name).
bool HasFrame(const nlohmann::json& frames, const std::string& function) {
  for (const nlohmann::json& f : frames) {
    if (absl::StartsWith(f["function"].get<std::string>(), function) &&
        !f["module"].get<std::string>().empty() && f["offset"].get<uint64_t>() != 0) {
      return true;
    }
  }
  return false;
}

TEST_F(JsonOutputsTest, ReportJsonMatchesTheSchema) {
  nlohmann::json doc = Json({"report", "--format=json", traces_[0]});
  EXPECT_EQ(doc["schema"], "heapsight-report/2");
  EXPECT_THAT(Violations(doc, "report"), ::testing::IsEmpty());
  const nlohmann::json& sites = doc["processes"][0]["top_sites"]["by_bytes_allocated"];
  ASSERT_FALSE(sites.empty());
  EXPECT_TRUE(HasFrame(sites[0]["frames"], "grow_one()")) << sites[0].dump(1);
  EXPECT_EQ(sites[0]["alloc_bytes"], 50000);
}

TEST_F(JsonOutputsTest, GrowthJsonMatchesTheSchema) {
  nlohmann::json doc = Json({"growth", "--format=json", traces_[1]});
  EXPECT_EQ(doc["schema"], "heapsight-growth/1");
  EXPECT_THAT(Violations(doc, "growth"), ::testing::IsEmpty());
  const nlohmann::json& sites = doc["processes"][0]["sites"];
  ASSERT_FALSE(sites.empty()) << doc.dump(1);
  // growth once dropped module and offset: the frames are the shared ones.
  EXPECT_TRUE(HasFrame(sites[0]["frames"], "grow_one()")) << sites[0].dump(1);
}

TEST_F(JsonOutputsTest, DiffJsonMatchesTheSchemaAndUsesTheMetricNames) {
  nlohmann::json doc = Json({"diff", "--format=json", traces_[0], traces_[1]});
  EXPECT_EQ(doc["schema"], "heapsight-diff/1");
  EXPECT_EQ(doc["metric"], "alloc_bytes");
  EXPECT_THAT(Violations(doc, "diff"), ::testing::IsEmpty());
  ASSERT_GE(doc["sites"].size(), 3u) << doc.dump(1);
  for (const nlohmann::json& site : doc["sites"]) {
    EXPECT_TRUE(HasFrame(site["frames"], "load(int)")) << site.dump(1);
    EXPECT_EQ(site["frames"].size(), site["functions"].size());
    // resize: 1000 -> 3000 ints, the same for reserve.
  }
  // The older metric names still work and mean the same.
  for (const char* alias : {"leaked_bytes", "allocations", "bytes"}) {
    nlohmann::json old = Json({"diff", "--format=json", "--metric", alias, traces_[0], traces_[1]});
    EXPECT_NE(old["metric"], alias);
  }
  EXPECT_EQ(Json({"diff", "--format=json", "--metric=leaked_bytes", traces_[0], traces_[1]})["metric"],
            "not_freed_bytes");
  EXPECT_EQ(Json({"diff", "--format=json", "--metric=allocations", traces_[0], traces_[1]})["metric"],
            "alloc_count");
  RunResult bad = RunHeapsight({"diff", "--metric=temporary_count", traces_[0], traces_[1]});
  EXPECT_EQ(bad.exit_code, 2) << bad.err;
}

TEST_F(JsonOutputsTest, LeaksJsonUsesTheSharedFrame) {
  nlohmann::json leak_schema = LoadJson(HEAPSIGHT_LEAK_SCHEMA);
  nlohmann::json shared = LoadJson(HEAPSIGHT_JSON_SCHEMA);
  EXPECT_EQ(leak_schema["$defs"]["frame"], shared["$defs"]["frame"]);
  nlohmann::json doc = Json({"leaks", "--format=json", traces_[0]});
  EXPECT_THAT(JsonSchemaCheck(leak_schema).Validate(doc), ::testing::IsEmpty());
  // Every class is in the JSON whatever the text lists.
  std::set<std::string> kinds;
  for (const nlohmann::json& g : doc["groups"]) kinds.insert(g["kind"]);
  EXPECT_EQ(kinds, (std::set<std::string>{"definite", "reachable"})) << doc.dump(1);
}

TEST_F(JsonOutputsTest, LeaksTextListsReachableStacksOnlyWhenAsked) {
  RunResult r = RunHeapsight({"leaks", traces_[0]});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("ERROR: heapsight: detected memory leaks"));
  EXPECT_THAT(r.out, HasSubstr("Direct leak of 100 byte(s) in 1 object(s) allocated from:"));
  EXPECT_THAT(r.out, Not(HasSubstr("Still reachable of")));
  // The summary counts all four classes.
  EXPECT_THAT(r.out, HasSubstr("still reachable: 200 bytes in 1 blocks"));
  for (const char* flag : {"--show-reachable", "--show-kinds=all"}) {
    RunResult all = RunHeapsight({"leaks", flag, traces_[0]});
    EXPECT_THAT(all.out, HasSubstr("Still reachable of 200 byte(s) in 1 object(s)")) << flag;
  }
  // Only reachable shown: no banner.
  RunResult reach = RunHeapsight({"leaks", "--show-kinds=reachable", traces_[0]});
  EXPECT_THAT(reach.out, Not(HasSubstr("ERROR: heapsight: detected memory leaks"))) << reach.out;
}

TEST_F(JsonOutputsTest, DiffRowsThatWouldReadTheSameShowTheFrameThatTellsThemApart) {
  RunResult r = RunHeapsight({"diff", traces_[0], traces_[1]});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::vector<std::string> stacks;
  for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
    if (absl::StartsWith(line, "      ")) stacks.emplace_back(line);
  }
  ASSERT_GE(stacks.size(), 3u) << r.out;
  std::set<std::string> distinct(stacks.begin(), stacks.end());
  EXPECT_EQ(distinct.size(), stacks.size()) << r.out;
  for (const char* tell : {"resize", "reserve", "push_back"}) {
    EXPECT_THAT(r.out, HasSubstr(tell)) << r.out;
  }
}

TEST_F(JsonOutputsTest, FramesAllShowsEveryFrame) {
  RunResult one = RunHeapsight({"report", "--frames=1", traces_[0]});
  RunResult all = RunHeapsight({"report", "--frames=all", traces_[0]});
  RunResult zero = RunHeapsight({"report", "--frames=0", traces_[0]});
  EXPECT_EQ(all.out, zero.out);
  EXPECT_THAT(one.out, HasSubstr(" more)"));
  EXPECT_THAT(all.out, Not(HasSubstr(" more)"))) << all.out;
  EXPECT_EQ(RunHeapsight({"report", "--frames=many", traces_[0]}).exit_code, 2);
}

}  // namespace
}  // namespace heapsight::testing
