// tests/preload/stack_table_test.cc: unit tests of preload/stack_table.
#include "preload/stack_table.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
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
  EXPECT_NE(c2, 0u);  // nor is hash2: 0 is what a returned old table reads as
  // h1 is never 0, even over many stacks.
  for (uintptr_t i = 0; i < 100000; ++i) {
    uintptr_t s[] = {i, i * 7};
    HashStack(s, 2, &c1, &c2);
    ASSERT_NE(c1, 0u) << i;
  }
}

// Resident memory of this process, from /proc/self/statm.
size_t ResidentBytes() {
  long pages = 0, resident = 0;
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (f == nullptr) return 0;
  if (std::fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
  std::fclose(f);
  return static_cast<size_t>(resident) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
}

// 70,000 one-frame stacks: both tables grow 4,096 -> 262,144 slots (7
// generations; a table grows when it would be more than half full), nodes
// fill 2 pages of 65,536. A table is a size_t capacity and its slots (the
// struct declares one slot: 40 + 32 x capacity bytes for the full-stack
// table, 32 + 24 x capacity for the edge table). The 6 old generations of
// each table stay mapped for lock-free readers but keep only their first
// 64 KiB (and a tail short of a 64 KiB block) resident:
//   nodes          2 x 65,536 x 16                       = 2,097,152
//   stack table    40 + 262,144 x 32                     = 8,388,648
//   edge table     32 + 262,144 x 24                     = 6,291,488
//   old stack tables  6 x (65,536 + 40)                  =   393,456
//   old edge tables   98,336 (4,096 slots: under two 64 KiB blocks, kept
//                     whole) + 5 x (65,536 + 32)         =   426,176
// = 17,596,920 bytes. Keeping every old table whole was 31,228,408.
TEST(StackTable, OldGenerationsAreReturnedAfterGrowth) {
  static StackTable t;
  size_t before = ResidentBytes();
  for (uintptr_t i = 0; i < 70000; ++i) {
    uintptr_t ip = 0x900000 + i;
    uint64_t first, last;
    ASSERT_EQ(t.Intern(&ip, 1, &first, &last), i + 1);
  }
  EXPECT_EQ(t.MappedBytes(), 17596920u);
  // And the kernel agrees: the process grew by about what the table holds,
  // not by the 31 MB of every generation (1 MiB of slack for the test's
  // own allocations).
  size_t grown = ResidentBytes() - before;
  EXPECT_LT(grown, size_t{17596920} + (size_t{1} << 20)) << grown;
  // Every stack is still found, through both tables.
  for (uintptr_t i = 0; i < 70000; i += 7) {
    uintptr_t ip = 0x900000 + i;
    uint64_t first, last;
    ASSERT_EQ(t.Intern(&ip, 1, &first, &last), i + 1);
    ASSERT_EQ(t.Extend(0, &ip, 1, &first, &last), i + 1);
    ASSERT_GT(first, last);
  }
}

// Lock-free readers (Intern's full-stack probe, Extend's edge probes) keep
// finding the right nodes while another thread grows both tables many
// times and returns every old generation under them: a reader that still
// probes a returned table reads zeros, which never match (a miss, then the
// locked path), never a wrong node.
TEST(StackTable, ReadersOfReturnedGenerationsGetTheRightNodeOrAMiss) {
  static StackTable t;
  constexpr uintptr_t kKnown = 512;
  std::vector<uint64_t> leaves(kKnown);
  for (uintptr_t i = 0; i < kKnown; ++i) {
    uintptr_t s[] = {0x100000 + i, 0x200000 + i % 17, 0x300000};
    uint64_t first, last;
    leaves[i] = t.Intern(s, 3, &first, &last);
  }
  std::atomic<bool> done{false};
  std::atomic<uint64_t> wrong{0}, lookups{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      uint64_t n = 0;
      while (!done.load(std::memory_order_relaxed)) {
        for (uintptr_t i = r; i < kKnown; i += 3) {
          uintptr_t s[] = {0x100000 + i, 0x200000 + i % 17, 0x300000};
          uint64_t first, last;
          if (t.Intern(s, 3, &first, &last) != leaves[i]) wrong.fetch_add(1);
          if (t.Extend(0, s, 3, &first, &last) != leaves[i]) wrong.fetch_add(1);
          if (first <= last) wrong.fetch_add(1);  // nothing may be created again
          n += 2;
        }
      }
      lookups.fetch_add(n);
    });
  }
  // 100,000 new stacks of 2 new nodes each: the edge table grows to 2^19
  // slots, the full-stack table to 2^18, 7 and 6 times.
  for (uintptr_t i = 0; i < 100000; ++i) {
    uintptr_t s[] = {0x5000000 + i, 0x6000000 + i, 0x300000};
    uint64_t first, last;
    ASSERT_NE(t.Intern(s, 3, &first, &last), 0u);
  }
  done = true;
  for (auto& x : readers) x.join();
  EXPECT_EQ(wrong.load(), 0u);
  EXPECT_GT(lookups.load(), 0u);
  EXPECT_EQ(t.NodeCount(), 1 + 17 + kKnown + 2 * 100000);
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

// Extend with `nodes` gives every frame's node: nodes[k] is the leaf of
// the stack ips[k..count) on the base, the node Intern gives for that
// stack, whether the edges existed (lock-free path) or were made (locked
// path), and nodes[0] is the returned leaf.
TEST(StackTable, ExtendGivesEveryFramesNode) {
  StackTable t;
  const uintptr_t outer[] = {0x5002, 0x5001};  // innermost first
  uint64_t first, last;
  const uint64_t base = t.Intern(outer, 2, &first, &last);
  const uintptr_t top[] = {0x6003, 0x6002, 0x6001};
  for (int round = 0; round < 2; ++round) {  // made, then found
    uint64_t nodes[3] = {0, 0, 0};
    const uint64_t leaf = t.Extend(base, top, 3, &first, &last, nodes);
    EXPECT_EQ(nodes[0], leaf);
    for (int k = 0; k < 3; ++k) {
      uintptr_t whole[5];
      int n = 0;
      for (int j = k; j < 3; ++j) whole[n++] = top[j];
      whole[n++] = outer[0];
      whole[n++] = outer[1];
      uint64_t f, l;
      EXPECT_EQ(nodes[k], t.Intern(whole, static_cast<size_t>(n), &f, &l)) << round << " " << k;
    }
    if (round == 0) {
      EXPECT_EQ(last - first + 1, 3u);  // three new nodes
    } else {
      EXPECT_GT(first, last);  // none
    }
  }
}

}  // namespace
}  // namespace heapsight::preload
