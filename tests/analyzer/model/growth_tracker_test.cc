// tests/analyzer/model/growth_tracker_test.cc: the least-squares fit of live bytes
// over time (analyzer/model/growth_tracker.h), on step functions with known fits.
#include "analyzer/model/growth_tracker.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace heapsight::analyzer {
namespace {

TEST(GrowthTracker, SteadyClimbHasItsSlopeAndAFitOfOne) {
  // +1,000 bytes every millisecond for a second: 1,000,000 bytes/s.
  GrowthTracker g(0);
  uint64_t live = 0;
  for (uint64_t t = 1000; t <= 1000000; t += 1000) {
    g.Change(0, t, live, live + 1000);
    live += 1000;
  }
  std::vector<SiteGrowth> r = g.Finish(1000000, {live});
  ASSERT_EQ(r.size(), 1u);
  EXPECT_NEAR(r[0].bytes_per_second, 1e6, 0.01e6);
  EXPECT_GT(r[0].fit, 0.99);
  EXPECT_NEAR(r[0].rise, 1e6, 0.01e6);
  EXPECT_EQ(r[0].live_at_begin, 0u);
  EXPECT_EQ(r[0].live_max, 1000000u);
  EXPECT_EQ(r[0].live_at_end, 1000000u);
}

TEST(GrowthTracker, FlatAndChurningSitesDoNotGrow) {
  GrowthTracker g(0);
  // Site 0: 4 MB from t=0 on, never changes. Site 1: 0/4096 alternating.
  g.Change(0, 0, 0, 4000000);
  for (uint64_t t = 10; t <= 1000000; t += 10) {
    uint64_t before = (t / 10) % 2 == 0 ? 4096 : 0;
    g.Change(1, t, before, 4096 - before);
  }
  std::vector<SiteGrowth> r = g.Finish(1000000, {4000000, 0});
  EXPECT_NEAR(r[0].bytes_per_second, 0, 1e-6);
  EXPECT_EQ(r[0].fit, 0);  // no variance: no fit
  EXPECT_EQ(r[0].live_at_begin, 4000000u);
  EXPECT_LT(r[1].rise, 10.0);
  EXPECT_LT(r[1].fit, 0.01);
}

TEST(GrowthTracker, TheWindowLeavesStartUpOut) {
  // Site 0 jumps to 1 MB at t=100 ms and stays; the window starts at 500 ms.
  GrowthTracker g(500000);
  g.Change(0, 100000, 0, 1000000);
  // Site 1 climbs only after 500 ms: 1,000 bytes per ms.
  uint64_t live = 0;
  for (uint64_t t = 501000; t <= 1000000; t += 1000) {
    g.Change(1, t, live, live + 1000);
    live += 1000;
  }
  std::vector<SiteGrowth> r = g.Finish(1000000, {1000000, live});
  EXPECT_NEAR(r[0].bytes_per_second, 0, 1e-6);
  EXPECT_EQ(r[0].live_at_begin, 1000000u);
  EXPECT_NEAR(r[1].bytes_per_second, 1e6, 0.02e6);
  EXPECT_GT(r[1].fit, 0.99);
  EXPECT_EQ(r[1].live_at_begin, 0u);
}

TEST(GrowthTracker, AShutdownThatFreesEverythingDoesNotHideTheClimb) {
  // Climbs for 0.9 s, 1,000 bytes a millisecond ...
  GrowthTracker g(0);
  uint64_t live = 0;
  for (uint64_t t = 1000; t < 900000; t += 1000) {
    g.Change(0, t, live, live + 1000);
    live += 1000;
  }
  // ... then the shutdown frees it all over the last 100 ms, in steps.
  for (uint64_t t = 900000; t < 1000000 && live > 0; t += 10000) {
    uint64_t after = live > 100000 ? live - 100000 : 0;
    g.Change(0, t, live, after);
    live = after;
  }
  std::vector<SiteGrowth> r = g.Finish(1000000, {live});
  EXPECT_NEAR(r[0].bytes_per_second, 1e6, 0.02e6);
  EXPECT_GT(r[0].fit, 0.99);
  EXPECT_EQ(r[0].live_at_end, 0u);
  EXPECT_EQ(r[0].live_max, 899000u);
  EXPECT_EQ(r[0].fit_end_us, 899000u);
}

TEST(GrowthTracker, ASawtoothDoesNotGrow) {
  // A pool that fills to 100 KB over 10 ms and is emptied, for a second,
  // then freed at exit: its last tooth is not a trend.
  GrowthTracker g(0);
  uint64_t live = 0;
  for (uint64_t t = 100; t < 1000000; t += 100) {
    uint64_t after = live == 100000 ? 0 : live + 1000;
    g.Change(0, t, live, after);
    live = after;
  }
  g.Change(0, 999950, live, 0);
  std::vector<SiteGrowth> r = g.Finish(1000000, {0});
  EXPECT_EQ(r[0].live_max, 100000u);
  EXPECT_LT(std::abs(r[0].rise), 5000.0);  // of a 100 KB tooth
  EXPECT_LT(r[0].fit, 0.05);
}

TEST(GrowthTracker, EmptyWindow) {
  GrowthTracker g(1000);
  g.Change(0, 10, 0, 5);
  std::vector<SiteGrowth> r = g.Finish(1000, {5});
  EXPECT_EQ(r[0].bytes_per_second, 0);
  EXPECT_EQ(r[0].live_at_end, 5u);
}

}  // namespace
}  // namespace heapsight::analyzer
