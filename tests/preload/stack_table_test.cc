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

}  // namespace
}  // namespace heapsight::preload
