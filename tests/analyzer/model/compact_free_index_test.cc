// tests/analyzer/model/compact_free_index_test.cc: CompactFreeIndex releases
// the oldest live block of a (stack, size), keeps keys apart, holds frees
// that come before their block, and peeks without taking.
#include "analyzer/model/compact_free_index.h"

#include <gtest/gtest.h>

namespace heapsight::analyzer {
namespace {

TEST(CompactFreeIndex, OldestOfItsStackAndSizeFirst) {
  CompactFreeIndex index;
  index.Add(7, 16, 100);
  index.Add(7, 32, 101);  // same stack, other size
  index.Add(8, 16, 102);  // other stack, same size
  index.Add(7, 16, 103);
  uint64_t id = 0;
  ASSERT_TRUE(index.Take(7, 16, &id));
  EXPECT_EQ(id, 100u);
  ASSERT_TRUE(index.Take(7, 16, &id));
  EXPECT_EQ(id, 103u);
  EXPECT_FALSE(index.Take(7, 16, &id));
  ASSERT_TRUE(index.Take(8, 16, &id));
  EXPECT_EQ(id, 102u);
  ASSERT_TRUE(index.Take(7, 32, &id));
  EXPECT_EQ(id, 101u);
  EXPECT_EQ(index.size(), 0u);
}

TEST(CompactFreeIndex, LongQueuesStayInOrder) {
  CompactFreeIndex index;
  // Interleaved adds and takes: a FIFO of 100,000 ids whose taken prefix
  // is dropped as it grows.
  uint64_t next_add = 0, next_take = 0, id = 0;
  for (int round = 0; round < 1000; ++round) {
    for (int i = 0; i < 150; ++i) index.Add(1, 8, next_add++);
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(index.Take(1, 8, &id));
      ASSERT_EQ(id, next_take++);
    }
  }
  EXPECT_EQ(index.size(), next_add - next_take);
  ASSERT_TRUE(index.Peek(1, 8, 0, &id));
  EXPECT_EQ(id, next_take);
  ASSERT_TRUE(index.Peek(1, 8, 5, &id));
  EXPECT_EQ(id, next_take + 5);
  EXPECT_FALSE(index.Peek(1, 8, next_add - next_take, &id));
}

TEST(CompactFreeIndex, PendingFreesTakeTheNextBlock) {
  CompactFreeIndex index;
  uint64_t id = 0;
  EXPECT_FALSE(index.TakePending(3, 24));
  ASSERT_TRUE(index.AddPending(3, 24, 10));
  ASSERT_TRUE(index.AddPending(3, 24, 10));
  EXPECT_EQ(index.pending(), 2u);
  EXPECT_FALSE(index.TakePending(3, 25));  // another size
  EXPECT_TRUE(index.TakePending(3, 24));
  EXPECT_TRUE(index.TakePending(3, 24));
  EXPECT_FALSE(index.TakePending(3, 24));
  EXPECT_EQ(index.pending(), 0u);
  // The limit.
  ASSERT_TRUE(index.AddPending(1, 1, 1));
  EXPECT_FALSE(index.AddPending(2, 2, 1));
  size_t keys = 0, count = 0;
  index.ForEachPending([&](uint64_t stack, uint64_t size, size_t n) {
    ++keys;
    count += n;
    EXPECT_EQ(stack, 1u);
    EXPECT_EQ(size, 1u);
  });
  EXPECT_EQ(keys, 1u);
  EXPECT_EQ(count, 1u);
  index.Add(5, 5, 9);
  index.Remove(5, 5, 9);
  EXPECT_FALSE(index.Take(5, 5, &id));
}

}  // namespace
}  // namespace heapsight::analyzer
