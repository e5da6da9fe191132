// tests/analyzer/model/peak_tracker_test.cc: the tracker's peak snapshot equals a
// brute-force copy of the per-site counters at the last peak, at the end and
// after random peaks along the way (sites created before and after peaks,
// sites changed many times between two peaks, long runs without a peak, runs
// of allocations that each make a new peak, allocations that do not raise
// the heap the peak is taken on, like the runtime's).
#include "analyzer/model/peak_tracker.h"

#include <random>

#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

TEST(PeakTrackerTest, MatchesBruteForceSnapshot) {
  for (int seed = 0; seed < 50; ++seed) {
    std::mt19937_64 rng(seed);
    PeakTracker tracker;
    std::vector<LiveCounter> current;
    std::vector<LiveCounter> expected;
    std::vector<std::pair<uint32_t, uint64_t>> live;
    uint64_t heap = 0, peak = 0;
    int steps = 1000 + static_cast<int>(rng() % 20000);
    for (int i = 0; i < steps; ++i) {
      if (!live.empty() && rng() % 100 < 48) {
        size_t k = rng() % live.size();
        auto [site, size] = live[k];
        live[k] = live.back();
        live.pop_back();
        tracker.Change(site, current, /*rises=*/false);
        current[site].bytes -= size;
        current[site].count -= 1;
        heap -= size;
      } else {
        uint32_t site = static_cast<uint32_t>(rng() % (1 + i / 50));
        if (site >= current.size()) current.resize(site + 1);
        uint64_t size = 1 + rng() % 4096;
        // Some blocks do not count in the heap (the runtime's): their
        // counters change, the heap does not.
        bool counted = rng() % 8 != 0;
        live.push_back({site, counted ? size : 0});
        tracker.Change(site, current, /*rises=*/counted);
        current[site].bytes += size;
        current[site].count += 1;
        if (!counted) {
          // Its counters stay in the site's (the snapshot copies them), but
          // it never leaves the heap: its bytes stay in current.
          continue;
        }
        heap += size;
        if (heap > peak) {
          peak = heap;
          tracker.NewPeak();
          expected = current;
          if (rng() % 64 == 0) {
            const auto& now = tracker.at_peak(current);
            ASSERT_GE(now.size(), expected.size()) << "seed " << seed << " step " << i;
            for (size_t s = 0; s < expected.size(); ++s) {
              ASSERT_EQ(now[s].bytes, expected[s].bytes) << "seed " << seed << " step " << i;
              ASSERT_EQ(now[s].count, expected[s].count) << "seed " << seed << " step " << i;
            }
          }
        }
      }
    }
    const auto& got = tracker.at_peak(current);
    for (size_t s = 0; s < expected.size(); ++s) {
      uint64_t gb = s < got.size() ? got[s].bytes : 0, gc = s < got.size() ? got[s].count : 0;
      ASSERT_EQ(gb, expected[s].bytes) << "seed " << seed << " site " << s;
      ASSERT_EQ(gc, expected[s].count) << "seed " << seed << " site " << s;
    }
  }
}

}  // namespace
}  // namespace heapsight::analyzer
