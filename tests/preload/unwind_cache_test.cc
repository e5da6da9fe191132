// tests/preload/unwind_cache_test.cc: unit tests of preload/unwind_cache's
// bookkeeping: when it learns, when it refuses, when it stands aside. Its
// stacks themselves (Learn's walk, Find's checks) need the real preload and
// are checked end to end by tests/scenarios/unwind_cache_test.cc.
#include "preload/unwind_cache.h"

#include <gtest/gtest.h>

#include <memory>

namespace heapsight::preload {
namespace {

// The preload maps the cache zero-filled; value-initialization is the same.
std::unique_ptr<UnwindCache> NewCache() { return std::make_unique<UnwindCache>(); }

// A stack range that contains every key below.
constexpr uintptr_t kLow = 0x1000, kHigh = uintptr_t{1} << 47;

TEST(UnwindCache, EmptyCacheMissesAndCounts) {
  auto cache = NewCache();
  UnwindKey key{0x401000, 0x7ffd0000, 0};
  EXPECT_EQ(cache->Find(key, kLow, kHigh), 0u);
  EXPECT_EQ(cache->Find(key, 0, 0), 0u);  // bounds unknown
  EXPECT_EQ(cache->stats().lookups, 2u);
  EXPECT_EQ(cache->stats().hits, 0u);
}

TEST(UnwindCache, LearnsOnTheSecondMissOfAKey) {
  auto cache = NewCache();
  UnwindKey a{0x401000, 0x7ffd0000, 0}, b{0x401000, 0x7ffd0040, 0};
  EXPECT_FALSE(cache->ShouldLearn(a));
  EXPECT_FALSE(cache->ShouldLearn(b));  // another key (another sp)
  EXPECT_TRUE(cache->ShouldLearn(b));
}

TEST(UnwindCache, RefusedKeyIsNotRetried) {
  auto cache = NewCache();
  UnwindKey key{0x401000, 0x7ffd0000, 0};
  ASSERT_FALSE(cache->ShouldLearn(key));
  ASSERT_TRUE(cache->ShouldLearn(key));
  // The frames do not start at the key's return address: nothing to vouch
  // for, so Learn refuses (before any unwinding) and remembers the key.
  uintptr_t frames[] = {0x402000, 0x403000};
  cache->Learn(key, frames, 2, /*leaf=*/5);
  EXPECT_EQ(cache->stats().learnt, 0u);
  EXPECT_EQ(cache->Find(key, kLow, kHigh), 0u);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(cache->ShouldLearn(key));
}

// A thread whose lookups never hit stands aside for kMinBypass lookups,
// then twice as long after each further poor window.
TEST(UnwindCache, StandsAsideLongerAfterEachPoorWindow) {
  auto cache = NewCache();
  UnwindKey key{0x401000, 0x7ffd0000, 0};
  auto run_window = [&]() {
    for (uint32_t i = 0; i < UnwindCache::kWindow; ++i) {
      ASSERT_TRUE(cache->Active());
      cache->Find(key, kLow, kHigh);
    }
  };
  auto count_bypass = [&]() {
    uint32_t skipped = 0;
    while (!cache->Active()) ++skipped;
    return skipped;
  };
  run_window();
  EXPECT_EQ(count_bypass(), UnwindCache::kMinBypass);
  run_window();
  EXPECT_EQ(count_bypass(), 2 * UnwindCache::kMinBypass);
  EXPECT_EQ(cache->stats().lookups, 2u * UnwindCache::kWindow);
}

// Learning that hits do not repay stops at once, not at the window's end.
TEST(UnwindCache, StopsLearningWhenHitsDoNotPay) {
  auto cache = NewCache();
  uintptr_t frames[] = {0x999};
  for (uint32_t k = 0; k < UnwindCache::kHitsPerLearn; ++k) {
    UnwindKey key{0x401000 + k, 0x7ffd0000, 0};
    ASSERT_FALSE(cache->ShouldLearn(key));
    ASSERT_TRUE(cache->ShouldLearn(key));
    cache->Learn(key, frames, 1, 5);  // refused (frames[0] != key.ip)
  }
  UnwindKey next{0x500000, 0x7ffd0000, 0};
  EXPECT_FALSE(cache->ShouldLearn(next));  // the cost check ends the window...
  EXPECT_FALSE(cache->Active());           // ...and the cache stands aside
}

}  // namespace
}  // namespace heapsight::preload
