// tests/analyzer/report/trace_diff_test.cc: `heapsight diff` on two versions of a
// program run under the preload (tests/scenarios/programs/diff_program.cc):
// exact per-site and total changes, the ranking, JSON, and the CI gate's
// exit status.
#include "analyzer/report/trace_diff.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cstdio>

#include "nlohmann/json.hpp"
#include "tests/support/run_traced.h"

namespace heapsight::analyzer {
namespace {

namespace ht = ::heapsight::testing;  // ht::RunTraced and friends

std::string Record(const std::string& version) {
  ht::RunResult run =
      ht::RunTraced({ht::BuildPath("tests/scenarios/diff_program"), version}, ht::MakeTempDir(), {});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "diff done\n");
  return run.traces.empty() ? "" : run.traces[0];
}

class TraceDiffTest : public ::testing::Test {
 protected:
  void SetUp() override {
    old_ = Record("old");
    new_ = Record("new");
    ASSERT_FALSE(old_.empty());
    ASSERT_FALSE(new_.empty());
    auto a = AnalyzeTrace(old_);
    auto b = AnalyzeTrace(new_);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    base_ = std::move(*a);
    current_ = std::move(*b);
  }

  // The entry whose leaf-most program function is `name`.
  static const DiffEntry* Find(const TraceDiff& d, const std::string& name) {
    for (const DiffEntry& e : d.entries) {
      for (const std::string& f : e.functions) {
        if (f == name) return &e;
      }
    }
    return nullptr;
  }

  std::string old_, new_;
  ProcessProfile base_, current_;
};

TEST_F(TraceDiffTest, ExactChangesPerSiteAndInTotal) {
  TraceDiff d = DiffProfiles(base_, current_);
  const DiffEntry* parse = Find(d, "ParseRequest");
  ASSERT_NE(parse, nullptr);
  EXPECT_EQ(parse->base.allocs, 100);
  EXPECT_EQ(parse->current.allocs, 10);
  EXPECT_EQ(parse->base.bytes, 102400);
  EXPECT_EQ(parse->current.bytes, 10240);
  const DiffEntry* index = Find(d, "BuildIndex");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->base.bytes, 50 * 4096);
  EXPECT_EQ(index->current.bytes, 50 * 4096);
  const DiffEntry* feature = Find(d, "NewFeature");
  ASSERT_NE(feature, nullptr);
  EXPECT_EQ(feature->base.allocs, 0);
  EXPECT_EQ(feature->current.bytes, 1500);
  const DiffEntry* cache = Find(d, "LeakyCache");
  ASSERT_NE(cache, nullptr);
  EXPECT_EQ(cache->current.leaked_bytes, 448);
  EXPECT_EQ(cache->current.leaked_blocks, 7);
  // Everything else the two runs allocate is the same.
  EXPECT_EQ(d.current_total.allocs - d.base_total.allocs, -90 + 5 + 7);
  EXPECT_EQ(d.current_total.bytes - d.base_total.bytes, -92160 + 1500 + 448);
  EXPECT_EQ(d.current_total.leaked_bytes - d.base_total.leaked_bytes, 448);
  EXPECT_EQ(d.current_total.leaked_blocks - d.base_total.leaked_blocks, 7);
}

TEST_F(TraceDiffTest, RankingByEachMetric) {
  TraceDiff d = DiffProfiles(base_, current_);
  DiffOptions by_bytes;
  std::vector<const DiffEntry*> r = RankChanges(d, by_bytes);
  ASSERT_EQ(r.size(), 3u);  // BuildIndex did not change
  EXPECT_EQ(r[0], Find(d, "ParseRequest"));
  EXPECT_EQ(r[1], Find(d, "NewFeature"));
  EXPECT_EQ(r[2], Find(d, "LeakyCache"));
  DiffOptions by_leaks;
  by_leaks.metric = DiffMetric::kLeakedBytes;
  r = RankChanges(d, by_leaks);
  ASSERT_EQ(r.size(), 1u);
  EXPECT_EQ(r[0], Find(d, "LeakyCache"));
  std::string text = FormatDiffText(d, by_bytes, old_, new_);
  EXPECT_NE(text.find("ParseRequest"), std::string::npos) << text;
  EXPECT_NE(text.find("102,400 -> 10,240 (-92,160, -90.0%)"), std::string::npos) << text;
  nlohmann::json j = nlohmann::json::parse(FormatDiffJson(d, by_leaks, old_, new_));
  ASSERT_EQ(j["sites"].size(), 1u);
  EXPECT_EQ(j["sites"][0]["new"]["not_freed_count"], 7);
  EXPECT_EQ(j["metric"], "not_freed_bytes");
}

int RunHeapsight(const std::string& args) {
  std::string cmd = ht::BuildPath("cli/heapsight") + " " + args + " >/dev/null 2>&1";
  int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST_F(TraceDiffTest, TheCiGateFailsOnGrowthOnly) {
  // new allocates fewer bytes than old but leaks more.
  EXPECT_EQ(RunHeapsight("diff " + old_ + " " + new_ + " --fail-above 0"), 0);
  EXPECT_EQ(RunHeapsight("diff " + new_ + " " + old_ + " --fail-above 0"), 1);
  EXPECT_EQ(RunHeapsight("diff " + old_ + " " + new_ +
                         " --metric leaked_bytes --fail-above 5 --fail-exitcode 7"),
            7);
  // A usage error (CLI11's validation included) exits 2, as for every subcommand.
  EXPECT_EQ(RunHeapsight("diff " + old_ + " " + new_ + " --metric nonsense"), 2);
  // A trace that cannot be read is bad input (docs/cli.md "Exit status").
  EXPECT_EQ(RunHeapsight("diff " + old_ + " /nonexistent.hst"), 3);
}

}  // namespace
}  // namespace heapsight::analyzer
