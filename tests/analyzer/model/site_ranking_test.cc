// tests/analyzer/model/site_ranking_test.cc: RankSites keeps the best `top`
// sites in a bounded heap; its lists must be the full sort's first `top`
// (key descending, then stack, then API ascending), program sites with a
// non-zero key only, for every `top` from 0 past the number of sites.
#include "analyzer/model/site_ranking.h"

#include <algorithm>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

using format::Api;

Site MakeSite(uint64_t stack, Api api, uint64_t bytes, SiteKind kind = SiteKind::kProgram) {
  Site s;
  s.stack = stack;
  s.api = api;
  s.kind = kind;
  s.stats.alloc_bytes = bytes;
  return s;
}

uint64_t Bytes(const SiteStats& s) { return s.alloc_bytes; }

// The reference: every eligible site sorted, the first `top` kept.
std::vector<const Site*> FullSort(const ProcessProfile& p, size_t top) {
  std::vector<const Site*> all;
  for (const Site& s : p.sites) {
    if (s.kind == SiteKind::kProgram && s.stats.alloc_bytes != 0) all.push_back(&s);
  }
  std::sort(all.begin(), all.end(), [](const Site* a, const Site* b) {
    if (a->stats.alloc_bytes != b->stats.alloc_bytes) return a->stats.alloc_bytes > b->stats.alloc_bytes;
    if (a->stack != b->stack) return a->stack < b->stack;
    return a->api < b->api;
  });
  if (all.size() > top) all.resize(top);
  return all;
}

TEST(SiteRankingTest, ListsTheLargestProgramSitesTiesByStackThenApi) {
  ProcessProfile p;
  p.sites = {MakeSite(5, Api::kMalloc, 100), MakeSite(3, Api::kNew, 100),
             MakeSite(3, Api::kMalloc, 100), MakeSite(9, Api::kMalloc, 500),
             MakeSite(1, Api::kMalloc, 900, SiteKind::kRuntime), MakeSite(2, Api::kMalloc, 0),
             MakeSite(4, Api::kCalloc, 7)};
  std::vector<const Site*> got = RankSites(p, 4, Bytes);
  ASSERT_EQ(got.size(), 4u);
  EXPECT_EQ(got[0], &p.sites[3]);  // 500
  EXPECT_EQ(got[1], &p.sites[2]);  // 100, stack 3, malloc (1) before new
  EXPECT_EQ(got[2], &p.sites[1]);  // 100, stack 3, new
  EXPECT_EQ(got[3], &p.sites[0]);  // 100, stack 5
  EXPECT_TRUE(RankSites(p, 0, Bytes).empty());
  // The runtime site and the zero key never appear: 5 eligible sites.
  EXPECT_EQ(RankSites(p, 100, Bytes).size(), 5u);
}

TEST(SiteRankingTest, BoundedHeapEqualsTheFullSortOnRandomSites) {
  std::mt19937_64 rng(16);
  for (int round = 0; round < 20; ++round) {
    ProcessProfile p;
    size_t n = rng() % 3000;
    for (size_t i = 0; i < n; ++i) {
      // Few distinct keys and stacks, so ties are common.
      p.sites.push_back(MakeSite(rng() % 50, static_cast<Api>(1 + rng() % 3), rng() % 20,
                                 rng() % 10 == 0 ? SiteKind::kRuntime : SiteKind::kProgram));
    }
    for (size_t top : {size_t{0}, size_t{1}, size_t{5}, size_t{64}, n, n + 10}) {
      std::vector<const Site*> got = RankSites(p, top, Bytes);
      std::vector<const Site*> want = FullSort(p, top);
      ASSERT_EQ(got.size(), want.size()) << round << " " << top;
      for (size_t i = 0; i < got.size(); ++i) {
        // Equal keys, stacks and APIs are interchangeable; compare those.
        ASSERT_EQ(got[i]->stats.alloc_bytes, want[i]->stats.alloc_bytes) << i;
        ASSERT_EQ(got[i]->stack, want[i]->stack) << i;
        ASSERT_EQ(got[i]->api, want[i]->api) << i;
      }
    }
  }
}

// RankSitesByKeys ranks several keys in one pass: each list is exactly
// (the same sites, in the same order) what RankSites gives for its key.
TEST(SiteRankingTest, ByKeysIsRankSitesForEachKey) {
  std::mt19937_64 rng(18);
  const std::vector<std::function<uint64_t(const SiteStats&)>> keys = {
      [](const SiteStats& s) { return s.alloc_bytes; },
      [](const SiteStats& s) { return s.alloc_count; },
      [](const SiteStats& s) { return s.peak_bytes; },
      [](const SiteStats& s) { return s.alloc_bytes; },  // the same key twice
      [](const SiteStats& s) { return s.leaked_bytes * 3 + s.temporary_count; },
  };
  for (int round = 0; round < 20; ++round) {
    ProcessProfile p;
    size_t n = rng() % 2000;
    for (size_t i = 0; i < n; ++i) {
      Site s = MakeSite(rng() % 40, static_cast<Api>(1 + rng() % 3), rng() % 20,
                        rng() % 10 == 0 ? SiteKind::kRuntime : SiteKind::kProgram);
      s.stats.alloc_count = rng() % 7;
      s.stats.peak_bytes = rng() % 1000;
      s.stats.leaked_bytes = rng() % 4;
      s.stats.temporary_count = rng() % 5;
      p.sites.push_back(s);
    }
    for (size_t top : {size_t{0}, size_t{1}, size_t{5}, size_t{64}, n + 10}) {
      std::vector<std::vector<const Site*>> lists = RankSitesByKeys(p, top, keys);
      ASSERT_EQ(lists.size(), keys.size());
      for (size_t k = 0; k < keys.size(); ++k) {
        ASSERT_EQ(lists[k], RankSites(p, top, keys[k])) << round << " " << top << " " << k;
      }
    }
  }
  ProcessProfile empty;
  EXPECT_TRUE(RankSitesByKeys(empty, 5, {}).empty());
}

}  // namespace
}  // namespace heapsight::analyzer
