// tests/analyzer/report/growth_report_test.cc: `heapsight growth` on a real
// program under the preload (tests/scenarios/programs/growth_program.cc):
// the one call site that grows all along comes first, with a steady fit,
// although the program frees everything before it exits.
#include "analyzer/report/growth_report.h"

#include <gtest/gtest.h>

#include "analyzer/output/stack_text.h"
#include "nlohmann/json.hpp"
#include "tests/support/run_traced.h"

namespace heapsight::analyzer {
namespace {

namespace ht = ::heapsight::testing;  // ht::RunTraced and friends

class GrowthReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ht::RunResult run = ht::RunTraced({ht::BuildPath("tests/scenarios/growth_program")}, ht::MakeTempDir(), {});
    ASSERT_EQ(run.exit_code, 0) << run.err;
    ASSERT_EQ(run.out, "growth done\n");
    ASSERT_EQ(run.traces.size(), 1u);
    trace_ = run.traces[0];
  }

  ProcessProfile Analyze(double window) {
    AnalyzeOptions options;
    options.track_growth = true;
    options.growth_window = window;
    absl::StatusOr<ProcessProfile> p = AnalyzeTrace(trace_, options);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? std::move(*p) : ProcessProfile{};
  }

  std::string trace_;
};

// The leaf function of a site's stack.
std::string Leaf(const ProcessProfile& p, size_t site) {
  return DescribeStack(p, p.sites[site].stack, 1);
}

TEST_F(GrowthReportTest, TheGrowingSiteComesFirst) {
  for (double window : {0.5, 1.0}) {
    ProcessProfile p = Analyze(window);
    ASSERT_FALSE(p.growth.empty());
    EXPECT_EQ(p.totals.leaked_bytes, 0u);  // a clean exit: no leak at the end
    std::vector<GrowingSite> ranked = RankGrowth(p, GrowthOptions{});
    ASSERT_FALSE(ranked.empty());
    const GrowingSite& top = ranked[0];
    EXPECT_NE(Leaf(p, top.site).find("LeakyCache"), std::string::npos)
        << "window " << window << ": " << Leaf(p, top.site);
    // A straight line in time; a loaded machine preempts the program for
    // tens of ms, which makes it a staircase (r^2 0.87 seen at load 10).
    EXPECT_GT(top.growth.fit, 0.75);
    EXPECT_EQ(top.growth.live_at_end, 0u);  // freed at exit
    EXPECT_GT(top.growth.live_max, top.growth.live_at_begin);
    // 512 bytes a request, a request every ~50-100 us: 2.5-10 MB/s on a
    // quiet machine (a loaded one runs fewer requests). The slope agrees
    // with what the site gained in the window.
    EXPECT_GT(top.growth.bytes_per_second, 0.1e6);
    EXPECT_LT(top.growth.bytes_per_second, 20e6);
    double window_s =
        static_cast<double>(p.growth_window_end_us - p.growth_window_begin_us) / 1e6;
    double gained = static_cast<double>(top.growth.live_max - top.growth.live_at_begin);
    EXPECT_NEAR(top.growth.bytes_per_second * window_s, gained, 0.25 * gained);
    // Nothing else keeps growing: Churn holds at most one block, Pool is a
    // sawtooth, StartupTable stays put. Their fits, if they show up at all
    // (with every fit allowed), are poor. (Not their rates: with the whole
    // trace as the window, StartupTable's step at start-up has a slope that
    // grows with how late it came, and a loaded machine makes it late.)
    GrowthOptions all;
    all.min_fit = 0;
    all.min_bytes = 0;
    all.top = 100;
    for (const GrowingSite& g : RankGrowth(p, all)) {
      if (g.site == top.site) continue;
      std::string leaf = Leaf(p, g.site);
      EXPECT_LT(g.growth.fit, 0.25) << leaf;
    }
    EXPECT_EQ(ranked.size(), 1u);
  }
}

TEST_F(GrowthReportTest, TextAndJson) {
  ProcessProfile p = Analyze(0.5);
  std::string text = FormatGrowthText({&p}, GrowthOptions{});
  EXPECT_NE(text.find("LeakyCache"), std::string::npos) << text;
  EXPECT_NE(text.find("window: "), std::string::npos) << text;
  nlohmann::json j = nlohmann::json::parse(FormatGrowthJson({&p}, GrowthOptions{}));
  ASSERT_EQ(j["processes"].size(), 1u);
  const nlohmann::json& sites = j["processes"][0]["sites"];
  ASSERT_GE(sites.size(), 1u);
  bool named = false;
  for (const auto& f : sites[0]["frames"]) named = named || f["function"] == "LeakyCache";
  EXPECT_TRUE(named) << sites[0].dump();
  EXPECT_GT(sites[0]["fit"].get<double>(), 0.75);  // see TheGrowingSiteComesFirst
  EXPECT_EQ(sites[0]["live_at_end"].get<uint64_t>(), 0u);
}

}  // namespace
}  // namespace heapsight::analyzer
