// tests/preload/stack_table_test.cc: unit tests of preload/stack_table.
#include "preload/stack_table.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <map>
#include <set>
#include <utility>
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
  // Nodes live in pages of 16,384: cross four boundaries and check the
  // nodes on both sides of two.
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
  for (uint64_t node : {uint64_t{1}, uint64_t{16384}, uint64_t{16385}, uint64_t{65535},
                        uint64_t{65536}, uint64_t{65537}, uint64_t{kStacks}}) {
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
  // Extend's lock-free edge probes find the frame 0 edge too.
  EXPECT_EQ(t.Extend(0, zero_inside, 3, &first, &last), a);
  EXPECT_GT(first, last);
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

// 70,000 one-frame stacks: both tables grow 256 -> 131,072 slots (10
// generations; the edge table grows when it would be more than 5/8 full,
// the full-stack table at 3/4), nodes
// fill 5 pages of 16,384 (12 bytes each). A table is a header (capacity,
// shift: 16 bytes) and its slots (24 bytes in the full-stack table, 8 in
// the edge table). The 9 old generations of each table stay mapped for
// lock-free readers but keep only their first 64 KiB (and a tail short of
// a 64 KiB block) resident:
//   nodes          5 x 16,384 x 12                       =   983,040
//   stack table    16 + 131,072 x 24                     = 3,145,744
//   edge table     16 + 131,072 x 8                      = 1,048,592
//   old stack tables  (256 + 512 + 1,024 + 2,048) x 24 + 4 x 16
//                     + 98,320 (4,096 slots: under two 64 KiB blocks,
//                     kept whole) + 4 x (65,536 + 16)    =   452,752
//   old edge tables   (256 + ... + 4,096) x 8 + 5 x 16 (kept whole)
//                     + 65,552 (8,192 slots, kept whole)
//                     + 3 x (65,536 + 16)                =   325,776
// = 5,955,904 bytes (85 per node: one full stack per node is this table's
// worst case). With 4,096-slot first tables it was 5,832,896; 16-byte
// nodes, 24-byte edge slots holding the key, 32-byte stack slots and
// growth at half full made it 17,596,920.
TEST(StackTable, OldGenerationsAreReturnedAfterGrowth) {
  static StackTable t;
  size_t before = ResidentBytes();
  for (uintptr_t i = 0; i < 70000; ++i) {
    uintptr_t ip = 0x900000 + i;
    uint64_t first, last;
    ASSERT_EQ(t.Intern(&ip, 1, &first, &last), i + 1);
  }
  EXPECT_EQ(t.MappedBytes(), 5955904u);
  // And the kernel agrees: the process grew by about what the table holds,
  // not by the 9.6 MB of every generation (1 MiB of slack for the test's
  // own allocations).
  size_t grown = ResidentBytes() - before;
  EXPECT_LT(grown, size_t{5955904} + (size_t{1} << 20)) << grown;
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

// A model of the trie: (parent, ip) -> id, ids in creation order.
struct ModelTrie {
  std::map<std::pair<uint64_t, uintptr_t>, uint64_t> ids;
  std::vector<std::pair<uint64_t, uintptr_t>> nodes;  // nodes[id - 1]
  // Adds the frames ips[0..count) (innermost first) on top of `base`;
  // returns the leaf and the ids created.
  uint64_t Extend(uint64_t base, const uintptr_t* ips, size_t count, uint64_t* first,
                  uint64_t* last) {
    *first = 1;
    *last = 0;
    uint64_t node = base;
    for (size_t i = count; i-- > 0;) {
      auto [it, added] = ids.emplace(std::make_pair(node, ips[i]), nodes.size() + 1);
      if (added) {
        nodes.emplace_back(node, ips[i]);
        if (*first > *last) *first = it->second;
        *last = it->second;
      }
      node = it->second;
    }
    return node;
  }
};

// Many interns and extends over a small set of frames (shared prefixes,
// repeated frames, ip 0), past several pages of nodes and growths of both
// tables: every call returns the model's leaf and new ids, and every
// node's parent and ip are the model's.
TEST(StackTable, ExactIdsAndParentsAfterManyInternsAndExtends) {
  static StackTable t;
  ModelTrie model;
  uint64_t rng = 12345;
  auto next = [&rng] {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return rng >> 33;
  };
  std::vector<uintptr_t> ips;
  for (int round = 0; round < 40000; ++round) {
    size_t depth = 1 + next() % 12;
    ips.clear();
    for (size_t i = 0; i < depth; ++i) ips.push_back(i + 1 == depth ? 0x400 : next() % 300 * 16);
    uint64_t first, last, mfirst, mlast;
    if (round % 3 == 2 && model.nodes.size() > 0) {
      // Extend on top of an existing node, as the unwind cache splices.
      uint64_t base = 1 + next() % model.nodes.size();
      uint64_t want = model.Extend(base, ips.data(), depth, &mfirst, &mlast);
      ASSERT_EQ(t.Extend(base, ips.data(), depth, &first, &last), want) << round;
    } else {
      uint64_t want = model.Extend(0, ips.data(), depth, &mfirst, &mlast);
      ASSERT_EQ(t.Intern(ips.data(), depth, &first, &last), want) << round;
    }
    ASSERT_EQ(first, mfirst) << round;
    ASSERT_EQ(last, mlast) << round;
  }
  ASSERT_EQ(t.NodeCount(), model.nodes.size());
  ASSERT_GT(model.nodes.size(), 5u * 16384);  // more than five pages of nodes
  for (uint64_t node = 1; node <= model.nodes.size(); ++node) {
    uint64_t parent = 0, ip = 0;
    t.Node(node, &parent, &ip);
    ASSERT_EQ(parent, model.nodes[node - 1].first) << node;
    ASSERT_EQ(ip, model.nodes[node - 1].second) << node;
  }
  // And everything is found again with nothing new.
  for (uint64_t node = 1; node <= model.nodes.size(); node += 5) {
    uintptr_t ip = model.nodes[node - 1].second;
    uint64_t first, last;
    ASSERT_EQ(t.Extend(model.nodes[node - 1].first, &ip, 1, &first, &last), node);
    ASSERT_GT(first, last);
  }
}

// Four threads intern and extend overlapping stacks, in different orders,
// while the tables grow: they agree on every stack's leaf, each leaf walks
// back to its stack, and the trie has exactly one node per distinct
// (parent, ip): no edge was created twice.
TEST(StackTable, ConcurrentInternsAndExtendsBuildOneTrie) {
  static StackTable t;
  constexpr uintptr_t kStacks = 30000;
  auto stack_of = [](uintptr_t i) {
    return std::vector<uintptr_t>{0x10000 + i, 0x20000 + i % 997, 0x30000 + i % 31, 0x40000};
  };
  std::vector<std::vector<uint64_t>> leaves(4, std::vector<uint64_t>(kStacks));
  std::vector<std::thread> threads;
  for (int th = 0; th < 4; ++th) {
    threads.emplace_back([&, th] {
      for (uintptr_t k = 0; k < kStacks; ++k) {
        uintptr_t i = th % 2 == 0 ? k : kStacks - 1 - k;
        std::vector<uintptr_t> s = stack_of(i);
        uint64_t first, last;
        leaves[th][i] = th < 2 ? t.Intern(s.data(), s.size(), &first, &last)
                               : t.Extend(0, s.data(), s.size(), &first, &last);
      }
    });
  }
  for (auto& x : threads) x.join();
  std::set<std::pair<uint64_t, uintptr_t>> edges;
  for (uintptr_t i = 0; i < kStacks; ++i) {
    for (int th = 1; th < 4; ++th) ASSERT_EQ(leaves[th][i], leaves[0][i]) << i;
    ASSERT_EQ(Walk(t, leaves[0][i]), stack_of(i)) << i;
  }
  for (uint64_t node = 1; node <= t.NodeCount(); ++node) {
    uint64_t parent, ip;
    t.Node(node, &parent, &ip);
    ASSERT_LT(parent, node);
    edges.emplace(parent, ip);
  }
  // One node per distinct outer part (suffix, innermost first) of a stack.
  std::set<std::vector<uintptr_t>> prefixes;
  for (uintptr_t i = 0; i < kStacks; ++i) {
    std::vector<uintptr_t> s = stack_of(i);
    for (size_t d = 1; d <= s.size(); ++d) prefixes.emplace(s.end() - d, s.end());
  }
  EXPECT_EQ(t.NodeCount(), prefixes.size());
  EXPECT_EQ(edges.size(), prefixes.size());
}

// The atfork protocol (lock before fork, unlock in the parent, reset in the
// child): the child finds every stack the parent made, with the same ids,
// and numbers its own new nodes on from the parent's count; the parent
// goes on as before.
TEST(StackTable, ForkedChildKeepsIdsAndGoesOn) {
  static StackTable t;
  std::vector<uint64_t> leaves;
  for (uintptr_t i = 0; i < 5000; ++i) {
    uintptr_t s[] = {0x100 + i, 0x200 + i % 13, 0x300};
    uint64_t first, last;
    leaves.push_back(t.Intern(s, 3, &first, &last));
  }
  uint64_t count = t.NodeCount();
  ASSERT_EQ(count, 1u + 13 + 5000);
  t.Lock();
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    t.ResetLockInChild();
    int bad = 0;
    for (uintptr_t i = 0; i < 5000; ++i) {
      uintptr_t s[] = {0x100 + i, 0x200 + i % 13, 0x300};
      uint64_t first, last;
      if (t.Intern(s, 3, &first, &last) != leaves[i]) ++bad;
      if (first <= last) ++bad;
    }
    // 100,000 new one-frame stacks: both tables grow in the child.
    for (uintptr_t i = 0; i < 100000; ++i) {
      uintptr_t ip = 0x9000000 + i;
      uint64_t first, last;
      if (t.Intern(&ip, 1, &first, &last) != count + i + 1 || first != count + i + 1) ++bad;
    }
    _exit(bad == 0 ? 0 : 1);
  }
  t.Unlock();
  uintptr_t ip = 0x8000000;
  uint64_t first, last;
  EXPECT_EQ(t.Intern(&ip, 1, &first, &last), count + 1);
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_EQ(t.NodeCount(), count + 1);
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
