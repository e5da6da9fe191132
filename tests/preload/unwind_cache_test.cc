// tests/preload/unwind_cache_test.cc: unit tests of the unwind cache's
// pieces: the DWARF rules it steps with (unwinder_cfi.h), the stack table's
// Extend that splices onto a known node, and when the cache stands aside.
// Its stacks themselves need the real preload and are checked end to end,
// against libunwind on every event, by tests/scenarios/unwind_cache_test.cc
// and tests/scenarios/deep_unwind_test.cc.
#include "preload/unwind_cache.h"

#include <gtest/gtest.h>

#include <memory>
#include <thread>
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

// Stacks built to meet the cache's memos: Drive -> outer -> Mid -> top ->
// CaptureHere, with `outer` (Outer1 or Outer2) and `top` (TopA or TopB)
// called through pointers from one call site each, so that the routes'
// frames have the same ip and sp wherever they are the same function.
struct Route {
  UnwindCache* cache;
  StackTable* table;
  void (*top)(Route*);
  uint64_t leaf;
  bool captured;
};
volatile int g_sink = 0;

__attribute__((noinline)) void CaptureHere(Route* r) {
  UnwindKey key;
  ASSERT_TRUE(CurrentUnwindKey(&key));  // this function's frame is the first
  uint64_t first = 0, last = 0;
  r->captured = r->cache->Capture(key, 256, r->table, &r->leaf, &first, &last);
  // The entry test's records follow every change of the memos.
  EXPECT_TRUE(r->cache->EntriesInSyncForTest());
  asm volatile("" ::: "memory");
}
__attribute__((noinline)) void TopA(Route* r) {
  CaptureHere(r);
  g_sink = g_sink + 1;
}
__attribute__((noinline)) void TopB(Route* r) {
  CaptureHere(r);
  g_sink = g_sink + 2;
}
__attribute__((noinline)) void Mid(Route* r) {
  void (*top)(Route*) = r->top;
  asm volatile("" : "+r"(top));  // one indirect call site
  top(r);
  g_sink = g_sink + 3;
}
__attribute__((noinline)) void Outer1(Route* r) {
  Mid(r);
  g_sink = g_sink + 4;
}
__attribute__((noinline)) void Outer2(Route* r) {
  Mid(r);
  g_sink = g_sink + 5;
}
__attribute__((noinline)) void Drive(void (*outer)(Route*), Route* r) {
  asm volatile("" : "+r"(outer));
  outer(r);
  g_sink = g_sink + 6;
}
// `levels` more frames under Drive.
__attribute__((noinline)) void Deeper(int levels, void (*outer)(Route*), Route* r) {
  if (levels == 0) {
    Drive(outer, r);
  } else {
    Deeper(levels - 1, outer, r);
  }
  g_sink = g_sink + 7;
}

// Runs one route through `cache`: the words the cache checked for it.
uint64_t RunRoute(UnwindCache* cache, StackTable* table, void (*outer)(Route*), void (*top)(Route*),
             int levels, uint64_t* leaf) {
  Route r{cache, table, top, 0, false};
  const uint64_t before = cache->stats().words_checked;
  Deeper(levels, outer, &r);
  EXPECT_TRUE(r.captured);
  *leaf = r.leaf;
  return cache->stats().words_checked - before;
}

// Runs routes one after the other, each through its cache, from one call
// site (so that all frames out of Deeper's are the same in every route):
// the words each cache checked for it, and its stack.
struct Step {
  UnwindCache* cache;
  void (*outer)(Route*);
  void (*top)(Route*);
  uint64_t words = 0;
  uint64_t leaf = 0;
};
void RunSteps(StackTable* table, int levels, std::vector<Step>* steps) {
  for (Step& s : *steps) s.words = RunRoute(s.cache, table, s.outer, s.top, levels, &s.leaf);
}

// Runs `body` on a new thread: the cache starts after a thread's first
// events, when it reads the thread's stack bounds (once per thread; the
// test above clears this thread's).
template <typename Body>
void OnNewThread(Body body) {
  std::thread thread([&] {
    auto warm = std::make_unique<UnwindCache>();
    StackTable table;
    for (uint32_t i = 0; i < UnwindCache::kWarmupEvents; ++i) {
      Route r{warm.get(), &table, TopA, 0, false};
      Deeper(0, Outer1, &r);
      EXPECT_FALSE(r.captured);  // warming up: left to libunwind
    }
    ASSERT_NE(t_stack_high, 0u);
    body();
  });
  thread.join();
}

// Every frame of this file keeps a frame pointer: its saved rbp and its
// return address are checked, as one pair, so ten frames more are twenty
// words more; and the stack spliced from a memo is the walked one.
TEST(UnwindCacheStacks, FramePointerFramesCheckTwoWordsEach) {
  OnNewThread([] {
    auto table = std::make_unique<StackTable>();
    uint64_t words[2];
    for (int k = 0; k < 2; ++k) {
      auto cache = std::make_unique<UnwindCache>();
      std::vector<Step> steps = {{cache.get(), Outer1, TopA, 0, 0}, {cache.get(), Outer1, TopA, 0, 0}};
      RunSteps(table.get(), 5 + 10 * k, &steps);
      EXPECT_EQ(steps[0].words, 0u);  // walked, learnt
      EXPECT_EQ(steps[1].leaf, steps[0].leaf);
      EXPECT_EQ(cache->stats().learnt, 1u);
      EXPECT_EQ(cache->stats().hits, 1u);
      EXPECT_EQ(cache->stats().stepped, cache->stats().spliced);  // all of it, once each
      words[k] = steps[1].words;
    }
    EXPECT_EQ(words[1] - words[0], 20u);
  });
}

// Two memos share their outer frames (route B spliced onto route A's memo
// at Mid and copied into a memo of its own). When both are met in one
// event, the words they share are read once: a stack that differs from
// both below Mid (Outer2 instead of Outer1) costs the words of one memo's
// check and the other's probe word, not a second check of the shared
// frames. Every stack is the one a fresh cache walks.
TEST(UnwindCacheStacks, SharedOuterFramesAreCheckedOnce) {
  OnNewThread([] {
    auto table = std::make_unique<StackTable>();
    auto cache = std::make_unique<UnwindCache>();
    auto fresh_b = std::make_unique<UnwindCache>();
    auto fresh_a = std::make_unique<UnwindCache>();
    auto fresh_moved = std::make_unique<UnwindCache>();
    auto solo = std::make_unique<UnwindCache>();
    std::vector<Step> steps = {
        {cache.get(), Outer1, TopA, 0, 0},          // 0: learnt
        {cache.get(), Outer1, TopB, 0, 0},          // 1: spliced at Mid, copied
        {cache.get(), Outer1, TopA, 0, 0},          // 2: memo A at the entry
        {cache.get(), Outer2, TopA, 0, 0},          // 3: differs from both at Mid
        {fresh_b.get(), Outer1, TopB, 0, 0},        // 4-6: the same stacks, walked
        {fresh_a.get(), Outer1, TopA, 0, 0},
        {fresh_moved.get(), Outer2, TopA, 0, 0},
        {solo.get(), Outer1, TopA, 0, 0},           // 7-8: route A, then moved,
        {solo.get(), Outer2, TopA, 0, 0},           // without memo B
    };
    RunSteps(table.get(), 30, &steps);
    EXPECT_EQ(steps[0].words, 0u);
    EXPECT_EQ(steps[1].leaf, steps[4].leaf);
    EXPECT_EQ(steps[2].leaf, steps[5].leaf);
    EXPECT_EQ(steps[2].leaf, steps[0].leaf);
    EXPECT_EQ(steps[3].leaf, steps[6].leaf);
    EXPECT_NE(steps[3].leaf, steps[2].leaf);
    // Route A again: memo A's probe word (where B differs) and all its
    // words. Under Outer2: memo A's check fails in its innermost words (at
    // Mid's return address), and its words out of Drive's frame, where the
    // walk meets it again, hold; memo B's frames, at the entry and in the
    // walk at Mid, are known changed from memo A's check, without a read:
    // memo B costs one word, memo A's probe (a cache that never had memo
    // B reads the same words but that one).
    EXPECT_GT(steps[2].words, 60u);
    EXPECT_EQ(steps[3].words, steps[8].words + 1);
    EXPECT_LT(steps[3].words, steps[2].words + 2 * UnwindCache::kInnerPairs + 8);
    EXPECT_EQ(cache->stats().hits, 3u);
    EXPECT_EQ(cache->stats().learnt, 1u);
    for (int k = 4; k < 8; ++k) EXPECT_EQ(steps[k].words, 0u);
    EXPECT_EQ(steps[8].leaf, steps[3].leaf);
  });
}

// Two call sites that alternate above one frame (TopA and TopB under Mid,
// as an interpreter's allocation sites under its eval loop) once every
// memo holds a stack: the first TopB stack is spliced onto TopA's memo at
// Mid and copied into a memo unused for kStaleAfter events; from then on
// each site has a memo of its own that shares Mid's frames with the
// other's, and both are found at the entry with no step (before, TopB's
// stack replaced TopA's top in place and each event stepped two frames).
// Every stack is the one a fresh cache walks.
TEST(UnwindCacheStacks, AlternatingTopsKeepAMemoEach) {
  OnNewThread([] {
    auto table = std::make_unique<StackTable>();
    auto cache = std::make_unique<UnwindCache>();
    auto fresh_a = std::make_unique<UnwindCache>();
    auto fresh_b = std::make_unique<UnwindCache>();
    // All from one call site (below), so that the stacks differ only where
    // the routes do.
    struct Run {
      UnwindCache* cache;
      void (*top)(Route*);
      int levels;
      uint64_t leaf = 0;
      uint64_t stepped = 0;  // cache->stats().stepped after the run
    };
    std::vector<Run> runs;
    // Eight depths: eight memos, none empty.
    for (int levels = 0; levels < static_cast<int>(UnwindCache::kMemos); ++levels) {
      runs.push_back({cache.get(), TopA, levels});
    }
    for (uint32_t k = 0; k <= UnwindCache::kStaleAfter; ++k) runs.push_back({cache.get(), TopA, 3});
    const size_t alternation = runs.size();
    for (int k = 0; k < 20; ++k) {
      runs.push_back({cache.get(), TopB, 3});
      runs.push_back({cache.get(), TopA, 3});
    }
    runs.push_back({fresh_a.get(), TopA, 3});
    runs.push_back({fresh_b.get(), TopB, 3});
    for (Run& r : runs) {
      RunRoute(r.cache, table.get(), Outer1, r.top, r.levels, &r.leaf);
      r.stepped = r.cache->stats().stepped;
    }
    const uint64_t want_a = runs[runs.size() - 2].leaf, want_b = runs.back().leaf;
    ASSERT_NE(want_a, want_b);
    for (size_t k = UnwindCache::kMemos; k < runs.size() - 2; ++k) {
      ASSERT_EQ(runs[k].leaf, runs[k].top == TopA ? want_a : want_b) << k;
    }
    // CaptureHere's and TopB's frames, once.
    EXPECT_EQ(runs[alternation].stepped - runs[alternation - 1].stepped, 2u);
    EXPECT_EQ(runs[runs.size() - 3].stepped, runs[alternation].stepped);
    EXPECT_EQ(cache->stats().learnt, 1u);
  });
}

}  // namespace
}  // namespace heapsight::preload
