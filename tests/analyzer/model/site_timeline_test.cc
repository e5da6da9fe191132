// tests/analyzer/model/site_timeline_test.cc: the per-site bucketed series
// (site_timeline.h): exact buckets by hand, coarsening, and on random
// traces (a brute-force replay) that the kept sites' live bytes are exact at
// every bucket's end, that kept sites plus "other" are the heap there, that
// allocated bytes add up, and that the largest sites are the ones kept.
#include "analyzer/model/site_timeline.h"

#include <algorithm>
#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

TEST(SiteTimelineTest, SparseBucketsPerSite) {
  SiteTimelineBuilder b(/*expected_duration_us=*/32, /*max_buckets=*/8);  // width 8
  b.Allocated(0, 1, 100);
  b.Live(0, 1, 100);
  b.Allocated(1, 3, 50);
  b.Live(1, 3, 50);
  b.Live(0, 20, 0);  // site 0 freed in bucket [16, 24)
  b.Allocated(0, 21, 7);
  b.Live(0, 21, 7);
  SiteTimeline t = b.Finish(30, /*top_sites=*/10);
  EXPECT_EQ(t.bucket_us, 8u);
  EXPECT_EQ(t.end_us, 30u);
  ASSERT_EQ(t.sites.size(), 2u);
  EXPECT_TRUE(t.other.empty());
  EXPECT_EQ(t.sites[0].site, 0u);
  ASSERT_EQ(t.sites[0].buckets.size(), 2u);
  EXPECT_EQ(t.sites[0].buckets[0].begin_us, 0u);
  EXPECT_EQ(t.sites[0].buckets[0].live, 100u);
  EXPECT_EQ(t.sites[0].buckets[0].allocated, 100u);
  EXPECT_EQ(t.sites[0].buckets[1].begin_us, 16u);
  EXPECT_EQ(t.sites[0].buckets[1].live, 7u);
  EXPECT_EQ(t.sites[0].buckets[1].allocated, 7u);
  EXPECT_EQ(LiveAtBucketOf(t.sites[0].buckets, t.bucket_us, 12), 100u);  // flat between
  EXPECT_EQ(LiveAtBucketOf(t.sites[0].buckets, t.bucket_us, 29), 7u);
  EXPECT_EQ(LiveAtBucketOf(t.sites[1].buckets, t.bucket_us, 0), 50u);
}

TEST(SiteTimelineTest, CoarseningMergesNeighboursKeepingTheLaterLiveBytes) {
  SiteTimelineBuilder b(/*expected_duration_us=*/0, /*max_buckets=*/4);  // width 1
  b.Allocated(0, 0, 10);
  b.Live(0, 0, 10);
  b.Live(0, 1, 4);
  b.Allocated(0, 2, 3);
  b.Live(0, 2, 7);
  b.Allocated(0, 9, 5);  // past 4 buckets of 1, 2: width 4
  b.Live(0, 9, 12);
  SiteTimeline t = b.Finish(9, 1);
  EXPECT_EQ(t.bucket_us, 4u);
  ASSERT_EQ(t.sites.size(), 1u);
  ASSERT_EQ(t.sites[0].buckets.size(), 2u);
  EXPECT_EQ(t.sites[0].buckets[0].live, 7u);
  EXPECT_EQ(t.sites[0].buckets[0].allocated, 13u);
  EXPECT_EQ(t.sites[0].buckets[1].begin_us, 8u);
  EXPECT_EQ(t.sites[0].buckets[1].live, 12u);
  EXPECT_EQ(t.sites[0].buckets[1].allocated, 5u);
}

// A random trace over 60 sites, replayed exactly, against a series bounded
// to 16 buckets and 40 entries, keeping 4 sites when pruning (so that
// pruning folds sites, their past and their future, into "other").
TEST(SiteTimelineTest, RandomTracesKeptSitesExactAndSumIsTheHeap) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    SiteTimelineBuilder b(/*expected_duration_us=*/100, /*max_buckets=*/16, /*max_entries=*/40,
                          /*keep_while_pruning=*/4);
    struct Event {
      uint64_t time;
      uint32_t site;
      int64_t delta;
    };
    std::vector<Event> events;
    std::vector<uint64_t> live(60, 0);
    std::vector<uint64_t> max_live(60, 0);
    std::vector<uint64_t> allocated(60, 0);
    uint64_t now = 0;
    for (int i = 0; i < 3000; ++i) {
      now += rng() % 3;
      // Sites 0-2 are large, the others small.
      uint32_t site = static_cast<uint32_t>(rng() % 60);
      uint64_t size = (site < 3 ? 1000 : 1) * (1 + rng() % 10);
      bool free = live[site] >= size && rng() % 2 == 0;
      if (free) {
        live[site] -= size;
      } else {
        live[site] += size;
        allocated[site] += size;
        b.Allocated(site, now, size);
      }
      max_live[site] = std::max(max_live[site], live[site]);
      b.Live(site, now, live[site]);
      events.push_back({now, site, free ? -static_cast<int64_t>(size) : static_cast<int64_t>(size)});
    }
    SiteTimeline t = b.Finish(now, /*top_sites=*/3);
    ASSERT_LE(t.end_us / t.bucket_us, 16u) << "seed " << seed;
    std::map<uint32_t, const SiteSeries*> kept;
    for (const SiteSeries& s : t.sites) kept[s.site] = &s;
    // The three large sites (the largest by live and by allocated) are kept.
    for (uint32_t site = 0; site < 3; ++site) EXPECT_TRUE(kept.count(site)) << "seed " << seed;
    EXPECT_LE(kept.size(), 6u);
    for (uint64_t begin = 0; begin <= now; begin += t.bucket_us) {
      uint64_t end = begin + t.bucket_us;
      std::vector<uint64_t> at(60, 0);
      std::vector<uint64_t> in(60, 0);
      uint64_t heap = 0;
      uint64_t in_all = 0;
      for (const Event& e : events) {
        if (e.time >= end) break;
        at[e.site] += static_cast<uint64_t>(e.delta);
        heap += static_cast<uint64_t>(e.delta);
        if (e.time >= begin && e.delta > 0) {
          in[e.site] += static_cast<uint64_t>(e.delta);
          in_all += static_cast<uint64_t>(e.delta);
        }
      }
      uint64_t sum = LiveAtBucketOf(t.other, t.bucket_us, begin);
      uint64_t sum_in = 0;
      for (const SiteBucket& o : t.other) {
        if (o.begin_us == begin) sum_in += o.allocated;
      }
      for (const auto& [site, s] : kept) {
        uint64_t v = LiveAtBucketOf(s->buckets, t.bucket_us, begin);
        EXPECT_EQ(v, at[site]) << "seed " << seed << " site " << site << " at " << begin;
        sum += v;
        uint64_t a = 0;
        for (const SiteBucket& x : s->buckets) {
          if (x.begin_us == begin) a = x.allocated;
        }
        EXPECT_EQ(a, in[site]) << "seed " << seed << " site " << site << " at " << begin;
        sum_in += a;
      }
      EXPECT_EQ(sum, heap) << "seed " << seed << " at " << begin;
      EXPECT_EQ(sum_in, in_all) << "seed " << seed << " at " << begin;
    }
  }
}

}  // namespace
}  // namespace heapsight::analyzer
