// tests/analyzer/model/site_timeline_test.cc: the per-site bucketed series
// (site_timeline.h): exact buckets by hand, coarsening, and on random
// traces (a brute-force replay) that the kept sites' live bytes are exact at
// every bucket's end, that kept sites plus "other" are the heap there, that
// allocated bytes add up, and that the largest sites are the ones kept; and
// that the builder's output is, bucket for bucket, that of a plain reference
// (one vector of buckets per site, the newest at its back) on random calls.
#include "analyzer/model/site_timeline.h"

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

// The builder as it was before its newest buckets moved into the sites'
// states and its older ones into one log: each site's buckets in a vector of
// its own, the newest at the back. The reference for
// MatchesPerSiteVectorsReference.
class ReferenceBuilder {
 public:
  ReferenceBuilder(uint64_t expected_duration_us, size_t max_buckets, size_t max_entries,
                   size_t keep_while_pruning)
      : max_buckets_(std::max<size_t>(max_buckets, 2)),
        max_entries_(max_entries),
        keep_while_pruning_(keep_while_pruning) {
    uint64_t width = expected_duration_us / (max_buckets_ / 2);
    while (width_ < width) width_ <<= 1;
    other_delta_.assign(max_buckets_, 0);
    other_allocated_.assign(max_buckets_, 0);
  }

  void Live(uint32_t site, uint64_t time_us, uint64_t live_bytes) {
    State& s = At(site, time_us);
    if (s.folded) {
      other_delta_[time_us / width_] += live_bytes - s.live;
    } else {
      Entry(s, time_us).live = live_bytes;
      s.max_live = std::max(s.max_live, live_bytes);
    }
    s.live = live_bytes;
    MaybePrune();
  }

  void Allocated(uint32_t site, uint64_t time_us, uint64_t bytes) {
    State& s = At(site, time_us);
    s.allocated += bytes;
    if (s.folded) {
      other_allocated_[time_us / width_] += bytes;
      return;
    }
    Entry(s, time_us).allocated += bytes;
    MaybePrune();
  }

  SiteTimeline Finish(uint64_t end_us, size_t top_sites) {
    Keep(top_sites);
    SiteTimeline out;
    out.bucket_us = width_;
    out.end_us = end_us;
    for (uint32_t i = 0; i < sites_.size(); ++i) {
      State& s = sites_[i];
      if (s.folded || s.buckets.empty()) continue;
      out.sites.push_back(SiteSeries{i, std::move(s.buckets)});
    }
    uint64_t live = 0;
    for (size_t i = 0; i < max_buckets_; ++i) {
      if (other_delta_[i] == 0 && other_allocated_[i] == 0) continue;
      live += other_delta_[i];
      out.other.push_back(SiteBucket{i * width_, live, other_allocated_[i]});
    }
    return out;
  }

 private:
  struct State {
    std::vector<SiteBucket> buckets;
    uint64_t live = 0;
    uint64_t max_live = 0;
    uint64_t allocated = 0;
    bool folded = false;
  };

  State& At(uint32_t site, uint64_t time_us) {
    while (time_us / width_ >= max_buckets_) Coarsen();
    if (site >= sites_.size()) sites_.resize(site + size_t{1});
    return sites_[site];
  }

  SiteBucket& Entry(State& s, uint64_t time_us) {
    uint64_t begin = time_us - time_us % width_;
    if (s.buckets.empty() || s.buckets.back().begin_us != begin) {
      s.buckets.push_back(SiteBucket{begin, s.live, 0});
      ++entries_;
    }
    return s.buckets.back();
  }

  void Coarsen() {
    width_ *= 2;
    entries_ = 0;
    for (State& s : sites_) {
      size_t out = 0;
      for (size_t i = 0; i < s.buckets.size(); ++i) {
        SiteBucket b = s.buckets[i];
        b.begin_us -= b.begin_us % width_;
        if (out != 0 && s.buckets[out - 1].begin_us == b.begin_us) {
          s.buckets[out - 1].live = b.live;
          s.buckets[out - 1].allocated += b.allocated;
        } else {
          s.buckets[out++] = b;
        }
      }
      s.buckets.resize(out);
      entries_ += out;
    }
    for (size_t i = 0; i < max_buckets_; ++i) {
      uint64_t delta = other_delta_[i];
      uint64_t allocated = other_allocated_[i];
      other_delta_[i] = 0;
      other_allocated_[i] = 0;
      other_delta_[i / 2] += delta;
      other_allocated_[i / 2] += allocated;
    }
  }

  void Fold(State& s) {
    uint64_t previous = 0;
    for (const SiteBucket& b : s.buckets) {
      size_t i = b.begin_us / width_;
      other_delta_[i] += b.live - previous;
      other_allocated_[i] += b.allocated;
      previous = b.live;
    }
    entries_ -= s.buckets.size();
    s.buckets.clear();
    s.folded = true;
  }

  void Keep(size_t top) {
    std::vector<uint32_t> candidates;
    for (uint32_t i = 0; i < sites_.size(); ++i) {
      if (!sites_[i].folded && !sites_[i].buckets.empty()) candidates.push_back(i);
    }
    std::vector<bool> keep(sites_.size(), false);
    auto mark = [&](auto key) {
      size_t n = std::min(top, candidates.size());
      std::partial_sort(candidates.begin(), candidates.begin() + static_cast<ptrdiff_t>(n),
                        candidates.end(), [&](uint32_t a, uint32_t b) {
                          uint64_t ka = key(sites_[a]);
                          uint64_t kb = key(sites_[b]);
                          return ka != kb ? ka > kb : a < b;
                        });
      for (size_t i = 0; i < n; ++i) keep[candidates[i]] = true;
    };
    mark([](const State& s) { return s.max_live; });
    mark([](const State& s) { return s.allocated; });
    for (uint32_t i : candidates) {
      if (!keep[i]) Fold(sites_[i]);
    }
  }

  void MaybePrune() {
    if (entries_ > max_entries_) Keep(keep_while_pruning_);
  }

  std::vector<State> sites_;
  std::vector<uint64_t> other_delta_;
  std::vector<uint64_t> other_allocated_;
  uint64_t width_ = 1;
  size_t max_buckets_;
  size_t max_entries_;
  size_t keep_while_pruning_;
  size_t entries_ = 0;
};

void ExpectSameBuckets(const std::vector<SiteBucket>& got, const std::vector<SiteBucket>& want,
                       const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].begin_us, want[i].begin_us) << what << " bucket " << i;
    EXPECT_EQ(got[i].live, want[i].live) << what << " bucket " << i;
    EXPECT_EQ(got[i].allocated, want[i].allocated) << what << " bucket " << i;
  }
}

// Random calls (many sites that touch few buckets, a few busy ones, time
// jumps that coarsen several times at once, times near the 64-bit limit,
// AllocatedLive for two fifths of the allocations, pruning between them)
// under several bounds: the output is the reference's, bucket for bucket.
TEST(SiteTimelineTest, MatchesPerSiteVectorsReference) {
  struct Bounds {
    uint64_t expected;
    size_t max_buckets, max_entries, keep;
  };
  const Bounds bounds[] = {{100, 16, 40, 4}, {0, 4, 1000, 2}, {5000, 512, 1 << 20, 256},
                           {1, 8, 12, 1},    {300, 3, 25, 3},  {1 << 20, 64, 200, 8}};
  for (uint32_t seed = 1; seed <= 60; ++seed) {
    const Bounds& b = bounds[seed % std::size(bounds)];
    std::mt19937_64 rng(seed);
    SiteTimelineBuilder got(b.expected, b.max_buckets, b.max_entries, b.keep);
    ReferenceBuilder want(b.expected, b.max_buckets, b.max_entries, b.keep);
    const uint32_t sites = 1 + static_cast<uint32_t>(rng() % 300);
    std::vector<uint64_t> live(sites, 0);
    uint64_t now = seed % 7 == 0 ? ~uint64_t{0} - 100000 : 0;
    const int calls = 200 + static_cast<int>(rng() % 6000);
    for (int i = 0; i < calls; ++i) {
      uint64_t r = rng() % 1000;
      uint64_t step = r < 3 ? rng() % 100000 : r < 400 ? rng() % 4 : 0;  // a jump coarsens
      now = now > ~uint64_t{0} - step ? ~uint64_t{0} : now + step;        // times never decrease
      uint32_t site = rng() % 4 == 0 ? static_cast<uint32_t>(rng() % 3)
                                     : static_cast<uint32_t>(rng() % sites);
      uint64_t size = 1 + rng() % 5000;
      if (live[site] >= size && rng() % 2 == 0) {
        live[site] -= size;
      } else {
        live[site] += size;
        uint64_t how = rng() % 5;
        if (how >= 3) {
          // One call for both (the pass's allocation), the reference's two.
          got.AllocatedLive(site, now, size, live[site]);
          want.Allocated(site, now, size);
          want.Live(site, now, live[site]);
          continue;
        }
        got.Allocated(site, now, size);
        want.Allocated(site, now, size);
        if (how == 0) continue;  // an allocation whose live bytes come later
      }
      got.Live(site, now, live[site]);
      want.Live(site, now, live[site]);
    }
    size_t top = 1 + rng() % 10;
    SiteTimeline g = got.Finish(now, top);
    SiteTimeline w = want.Finish(now, top);
    std::string what = "seed " + std::to_string(seed);
    EXPECT_EQ(g.bucket_us, w.bucket_us) << what;
    EXPECT_EQ(g.end_us, w.end_us) << what;
    ASSERT_EQ(g.sites.size(), w.sites.size()) << what;
    for (size_t i = 0; i < g.sites.size(); ++i) {
      EXPECT_EQ(g.sites[i].site, w.sites[i].site) << what;
      ExpectSameBuckets(g.sites[i].buckets, w.sites[i].buckets,
                        what + " site " + std::to_string(w.sites[i].site));
    }
    ExpectSameBuckets(g.other, w.other, what + " other");
  }
}

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
