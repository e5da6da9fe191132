// tests/preload/stack_table_test.cc: unit tests of preload/stack_table.
#include "preload/stack_table.h"

#include <gtest/gtest.h>

#include <set>
#include <thread>
#include <vector>

namespace heapsight::preload {
namespace {

// Rebuilds the stack (innermost first) of a leaf node.
std::vector<uintptr_t> Walk(const StackTable& t, uint64_t node) {
  std::vector<uintptr_t> out;
  while (node != 0) {
    uint64_t parent, ip;
    t.Node(node, &parent, &ip);
    out.push_back(ip);
    node = parent;
  }
  return out;
}

TEST(StackTable, EmptyStackIsNodeZero) {
  static StackTable t;
  uint64_t first, last;
  EXPECT_EQ(t.Intern(nullptr, 0, &first, &last), 0u);
  EXPECT_GT(first, last);
}

TEST(StackTable, DedupAndSharedPrefixes) {
  static StackTable t;
  uintptr_t a[] = {0x10, 0x20, 0x30};  // innermost first
  uintptr_t b[] = {0x11, 0x20, 0x30};  // shares the two outer frames
  uint64_t first, last;
  uint64_t na = t.Intern(a, 3, &first, &last);
  EXPECT_EQ(first, 1u);
  EXPECT_EQ(last, 3u);  // three new nodes
  EXPECT_EQ(Walk(t, na), std::vector<uintptr_t>(a, a + 3));
  EXPECT_EQ(t.Intern(a, 3, &first, &last), na);
  EXPECT_GT(first, last);  // nothing new
  uint64_t nb = t.Intern(b, 3, &first, &last);
  EXPECT_EQ(first, 4u);
  EXPECT_EQ(last, 4u);  // only the new leaf
  EXPECT_EQ(Walk(t, nb), std::vector<uintptr_t>(b, b + 3));
  // A prefix of an existing stack is its own (existing) node.
  uint64_t nc = t.Intern(a + 1, 2, &first, &last);
  EXPECT_GT(first, last);
  EXPECT_EQ(Walk(t, nc), std::vector<uintptr_t>(a + 1, a + 3));
  EXPECT_EQ(t.NodeCount(), 4u);
}

TEST(StackTable, ManyStacksGrowTablesAndStayCorrect) {
  static StackTable t;
  std::vector<std::vector<uintptr_t>> stacks;
  std::vector<uint64_t> leaves;
  for (uintptr_t i = 0; i < 20000; ++i) {
    std::vector<uintptr_t> s = {0x1000 + i, 0x2000 + i % 100, 0x3000 + i % 7, 0x4000};
    uint64_t first, last;
    leaves.push_back(t.Intern(s.data(), s.size(), &first, &last));
    stacks.push_back(s);
  }
  for (size_t i = 0; i < stacks.size(); ++i) {
    uint64_t first, last;
    ASSERT_EQ(t.Intern(stacks[i].data(), stacks[i].size(), &first, &last), leaves[i]);
    ASSERT_EQ(Walk(t, leaves[i]), stacks[i]);
  }
}

TEST(StackTable, ConcurrentInternAgrees) {
  static StackTable t;
  std::vector<std::vector<uint64_t>> results(4);
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([th, &results] {
      for (uintptr_t i = 0; i < 5000; ++i) {
        uintptr_t s[] = {0x100 + i, 0x200 + i % 13, 0x300};
        uint64_t first, last;
        results[th].push_back(t.Intern(s, 3, &first, &last));
      }
    });
  }
  for (auto& x : threads) x.join();
  for (int th = 1; th < 4; ++th) EXPECT_EQ(results[th], results[0]);
  std::set<uint64_t> distinct(results[0].begin(), results[0].end());
  EXPECT_EQ(distinct.size(), 5000u);
}

TEST(StackTable, NodeIdsCountInCreationOrderAcrossPages) {
  // Nodes live in pages of 65,536: cross the first boundary and check the
  // nodes on both sides of it.
  static StackTable t;
  constexpr uintptr_t kStacks = 70000;
  for (uintptr_t i = 0; i < kStacks; ++i) {
    uintptr_t ip = 0x500000 + i;
    uint64_t first, last;
    ASSERT_EQ(t.Intern(&ip, 1, &first, &last), i + 1);
    ASSERT_EQ(first, i + 1);
    ASSERT_EQ(last, i + 1);
  }
  EXPECT_EQ(t.NodeCount(), kStacks);
  for (uint64_t node : {uint64_t{1}, uint64_t{65535}, uint64_t{65536}, uint64_t{65537},
                        uint64_t{kStacks}}) {
    uint64_t parent = 99, ip = 0;
    t.Node(node, &parent, &ip);
    EXPECT_EQ(parent, 0u) << node;
    EXPECT_EQ(ip, 0x500000 + node - 1) << node;
  }
}

TEST(StackTable, DeepestStackRoundTrips) {
  static StackTable t;
  std::vector<uintptr_t> deep(256);  // kMaxStackDepth frames
  for (size_t i = 0; i < deep.size(); ++i) deep[i] = 0x7000 + i * 8;
  uint64_t first, last;
  uint64_t leaf = t.Intern(deep.data(), deep.size(), &first, &last);
  EXPECT_EQ(first, 1u);
  EXPECT_EQ(last, 256u);
  EXPECT_EQ(leaf, 256u);  // the outermost frame is created first
  EXPECT_EQ(Walk(t, leaf), deep);
  // Each suffix (outer part) of it is already a node.
  EXPECT_EQ(t.Intern(deep.data() + 200, 56, &first, &last), 56u);
  EXPECT_GT(first, last);
}

TEST(StackTable, ZeroAndRepeatedFramesAreOrdinaryFrames) {
  static StackTable t;
  uintptr_t zero_inside[] = {0x10, 0, 0x30};
  uintptr_t repeated[] = {0x40, 0x40, 0x40};
  uint64_t first, last;
  uint64_t a = t.Intern(zero_inside, 3, &first, &last);
  EXPECT_EQ(last - first + 1, 3u);
  EXPECT_EQ(Walk(t, a), std::vector<uintptr_t>(zero_inside, zero_inside + 3));
  uint64_t b = t.Intern(repeated, 3, &first, &last);
  EXPECT_EQ(last - first + 1, 3u);
  EXPECT_EQ(Walk(t, b), std::vector<uintptr_t>(repeated, repeated + 3));
  EXPECT_NE(t.Intern(repeated, 2, &first, &last), b);
}

TEST(StackTable, HashesDependOnFrameOrderAndLength) {
  uintptr_t a[] = {1, 2, 3};
  uintptr_t b[] = {3, 2, 1};
  uint64_t a1, a2, b1, b2, c1, c2;
  HashStack(a, 3, &a1, &a2);
  HashStack(b, 3, &b1, &b2);
  EXPECT_NE(a1, b1);
  EXPECT_NE(a2, b2);
  HashStack(a, 2, &c1, &c2);  // a prefix
  EXPECT_NE(a1, c1);
  uint64_t again1, again2;
  std::vector<uintptr_t> copy(a, a + 3);
  HashStack(copy.data(), 3, &again1, &again2);
  EXPECT_EQ(again1, a1);
  EXPECT_EQ(again2, a2);
  HashStack(nullptr, 0, &c1, &c2);
  EXPECT_NE(c1, 0u);  // 0 marks an empty slot of the full-stack table
  // h1 is never 0, even over many stacks.
  for (uintptr_t i = 0; i < 100000; ++i) {
    uintptr_t s[] = {i, i * 7};
    HashStack(s, 2, &c1, &c2);
    ASSERT_NE(c1, 0u) << i;
  }
}

TEST(StackTable, TwoTablesGiveTheSameIdsForTheSameSequence) {
  static StackTable x, y;
  for (uintptr_t i = 0; i < 1000; ++i) {
    uintptr_t s[] = {0x100 + i % 37, 0x200 + i % 5, 0x300};
    uint64_t f1, l1, f2, l2;
    ASSERT_EQ(x.Intern(s, 3, &f1, &l1), y.Intern(s, 3, &f2, &l2));
    ASSERT_EQ(f1, f2);
    ASSERT_EQ(l1, l2);
  }
}

}  // namespace
}  // namespace heapsight::preload
