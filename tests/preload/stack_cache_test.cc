// tests/preload/stack_cache_test.cc: unit tests of preload/stack_cache.
#include "preload/stack_cache.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <random>
#include <vector>

namespace heapsight::preload {
namespace {

// The preload maps the cache zero-filled; value-initialization is the same.
std::unique_ptr<StackCache> NewCache() { return std::make_unique<StackCache>(); }

TEST(StackCache, MissThenHit) {
  auto cache = NewCache();
  uintptr_t s[] = {0x10, 0x20, 0x30};
  EXPECT_EQ(cache->Find(s, 3), 0u);
  cache->Insert(s, 3, 7);
  EXPECT_EQ(cache->Find(s, 3), 7u);
}

TEST(StackCache, ExactMatchOnly) {
  auto cache = NewCache();
  uintptr_t s[] = {0x10, 0x20, 0x30};
  cache->Insert(s, 3, 7);
  uintptr_t other_frame[] = {0x10, 0x21, 0x30};
  EXPECT_EQ(cache->Find(other_frame, 3), 0u);
  EXPECT_EQ(cache->Find(s, 2), 0u);  // a prefix is another stack
  uintptr_t longer[] = {0x10, 0x20, 0x30, 0x40};
  EXPECT_EQ(cache->Find(longer, 4), 0u);
}

TEST(StackCache, EmptyTooDeepAndZeroLeafAreNotCached) {
  auto cache = NewCache();
  EXPECT_EQ(cache->Find(nullptr, 0), 0u);
  std::vector<uintptr_t> deep(StackCache::kMaxDepth + 1, 0x42);
  cache->Insert(deep.data(), deep.size(), 9);
  EXPECT_EQ(cache->Find(deep.data(), deep.size()), 0u);
  std::vector<uintptr_t> max(StackCache::kMaxDepth, 0x43);
  cache->Insert(max.data(), max.size(), 10);
  EXPECT_EQ(cache->Find(max.data(), max.size()), 10u);
  uintptr_t s[] = {0x1};
  cache->Insert(s, 1, 0);
  EXPECT_EQ(cache->Find(s, 1), 0u);
}

// Deep stacks are cached whole (frames past the inline ones live apart):
// stacks that differ only in a frame past them are told apart.
TEST(StackCache, DeepStacksHitAndDifferInTheirOuterFrames) {
  auto cache = NewCache();
  std::vector<uintptr_t> a(200), b(200);
  for (size_t i = 0; i < a.size(); ++i) a[i] = b[i] = 0x1000 + i;
  b[150] = 0x99;
  cache->Insert(a.data(), a.size(), 21);
  EXPECT_EQ(cache->Find(a.data(), a.size()), 21u);
  EXPECT_EQ(cache->Find(b.data(), b.size()), 0u);
  cache->Insert(b.data(), b.size(), 22);
  EXPECT_EQ(cache->Find(b.data(), b.size()), 22u);
  std::vector<uintptr_t> at_inline(StackCache::kInlineFrames + 1, 0x5);
  cache->Insert(at_inline.data(), at_inline.size(), 23);
  at_inline.back() = 0x6;
  EXPECT_EQ(cache->Find(at_inline.data(), at_inline.size()), 0u);
}

// Many stacks through a small cache: every hit must be the right leaf
// (evictions only turn hits into misses).
TEST(StackCache, NeverAnswersWrong) {
  auto cache = NewCache();
  std::mt19937_64 rng(1);
  std::vector<std::vector<uintptr_t>> stacks;
  for (int i = 0; i < 2000; ++i) {
    std::vector<uintptr_t> s(1 + rng() % 20);
    for (auto& ip : s) ip = 0x400000 + rng() % 64;  // few distinct frames
    stacks.push_back(s);
  }
  std::map<std::vector<uintptr_t>, uint64_t> leaf_of;
  for (const auto& s : stacks) leaf_of.emplace(s, leaf_of.size() + 1);
  int hits = 0;
  for (int round = 0; round < 5; ++round) {
    for (size_t i = 0; i < stacks.size(); ++i) {
      const auto& s = stacks[(i * 7 + round) % stacks.size()];
      uint64_t want = leaf_of.at(s);
      uint64_t got = cache->Find(s.data(), s.size());
      if (got != 0) {
        ASSERT_EQ(got, want);
        ++hits;
      } else {
        cache->Insert(s.data(), s.size(), want);
      }
    }
  }
  // A hot set smaller than the cache stays in it.
  for (int i = 0; i < 16; ++i) {
    cache->Insert(stacks[i].data(), stacks[i].size(), leaf_of.at(stacks[i]));
  }
  int hot_hits = 0;
  for (int i = 0; i < 16; ++i) hot_hits += cache->Find(stacks[i].data(), stacks[i].size()) != 0;
  EXPECT_GE(hot_hits, 12);
  EXPECT_GT(hits, 0);
}

// A window of mostly misses makes the cache stand aside for a while; a
// window of hits keeps it active.
TEST(StackCache, StandsAsideWhenMostlyMissing) {
  auto cache = NewCache();
  uintptr_t s[] = {0x10, 0x20};
  cache->Insert(s, 2, 5);
  for (uint32_t i = 0; i < StackCache::kWindow; ++i) {
    ASSERT_TRUE(cache->Active());
    EXPECT_EQ(cache->Find(s, 2), 5u);
  }
  EXPECT_TRUE(cache->Active());  // all hits: stays on
  for (uint32_t i = 0; i < StackCache::kWindow; ++i) {
    ASSERT_TRUE(cache->Active());
    uintptr_t miss[] = {0x1000 + i, 0x20};
    EXPECT_EQ(cache->Find(miss, 2), 0u);
  }
  for (uint32_t i = 0; i < StackCache::kBypassEvents; ++i) ASSERT_FALSE(cache->Active());
  EXPECT_TRUE(cache->Active());
  EXPECT_EQ(cache->Find(s, 2), 5u);  // entries survive the pause
}

}  // namespace
}  // namespace heapsight::preload
