// tests/preload/live_table_test.cc: unit tests of preload/live_table.
#include "preload/live_table.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <thread>
#include <vector>

namespace heapsight::preload {
namespace {

using format::Api;

LiveEntry Entry(uint64_t id, uint64_t size, uint64_t stack = 0, Api api = Api::kMalloc) {
  return LiveEntry{id, size, stack, api, false};
}

TEST(LiveTable, InsertRemoveRoundTrip) {
  static LiveTable table;
  ASSERT_TRUE(table.Insert(0x1000, Entry(7, 100, 42, Api::kNewArray)));
  EXPECT_TRUE(table.Contains(0x1000));
  LiveEntry e;
  ASSERT_TRUE(table.Remove(0x1000, &e));
  EXPECT_EQ(e.id, 7u);
  EXPECT_EQ(e.size, 100u);
  EXPECT_EQ(e.stack, 42u);
  EXPECT_EQ(e.api, Api::kNewArray);
  EXPECT_FALSE(e.internal);
  EXPECT_FALSE(table.Remove(0x1000, &e));
  EXPECT_FALSE(table.Contains(0x1000));
}

TEST(LiveTable, InternalFlagAndNullAddress) {
  static LiveTable table;
  LiveEntry internal;
  internal.internal = true;
  ASSERT_TRUE(table.Insert(0x2000, internal));
  LiveEntry e;
  ASSERT_TRUE(table.Remove(0x2000, &e));
  EXPECT_TRUE(e.internal);
  EXPECT_FALSE(table.Insert(0, Entry(1, 1)));
}

TEST(LiveTable, ManyEntriesMatchAReferenceMap) {
  static LiveTable table;
  std::map<uintptr_t, uint64_t> reference;
  std::mt19937_64 rng(1);
  for (int step = 0; step < 200000; ++step) {
    uintptr_t address = (rng() % 50000 + 1) * 16;
    if (rng() % 3 != 0) {
      table.Insert(address, Entry(step, address));
      reference[address] = static_cast<uint64_t>(step);
    } else {
      LiveEntry e;
      bool found = table.Remove(address, &e);
      auto it = reference.find(address);
      ASSERT_EQ(found, it != reference.end());
      if (found) {
        EXPECT_EQ(e.id, it->second);
        reference.erase(it);
      }
    }
  }
  EXPECT_EQ(table.Size(), reference.size());
  size_t visited = 0;
  table.ForEachUnlocked(
      [](uintptr_t, const LiveEntry&, void* ctx) { ++*static_cast<size_t*>(ctx); }, &visited);
  EXPECT_EQ(visited, reference.size());
}

TEST(LiveTable, ConcurrentThreadsOnDisjointAddresses) {
  static LiveTable table;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int round = 0; round < 20; ++round) {
        for (uintptr_t i = 1; i <= 5000; ++i) table.Insert((i * 4 + t) * 16, Entry(i, t));
        for (uintptr_t i = 1; i <= 5000; ++i) {
          LiveEntry e;
          ASSERT_TRUE(table.Remove((i * 4 + t) * 16, &e));
          ASSERT_EQ(e.id, i);
          ASSERT_EQ(e.size, static_cast<uint64_t>(t));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(table.Size(), 0u);
}

TEST(LiveTable, EveryFieldRoundTripsAtItsLimits) {
  static LiveTable table;
  // The stack id shares a word with the api and the internal flag: 55 bits.
  const uint64_t max_stack = (uint64_t{1} << 55) - 1;
  for (int api = 0; api <= 255; ++api) {
    for (bool internal : {false, true}) {
      uintptr_t address = 0x100000 + static_cast<uintptr_t>(api) * 32 + (internal ? 16 : 0);
      LiveEntry in{UINT64_MAX - static_cast<uint64_t>(api), UINT64_MAX, max_stack,
                   static_cast<Api>(api), internal};
      ASSERT_TRUE(table.Insert(address, in));
      LiveEntry out;
      ASSERT_TRUE(table.Remove(address, &out));
      EXPECT_EQ(out.id, in.id);
      EXPECT_EQ(out.size, UINT64_MAX);
      EXPECT_EQ(out.stack, max_stack);
      EXPECT_EQ(out.api, in.api);
      EXPECT_EQ(out.internal, internal);
    }
  }
  EXPECT_EQ(table.Size(), 0u);
}

TEST(LiveTable, InsertOverwritesTheSameAddress) {
  static LiveTable table;
  ASSERT_TRUE(table.Insert(0x3000, Entry(1, 10)));
  ASSERT_TRUE(table.Insert(0x3000, Entry(2, 20)));
  EXPECT_EQ(table.Size(), 1u);
  LiveEntry e;
  ASSERT_TRUE(table.Remove(0x3000, &e));
  EXPECT_EQ(e.id, 2u);
  EXPECT_EQ(e.size, 20u);
  EXPECT_FALSE(table.Remove(0x3000, &e));
}

TEST(LiveTable, RecentlyRemovedRemembersTheLastSixteenOfAShard) {
  static LiveTable table;
  // All in one 64 KiB region, hence one shard.
  const uintptr_t base = 0x7f0000000000;
  auto addr = [&](int i) { return base + static_cast<uintptr_t>(i) * 16; };
  uint64_t id = 0;
  EXPECT_FALSE(table.RecentlyRemoved(addr(0), &id));  // never seen
  ASSERT_TRUE(table.Insert(addr(0), Entry(100, 1)));
  EXPECT_FALSE(table.RecentlyRemoved(addr(0)));  // live
  LiveEntry e;
  ASSERT_TRUE(table.Remove(addr(0), &e));
  ASSERT_TRUE(table.RecentlyRemoved(addr(0), &id));
  EXPECT_EQ(id, 100u);
  // The ring does not look at the table: an address live again is still
  // "recently removed" (live_table.h says "and not live"; callers only ask
  // after Remove failed, when it cannot be live).
  ASSERT_TRUE(table.Insert(addr(0), Entry(101, 1)));
  EXPECT_TRUE(table.RecentlyRemoved(addr(0), &id));
  EXPECT_EQ(id, 100u);
  ASSERT_TRUE(table.Remove(addr(0), &e));
  // Fifteen more removals in the shard: addr(0) is still remembered...
  for (int i = 1; i <= 15; ++i) {
    ASSERT_TRUE(table.Insert(addr(i), Entry(200 + static_cast<uint64_t>(i), 1)));
    ASSERT_TRUE(table.Remove(addr(i), &e));
  }
  ASSERT_TRUE(table.RecentlyRemoved(addr(0), &id));
  EXPECT_EQ(id, 101u);  // the latest removal of that address
  ASSERT_TRUE(table.RecentlyRemoved(addr(15), &id));
  EXPECT_EQ(id, 215u);
  // ...the sixteenth pushes it out of the ring.
  ASSERT_TRUE(table.Insert(addr(16), Entry(216, 1)));
  ASSERT_TRUE(table.Remove(addr(16), &e));
  EXPECT_FALSE(table.RecentlyRemoved(addr(0), &id));
  EXPECT_TRUE(table.RecentlyRemoved(addr(1), &id));
  // A failed Remove records nothing.
  EXPECT_FALSE(table.Remove(addr(500), &e));
  EXPECT_FALSE(table.RecentlyRemoved(addr(500)));
}

TEST(LiveTable, ForEachSeesExactlyTheLiveEntries) {
  static LiveTable table;
  std::map<uintptr_t, uint64_t> want;
  for (uintptr_t i = 1; i <= 3000; ++i) {
    uintptr_t address = i * 4096 + 32;  // many regions, many shards
    table.Insert(address, Entry(i, i * 3, i + 7));
    want[address] = i;
  }
  LiveEntry e;
  for (uintptr_t i = 2; i <= 3000; i += 2) {
    ASSERT_TRUE(table.Remove(i * 4096 + 32, &e));
    want.erase(i * 4096 + 32);
  }
  std::map<uintptr_t, uint64_t> seen;
  bool fields_ok = true;
  struct Ctx {
    std::map<uintptr_t, uint64_t>* seen;
    bool* ok;
  } ctx{&seen, &fields_ok};
  table.ForEachUnlocked(
      [](uintptr_t address, const LiveEntry& entry, void* c) {
        auto* x = static_cast<Ctx*>(c);
        (*x->seen)[address] = entry.id;
        if (entry.size != entry.id * 3 || entry.stack != entry.id + 7) *x->ok = false;
      },
      &ctx);
  EXPECT_EQ(seen, want);
  EXPECT_TRUE(fields_ok);
  EXPECT_EQ(table.Size(), 1500u);
}

}  // namespace
}  // namespace heapsight::preload
