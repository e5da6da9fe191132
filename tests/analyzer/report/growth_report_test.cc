// tests/analyzer/report/growth_report_test.cc: `heapsight growth` on a real
// program under the preload (tests/scenarios/programs/growth_program.cc):
// the one call site that grows all along comes first, with a steady fit,
// although the program frees everything before it exits. What depends on
// time is checked against the trace's own times (every site's line computed
// again from the records), so a loaded machine that preempts the program
// changes the trace, not the verdict; what does not depend on time is
// checked exactly. The program keeps an absolute schedule (a request due
// every 500 us, late ones at once), so its cache still climbs steadily.
#include "analyzer/report/growth_report.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "analyzer/output/stack_text.h"
#include "format/chunk_decoder.h"
#include "format/trace_reader.h"
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

size_t SiteNamed(const ProcessProfile& p, const std::string& function) {
  for (size_t i = 0; i < p.sites.size(); ++i) {
    if (p.sites[i].api == format::Api::kMalloc &&
        Leaf(p, i).rfind(function + " (", 0) == 0) {
      return i;
    }
  }
  return SIZE_MAX;
}

// One site's live-bytes changes, (time, +bytes or -bytes), in trace order,
// read from the trace's own records (the program has one thread).
std::vector<std::pair<uint64_t, int64_t>> SiteChanges(const std::string& trace,
                                                      uint64_t stack) {
  std::vector<std::pair<uint64_t, int64_t>> changes;
  std::map<uint64_t, uint64_t> sizes;  // the site's live ids
  auto reader = format::TraceReader::Open(trace);
  EXPECT_TRUE(reader.ok()) << reader.status();
  if (!reader.ok()) return changes;
  std::vector<uint8_t> chunk;
  while ((*reader)->NextChunk(&chunk)) {
    format::ChunkDecoder decoder(chunk.data(), chunk.size());
    format::Record r;
    while (decoder.Next(&r)) {
      if (r.tag == format::RecordTag::kAlloc && r.stack == stack &&
          r.api == format::Api::kMalloc) {
        sizes[r.id] = r.size;
        changes.emplace_back(r.time_us, static_cast<int64_t>(r.size));
      } else if (r.tag == format::RecordTag::kFree) {
        if (auto it = sizes.find(r.id); it != sizes.end()) {
          changes.emplace_back(r.time_us, -static_cast<int64_t>(it->second));
          sizes.erase(it);
        }
      }
    }
  }
  std::stable_sort(changes.begin(), changes.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  return changes;
}

// growth_tracker.h's line through a site's live bytes, computed again from
// the trace's records: the window [begin, end], the fit up to the site's
// last highest point unless it is still there at the end or the point came
// in the window's first half. Independent of the machine's load: whatever
// times the trace recorded, the analysis must fit these.
SiteGrowth ReferenceGrowth(const std::vector<std::pair<uint64_t, int64_t>>& changes,
                           uint64_t begin, uint64_t end) {
  int64_t live = 0;
  size_t i = 0;
  for (; i < changes.size() && changes[i].first <= begin; ++i) live += changes[i].second;
  SiteGrowth g;
  g.live_at_begin = static_cast<uint64_t>(live);
  g.live_max = g.live_at_begin;
  uint64_t max_us = begin;
  struct Sums {
    double a = 0, b = 0, c = 0;
  } sums, at_max;
  uint64_t from = begin;
  auto integrate = [&](uint64_t to) {
    double t0 = static_cast<double>(from - begin), t1 = static_cast<double>(to - begin);
    double l = static_cast<double>(live);
    sums.a += l * (t1 - t0);
    sums.b += l * (t1 * t1 - t0 * t0) / 2;
    sums.c += l * l * (t1 - t0);
    from = to;
  };
  for (; i < changes.size() && changes[i].first <= end; ++i) {
    integrate(changes[i].first);
    live += changes[i].second;
    if (static_cast<uint64_t>(live) >= g.live_max) {
      g.live_max = static_cast<uint64_t>(live);
      max_us = changes[i].first;
      at_max = sums;
    }
  }
  integrate(end);
  bool whole = static_cast<uint64_t>(live) >= g.live_max || max_us - begin < (end - begin) / 2;
  const Sums& use = whole ? sums : at_max;
  g.fit_end_us = whole ? end : max_us;
  double d = static_cast<double>(g.fit_end_us - begin);
  double mean = use.a / d, cov = use.b / d - (d / 2) * mean, var_l = use.c / d - mean * mean;
  g.bytes_per_second = cov / (d * d / 12) * 1e6;
  g.fit = var_l > 1e-9 * (mean * mean + 1) ? std::min(1.0, cov * cov / (d * d / 12 * var_l)) : 0;
  return g;
}

// The analysis's growth of `site` is the reference's, from the same records.
void ExpectReference(const ProcessProfile& p, const std::string& trace, size_t site,
                     const std::string& what) {
  ASSERT_LT(site, p.growth.size()) << what;
  SiteGrowth want = ReferenceGrowth(SiteChanges(trace, p.sites[site].stack),
                                    p.growth_window_begin_us, p.growth_window_end_us);
  const SiteGrowth& got = p.growth[site];
  EXPECT_EQ(got.live_at_begin, want.live_at_begin) << what;
  EXPECT_EQ(got.live_max, want.live_max) << what;
  EXPECT_EQ(got.fit_end_us, want.fit_end_us) << what;
  EXPECT_NEAR(got.bytes_per_second, want.bytes_per_second,
              1e-6 * std::abs(want.bytes_per_second) + 1e-6)
      << what;
  EXPECT_NEAR(got.fit, want.fit, 1e-6) << what;
}

TEST_F(GrowthReportTest, TheGrowingSiteComesFirst) {
  for (double window : {0.5, 1.0}) {
    ProcessProfile p = Analyze(window);
    ASSERT_FALSE(p.growth.empty());
    EXPECT_EQ(p.totals.leaked_bytes, 0u);  // a clean exit: no leak at the end
    const size_t cache = SiteNamed(p, "LeakyCache");
    ASSERT_NE(cache, SIZE_MAX);
    // Exact, whatever the timing: 600 requests of 512 bytes, all live at
    // the peak, none at the end.
    EXPECT_EQ(p.sites[cache].stats.alloc_count, 600u);
    EXPECT_EQ(p.sites[cache].stats.alloc_bytes, 600u * 512);
    EXPECT_EQ(p.sites[cache].stats.peak_bytes, 600u * 512);
    EXPECT_EQ(p.growth[cache].live_at_end, 0u);
    EXPECT_GT(p.growth[cache].live_max, p.growth[cache].live_at_begin);
    // Every site's line is the one the trace's own times give (growth
    // depends on when things happened, which a loaded machine changes;
    // the fit of what was recorded does not).
    for (const char* function : {"LeakyCache", "StartupTable", "Churn", "Pool"}) {
      size_t site = SiteNamed(p, function);
      ASSERT_NE(site, SIZE_MAX) << function;
      ExpectReference(p, trace_, site, absl::StrCat(function, ", window ", window));
    }
    std::vector<GrowingSite> ranked = RankGrowth(p, GrowthOptions{});
    ASSERT_FALSE(ranked.empty());
    bool listed = false;
    for (const GrowingSite& g : ranked) listed = listed || g.site == cache;
    EXPECT_TRUE(listed) << "window " << window;
    if (window == 0.5) {
      // In the later half only the cache grows: StartupTable stays put,
      // Churn holds at most one block, Pool is a sawtooth. (With the whole
      // trace as the window, StartupTable's step at start-up looks like
      // growth the later it came, and a loaded machine makes it late: its
      // numbers are checked above, not its rank.)
      EXPECT_EQ(ranked.size(), 1u);
      EXPECT_EQ(ranked[0].site, cache) << Leaf(p, ranked[0].site);
      // The program's schedule: 512 bytes every 500 us, 1,024,000 B/s; a
      // request that comes late runs at once, so the slope stays near it
      // unless the program was starved for much of the window.
      EXPECT_GT(ranked[0].growth.bytes_per_second, 0.5e6);
      EXPECT_LT(ranked[0].growth.bytes_per_second, 1.5e6);
    }
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
  EXPECT_GT(sites[0]["fit"].get<double>(), 0.25);  // listed: over GrowthCriteria::min_fit
  EXPECT_EQ(sites[0]["live_at_end"].get<uint64_t>(), 0u);
}

}  // namespace
}  // namespace heapsight::analyzer
