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

}  // namespace
}  // namespace heapsight::preload
