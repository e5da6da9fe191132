// tests/preload/unwind_cache_test.cc: unit tests of the unwind cache's
// pieces: the DWARF rules it steps with (unwinder_cfi.h), the stack table's
// Extend that splices onto a known node, and when the cache stands aside.
// Its stacks themselves need the real preload and are checked end to end,
// against libunwind on every event, by tests/scenarios/unwind_cache_test.cc
// and tests/scenarios/deep_unwind_test.cc.
#include "preload/unwind_cache.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "preload/stack_table.h"
#include "preload/unwinder.h"
#include "preload/unwinder_cfi.h"

namespace heapsight::preload {
namespace {

// This file is built with frame pointers (tests/preload/meson.build): a
// return address inside Caller (after its call of Callee) has Caller's
// frame-pointer rule, CFA = rbp + 16, rbp saved at CFA - 16.
__attribute__((noinline)) uintptr_t Callee() {
  auto ra = reinterpret_cast<uintptr_t>(__builtin_return_address(0));
  asm volatile("" ::: "memory");
  return ra;
}
__attribute__((noinline)) uintptr_t Caller() {
  uintptr_t ra = Callee();
  asm volatile("" ::: "memory");  // not a tail call
  return ra;
}

TEST(FrameRule, FramePointerFunction) {
  FrameRule rule = FindFrameRule(Caller());
  EXPECT_EQ(rule.kind, FrameRule::kRbp);
  EXPECT_EQ(rule.cfa_offset, 16);
  EXPECT_TRUE(rule.rbp_saved);
  EXPECT_EQ(rule.rbp_offset, -16);
  EXPECT_FALSE(rule.end);
}

TEST(FrameRule, AddressWithoutCodeIsRefused) {
  EXPECT_EQ(FindFrameRule(0).kind, FrameRule::kRefused);
  static int data = 0;
  EXPECT_EQ(FindFrameRule(reinterpret_cast<uintptr_t>(&data)).kind, FrameRule::kRefused);
  EXPECT_EQ(FindFrameRule(uintptr_t{1} << 46).kind, FrameRule::kRefused);
}

TEST(StackTableExtend, SameNodeAsInterningTheWholeStack) {
  auto table = std::make_unique<StackTable>();
  uint64_t first, last;
  // Outer part (innermost first) and a full stack that extends it.
  std::vector<uintptr_t> outer = {0x30, 0x20, 0x10};
  uint64_t base = table->Intern(outer.data(), outer.size(), &first, &last);
  ASSERT_NE(base, 0u);
  EXPECT_EQ(first, 1u);
  EXPECT_EQ(last, 3u);
  std::vector<uintptr_t> top = {0x50, 0x40};
  uint64_t spliced = table->Extend(base, top.data(), top.size(), &first, &last);
  EXPECT_EQ(first, 4u);  // two new nodes, reported for the trace
  EXPECT_EQ(last, 5u);
  std::vector<uintptr_t> whole = {0x50, 0x40, 0x30, 0x20, 0x10};
  EXPECT_EQ(table->Intern(whole.data(), whole.size(), &first, &last), spliced);
  EXPECT_GT(first, last);  // nothing new
  // Known edges: found lock-free, nothing new.
  EXPECT_EQ(table->Extend(base, top.data(), top.size(), &first, &last), spliced);
  EXPECT_GT(first, last);
  // Nothing to add: the base itself.
  EXPECT_EQ(table->Extend(base, top.data(), 0, &first, &last), base);
  // Many edges: the lock-free reads survive the edge table's growth.
  uint64_t node = base;
  for (uintptr_t ip = 0x1000; ip < 0x1000 + 20000; ++ip) {
    uint64_t next = table->Extend(node, &ip, 1, &first, &last);
    ASSERT_EQ(first, last);
    ASSERT_EQ(table->Extend(node, &ip, 1, &first, &last), next);
    node = ip % 7 == 0 ? base : next;
  }
}

// The cache stands aside until the thread has made a few events, and off
// the thread's known stack (bounds unknown here: no preload).
TEST(UnwindCache, StandsAsideWithoutStackBounds) {
  auto cache = std::make_unique<UnwindCache>();
  auto table = std::make_unique<StackTable>();
  UnwindKey key{Caller(), reinterpret_cast<uintptr_t>(__builtin_frame_address(0)), 0};
  uint64_t leaf = 0, first = 0, last = 0;
  for (int i = 0; i < 3 * static_cast<int>(UnwindCache::kWarmupEvents); ++i) {
    t_stack_low = t_stack_high = 0;  // as for a stack the cache does not know
    EXPECT_FALSE(cache->Capture(key, 256, table.get(), &leaf, &first, &last));
  }
  EXPECT_EQ(cache->stats().lookups, 3 * UnwindCache::kWarmupEvents);
  EXPECT_EQ(cache->stats().refused, 3 * UnwindCache::kWarmupEvents);
  EXPECT_EQ(cache->stats().hits, 0u);
  EXPECT_EQ(table->NodeCount(), 0u);
}

}  // namespace
}  // namespace heapsight::preload
