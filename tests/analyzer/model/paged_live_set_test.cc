// tests/analyzer/model/paged_live_set_test.cc: PagedLiveSet against a plain
// map on the id patterns the analysis sees (threads allocating in counter
// order, frees in any order, ids out of order, sizes and sites too big to
// pack), and its memory: pages held only while they are dense enough.
#include "analyzer/model/paged_live_set.h"

#include <cstdint>
#include <map>
#include <random>
#include <vector>

#include "format/trace_format.h"
#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

using format::MakeAllocId;

// Applies the same operation to the set and to a reference map, checking
// every answer.
class Checker {
 public:
  void Insert(uint64_t id, LiveBlock b) {
    bool want = ref_.count(id) == 0;
    ASSERT_EQ(set_.Insert(id, b), want) << id;
    if (want) ref_[id] = b;
  }
  void Erase(uint64_t id) {
    LiveBlock got{};
    auto it = ref_.find(id);
    ASSERT_EQ(set_.Erase(id, &got), it != ref_.end()) << id;
    if (it == ref_.end()) return;
    EXPECT_EQ(got.size, it->second.size) << id;
    EXPECT_EQ(got.site, it->second.site) << id;
    ref_.erase(it);
  }
  void CheckAll() {
    ASSERT_EQ(set_.size(), ref_.size());
    for (const auto& [id, b] : ref_) {
      LiveBlock got{};
      ASSERT_TRUE(set_.Find(id, &got)) << id;
      EXPECT_EQ(got.size, b.size) << id;
      EXPECT_EQ(got.site, b.site) << id;
    }
    std::map<uint64_t, LiveBlock> seen;
    set_.ForEach([&](uint64_t id, const LiveBlock& b) { seen[id] = b; });
    ASSERT_EQ(seen.size(), ref_.size());
    for (const auto& [id, b] : ref_) {
      EXPECT_EQ(seen[id].size, b.size) << id;
      EXPECT_EQ(seen[id].site, b.site) << id;
    }
  }
  PagedLiveSet& set() { return set_; }
  const std::map<uint64_t, LiveBlock>& ref() const { return ref_; }

 private:
  PagedLiveSet set_;
  std::map<uint64_t, LiveBlock> ref_;
};

TEST(PagedLiveSetTest, InOrderAllocationsFillPagesAndFreesEmptyThem) {
  Checker c;
  // One thread, 10,000 blocks kept: 40 pages (256 counters each).
  for (uint64_t i = 0; i < 10000; ++i) c.Insert(MakeAllocId(3, i), {i + 1, uint32_t(i % 97)});
  c.CheckAll();
  EXPECT_EQ(c.set().page_count(), 40u);  // ceil(10000 / 256)
  EXPECT_EQ(c.set().fallback_size(), 0u);
  LiveBlock b{};
  EXPECT_FALSE(c.set().Insert(MakeAllocId(3, 17), {1, 1}));  // a reused id: refused
  EXPECT_FALSE(c.set().Find(MakeAllocId(3, 10000), &b));
  EXPECT_FALSE(c.set().Find(MakeAllocId(4, 17), &b));
  // Freeing everything releases every page but the thread's open one.
  for (uint64_t i = 0; i < 10000; ++i) c.Erase(MakeAllocId(3, i));
  c.CheckAll();
  EXPECT_EQ(c.set().page_count(), 1u);
  EXPECT_EQ(c.set().fallback_size(), 0u);
}

TEST(PagedLiveSetTest, SparseClosedPagesBecomeCompactOrMoveToTheFallback) {
  Checker c;
  // Keep one block in 16: 16 of each page's 256, below
  // kCompactPaletteBelow, so each page keeps only its 16 values when the
  // frontier passes it (one value: the pages were palettes).
  for (uint64_t i = 0; i < 256 * 100; ++i) {
    c.Insert(MakeAllocId(1, i), {64, 5});
    if (i % 16 != 0) c.Erase(MakeAllocId(1, i));
  }
  c.CheckAll();
  EXPECT_EQ(c.set().page_count(), 100u);
  EXPECT_EQ(c.set().compact_page_count(), 99u);
  EXPECT_EQ(c.set().fallback_size(), 0u);
  EXPECT_EQ(c.set().palette_page_count(), 1u);
  EXPECT_EQ(c.set().value_bytes(), 99u * 16 * 8 + 256);
  // Keep one block in 128: 2 a page, below kFallbackBelow: the fallback.
  Checker f;
  for (uint64_t i = 0; i < 256 * 100; ++i) {
    f.Insert(MakeAllocId(1, i), {64, 5});
    if (i % 128 != 0) f.Erase(MakeAllocId(1, i));
  }
  f.CheckAll();
  EXPECT_EQ(f.set().page_count(), 1u);  // the open page only
  EXPECT_EQ(f.set().fallback_size(), 2u * 99);
  // Keep three in four, every size different: pages leave the palette for
  // dense values, and stay so until frees thin a closed page below
  // kCompactDenseBelow.
  Checker d;
  for (uint64_t i = 0; i < 256 * 10; ++i) {
    d.Insert(MakeAllocId(2, i), {i, 9});
    if (i % 4 == 0) d.Erase(MakeAllocId(2, i));
  }
  EXPECT_EQ(d.set().page_count(), 10u);
  EXPECT_EQ(d.set().compact_page_count(), 0u);
  EXPECT_EQ(d.set().fallback_size(), 0u);
  for (uint64_t i = 0; i < 256; ++i) d.Erase(MakeAllocId(2, i));          // page 0: empty
  EXPECT_EQ(d.set().compact_page_count(), 0u);
  for (uint64_t i = 256; i < 256 + 160; ++i) d.Erase(MakeAllocId(2, i));  // page 1: 72 left
  EXPECT_EQ(d.set().page_count(), 9u);
  EXPECT_EQ(d.set().compact_page_count(), 1u);  // since it fell below 128
  d.Erase(MakeAllocId(2, 256 + 160 + 1));                                  // 71 left
  for (uint64_t i = 256 + 164; i < 256 + 196; i += 4) d.Erase(MakeAllocId(2, i + 1));
  d.CheckAll();
  EXPECT_EQ(d.set().page_count(), 9u);
  EXPECT_EQ(d.set().compact_page_count(), 1u);  // 63 values in room for 127
  EXPECT_EQ(d.set().value_bytes(), 8u * 256 * 8 + 127 * 8);
  EXPECT_EQ(d.set().fallback_size(), 0u);
  for (const auto& [id, b] : std::map<uint64_t, LiveBlock>(d.ref())) d.Erase(id);
  d.CheckAll();
  EXPECT_EQ(d.set().size(), 0u);
  EXPECT_EQ(d.set().page_count(), 1u);
}

TEST(PagedLiveSetTest, InsertsIntoACompactPageRefillItUntilItIsDenseAgain) {
  Checker c;
  for (uint64_t i = 0; i < 256; i += 2) c.Insert(MakeAllocId(5, i), {i, 1});
  c.Insert(MakeAllocId(5, 256), {1, 1});  // the frontier moves on: page 0 closed, dense
  for (uint64_t i = 0; i < 236; i += 2) c.Erase(MakeAllocId(5, i));  // 10 left: compact
  EXPECT_EQ(c.set().compact_page_count(), 1u);
  c.CheckAll();
  // Counters below the frontier come back (e.g. inherited blocks).
  for (uint64_t i = 0; i < 256; ++i) c.Insert(MakeAllocId(5, 255 - i), {i + 7, 2});
  c.CheckAll();
  EXPECT_EQ(c.set().compact_page_count(), 0u);
  EXPECT_EQ(c.set().page_count(), 2u);
  EXPECT_EQ(c.set().fallback_size(), 0u);
}

TEST(PagedLiveSetTest, ManyThreadsRandomFreesAndOutOfOrderIdsMatchAMap) {
  Checker c;
  std::mt19937_64 rng(16);
  std::vector<uint64_t> next(9, 0);
  std::vector<uint64_t> live;
  const LiveBlock odd[] = {{uint64_t{1} << 40, 3}, {~uint64_t{0}, 4}, {5, 1u << 24}, {6, ~0u}};
  for (int step = 0; step < 300000; ++step) {
    uint32_t thread = static_cast<uint32_t>(rng() % 9);
    uint64_t r = rng() % 100;
    if (r < 55) {
      uint64_t id = MakeAllocId(thread, next[thread]++);
      LiveBlock b = rng() % 50 == 0 ? odd[rng() % 4] : LiveBlock{rng() % 5000, uint32_t(rng() % 1000)};
      c.Insert(id, b);
      live.push_back(id);
    } else if (r < 97 && !live.empty()) {
      // Mostly recent blocks (temporaries), sometimes any.
      size_t pick = rng() % 4 == 0 ? rng() % live.size()
                                    : live.size() - 1 - rng() % std::min<size_t>(live.size(), 8);
      c.Erase(live[pick]);
      live[pick] = live.back();
      live.pop_back();
    } else if (r < 99) {
      // An id below the frontier (inherited, or a counter that skipped
      // back), a duplicate now and then, and frees of ids never allocated.
      uint64_t counter = next[thread] == 0 ? 0 : rng() % next[thread];
      c.Insert(MakeAllocId(thread, counter), {7, 7});
      c.Erase(MakeAllocId(thread, next[thread] + 1000));
    } else {
      // The id 2^64-1 and the highest counter work like any other.
      c.Insert(~uint64_t{0}, {1, 2});
      c.Erase(~uint64_t{0});
    }
    if (step % 50000 == 0) c.CheckAll();
  }
  c.CheckAll();
}

// The page index: pages of a thread past a chunk of 512 page numbers, of a
// thread index of 2^16 and more and of counters of 2^36 and more (kept in the
// hash map beside the tables) are found, counted and released like the rest.
TEST(PagedLiveSetTest, PagesAcrossChunksHighThreadsAndHighCountersAreIndexed) {
  Checker c;
  const uint32_t threads[] = {0, 7, 1u << 16, (1u << 24) - 1};
  const uint64_t starts[] = {0, 511 * 256, uint64_t{1} << 36, (uint64_t{1} << 40) - 3 * 256};
  for (uint32_t t : threads) {
    for (uint64_t start : starts) {
      // Three pages a (thread, start): 3 * 256 counters, every block kept.
      for (uint64_t i = 0; i < 3 * 256; ++i) c.Insert(MakeAllocId(t, start + i), {i + 1, t % 100});
    }
  }
  c.CheckAll();
  // Each thread's later starts lie past its frontier: all pages made, none
  // in the fallback; the starts below a thread's frontier went there.
  EXPECT_EQ(c.set().page_count(), 4u * 4 * 3);
  EXPECT_EQ(c.set().fallback_size(), 0u);
  LiveBlock b{};
  EXPECT_FALSE(c.set().Find(MakeAllocId(7, 511 * 256 + 3 * 256), &b));
  EXPECT_FALSE(c.set().Find(MakeAllocId(1u << 16, 3 * 256), &b));
  EXPECT_FALSE(c.set().Find(MakeAllocId(8, 0), &b));
  // Freeing every block releases every page but each thread's open one.
  for (uint32_t t : threads) {
    for (uint64_t start : starts) {
      for (uint64_t i = 0; i < 3 * 256; ++i) c.Erase(MakeAllocId(t, start + i));
    }
  }
  c.CheckAll();
  EXPECT_EQ(c.set().page_count(), 4u);
  // A released page's counters come back below the frontier: the fallback.
  c.Insert(MakeAllocId(7, 5), {9, 9});
  c.Insert(MakeAllocId(1u << 16, (uint64_t{1} << 36) + 5), {9, 9});
  c.CheckAll();
  EXPECT_EQ(c.set().fallback_size(), 2u);
  EXPECT_EQ(c.set().page_count(), 4u);
}

// The analysis loads a free's page ahead in three stages (PrefetchSlot,
// Prefetch, PrefetchValue) for ids that may be live, freed already, never
// allocated, in released pages, in the fallback, past a chunk of the page
// index or in the hash map beside it: none of them changes an answer or
// reads past the index (a thread with no table, a page number past its
// chunks, a thread kept in the hash map).
TEST(PagedLiveSetTest, PrefetchStagesOfAnyIdChangeNothing) {
  Checker c;
  std::mt19937_64 rng(7);
  const uint32_t threads[] = {1, 3, 1u << 16};
  const uint64_t starts[] = {0, 700 * 256, uint64_t{1} << 36};
  std::vector<uint64_t> ids;
  for (uint32_t t : threads) {
    for (uint64_t start : starts) {
      for (uint64_t i = 0; i < 5 * 256; ++i) ids.push_back(MakeAllocId(t, start + i));
    }
  }
  auto prefetch_all_stages = [&](uint64_t id) {
    c.set().PrefetchSlot(id);
    c.set().Prefetch(id);
    c.set().PrefetchValue(id);
  };
  for (size_t i = 0; i < ids.size(); ++i) {
    prefetch_all_stages(ids[(i * 7919) % ids.size()]);  // mostly not allocated yet
    c.Insert(ids[i], {i % 40 + 1, static_cast<uint32_t>(i % 23)});
    if (rng() % 3 == 0) {
      const uint64_t victim = ids[rng() % (i + 1)];
      prefetch_all_stages(victim);
      c.Erase(victim);
      prefetch_all_stages(victim);  // freed: its page may be gone
    }
  }
  c.CheckAll();
  // Empty whole pages (released), then ask about them and their neighbours.
  for (size_t i = 0; i < ids.size(); ++i) {
    if ((i / 256) % 2 == 0) {
      prefetch_all_stages(ids[i]);
      c.Erase(ids[i]);
    }
  }
  for (uint64_t id : ids) prefetch_all_stages(id);
  prefetch_all_stages(MakeAllocId(9, 5));                     // a thread with no table
  prefetch_all_stages(MakeAllocId(1, uint64_t{1} << 30));     // past the thread's chunks
  prefetch_all_stages(MakeAllocId((1u << 24) - 1, 0));        // a thread past kDenseThreads
  c.CheckAll();
  // Refill a released page's counters (the fallback now) and free the rest,
  // prefetching each id before its erase as the analysis does.
  for (size_t i = 0; i < 256; ++i) c.Insert(ids[i], {3, 3});
  for (uint64_t id : ids) {
    prefetch_all_stages(id);
    c.Erase(id);
  }
  c.CheckAll();
  EXPECT_EQ(c.set().size(), 0u);
}

// 2 M blocks live from 2 threads, one in five freed as a temporary: from
// 10 sizes and sites, the pages are palettes (about 1.3 bytes a block);
// every size different, dense (about 10 bytes a block, against LiveSet's
// 21-43).
TEST(PagedLiveSetTest, ALiveSetOfFewValuesTakesPalettesOtherwiseEightBytesABlock) {
  for (bool distinct : {false, true}) {
    PagedLiveSet set;
    size_t kept = 0;
    for (uint64_t i = 0; i < 1250000; ++i) {
      for (uint32_t t = 0; t < 2; ++t) {
        LiveBlock block{distinct ? i : 16 * (i % 10), uint32_t(i % 10)};
        ASSERT_TRUE(set.Insert(MakeAllocId(t, i), block));
        LiveBlock b{};
        if (i % 5 == 4) {
          ASSERT_TRUE(set.Erase(MakeAllocId(t, i), &b));
        } else {
          ++kept;
        }
      }
    }
    EXPECT_EQ(set.size(), kept);
    EXPECT_EQ(set.fallback_size(), 0u);
    EXPECT_EQ(set.page_count(), 2u * ((1250000 + 255) / 256));
    double per_block = static_cast<double>(set.value_bytes()) / static_cast<double>(kept);
    if (distinct) {
      EXPECT_EQ(set.palette_page_count(), 0u);
      EXPECT_GT(per_block, 10.0);
      EXPECT_LT(per_block, 10.5);
    } else {
      EXPECT_EQ(set.palette_page_count(), set.page_count());
      EXPECT_LT(per_block, 1.3);
    }
  }
}

}  // namespace
}  // namespace heapsight::analyzer
