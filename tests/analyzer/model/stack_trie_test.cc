// tests/analyzer/model/stack_trie_test.cc: StackTrie against a plain map on
// the node patterns traces hold (dense ids from 1, a fork child's file
// redefining nodes, corrupt ids and parents beyond 32 bits, cut markers as
// ips), its node order, and its memory: 12 bytes a node in 48 KiB pages.
#include "analyzer/model/stack_trie.h"

#include <cstdint>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "format/trace_format.h"
#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

// Applies the same definitions to the trie and to a map (first one wins),
// checking every answer.
class Checker {
 public:
  void Define(uint64_t node, uint64_t parent, uint64_t ip) {
    bool want = ref_.count(node) == 0;
    ASSERT_EQ(trie_.Define(node, parent, ip), want) << node;
    if (want) ref_[node] = {parent, ip};
  }
  void CheckAll(const std::vector<uint64_t>& absent) {
    ASSERT_EQ(trie_.size(), ref_.size());
    for (const auto& [node, want] : ref_) {
      StackNode got;
      ASSERT_TRUE(trie_.Find(node, &got)) << node;
      EXPECT_EQ(got.parent, want.first) << node;
      EXPECT_EQ(got.ip, want.second) << node;
    }
    for (uint64_t node : absent) {
      if (ref_.count(node) == 0) {
        EXPECT_FALSE(trie_.Contains(node)) << node;
      }
    }
    std::vector<std::pair<uint64_t, std::pair<uint64_t, uint64_t>>> visited;
    trie_.ForEach([&](uint64_t node, const StackNode& n) {
      visited.push_back({node, {n.parent, n.ip}});
    });
    std::vector<std::pair<uint64_t, std::pair<uint64_t, uint64_t>>> want(ref_.begin(), ref_.end());
    EXPECT_EQ(visited, want);  // every node once, ascending
  }
  const StackTrie& trie() const { return trie_; }

 private:
  StackTrie trie_;
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> ref_;
};

TEST(StackTrieTest, EmptyFindsNothing) {
  StackTrie trie;
  EXPECT_EQ(trie.size(), 0u);
  EXPECT_TRUE(trie.empty());
  EXPECT_FALSE(trie.Contains(0));
  EXPECT_FALSE(trie.Contains(1));
  EXPECT_FALSE(trie.Contains(StackTrie::kDenseLimit + 5));
  EXPECT_EQ(trie.MemoryBytes(), 0u);
  int calls = 0;
  trie.ForEach([&](uint64_t, const StackNode&) { ++calls; });
  EXPECT_EQ(calls, 0);
}

TEST(StackTrieTest, FirstDefinitionWins) {
  StackTrie trie;
  EXPECT_TRUE(trie.Define(5, 0, 0x401000));
  EXPECT_FALSE(trie.Define(5, 3, 0x402000));
  EXPECT_TRUE(trie.Define(6, 5, 0x403000));
  StackNode n;
  ASSERT_TRUE(trie.Find(5, &n));
  EXPECT_EQ(n.parent, 0u);
  EXPECT_EQ(n.ip, 0x401000u);
  ASSERT_TRUE(trie.Find(6, &n));
  EXPECT_EQ(n.parent, 5u);
  EXPECT_EQ(n.ip, 0x403000u);
  EXPECT_FALSE(trie.Contains(4));
  EXPECT_FALSE(trie.Contains(7));
  EXPECT_FALSE(trie.Contains(4096 + 5));  // a page not made
  EXPECT_EQ(trie.size(), 2u);
}

TEST(StackTrieTest, KeepsEverySixtyFourBitIpAndTheSelfParent) {
  Checker c;
  // Cut markers (a root's ip at or above kStackCutMarker), ips with the
  // high half set, 0, and a node that is its own parent (old preloads'
  // root form, which the walks stop at).
  c.Define(1, 0, format::kStackCutMarker + 12);
  c.Define(2, 1, 0xffffffffffffffffull);
  c.Define(3, 2, 0);
  c.Define(4, 4, 0x00007fffdeadbeefull);
  c.Define(5, 3, 0x0000000100000000ull);
  c.CheckAll({0, 6, 7});
}

TEST(StackTrieTest, IdsAndParentsBeyondTheArrayGoToTheMap) {
  Checker c;
  constexpr uint64_t kLimit = StackTrie::kDenseLimit;
  c.Define(1, 0, 0x1000);
  c.Define(kLimit - 1, 1, 0x2000);          // the last dense id
  c.Define(kLimit, kLimit - 1, 0x3000);     // the first in the map
  c.Define(kLimit, 1, 0x3001);              // again: the first wins there too
  c.Define(~uint64_t{0}, kLimit, 0x4000);   // the largest id
  c.Define(7, uint64_t{1} << 40, 0x5000);   // a parent beyond 32 bits
  c.Define(7, 1, 0x5001);                   // again
  c.Define(8, 0xfffffffeull, 0x6000);       // the array's own markers as parents
  c.Define(9, 0xffffffffull, 0x7000);
  c.Define(10, 0xfffffffdull, 0x8000);      // the largest parent the array holds
  c.CheckAll({0, 2, 11, kLimit + 1, kLimit - 2, ~uint64_t{0} - 1});
  EXPECT_EQ(c.trie().size(), 8u);
}

TEST(StackTrieTest, MatchesAMapOnRandomTries) {
  std::mt19937_64 rng(16);
  for (int round = 0; round < 10; ++round) {
    Checker c;
    std::vector<uint64_t> absent;
    uint64_t next = 1 + rng() % 3;
    for (int i = 0; i < 20000; ++i) {
      switch (rng() % 20) {
        case 0:  // a fork child's file redefines an older node
          c.Define(1 + rng() % next, rng() % next, rng());
          break;
        case 1:  // ids skipped (another process's numbering, a gap)
          next += rng() % 2000;
          absent.push_back(next - 1);
          break;
        case 2:  // corrupt: a huge id or parent
          c.Define(rng() | (uint64_t{1} << 63), rng(), rng());
          c.Define(next++, rng() | (uint64_t{1} << 35), rng());
          break;
        default: {  // a new node, its parent older
          uint64_t node = next++;
          c.Define(node, rng() % node, rng() % 8 == 0 ? format::kStackCutMarker + rng() % 4
                                                      : 0x400000 + rng() % (1 << 30));
        }
      }
      ASSERT_FALSE(::testing::Test::HasFatalFailure());
    }
    absent.push_back(next);
    absent.push_back(next + 4096 * 3);
    c.CheckAll(absent);
  }
}

TEST(StackTrieTest, TwelveBytesANodeInPages) {
  StackTrie trie;
  // cc1plus-like: 10,000 nodes from 1, in 3 pages of 4096 nodes.
  for (uint64_t node = 1; node <= 10000; ++node) trie.Define(node, node - 1, 0x400000 + node);
  const size_t page = StackTrie::kPageNodes * 12;
  EXPECT_EQ(page, 49152u);
  // 3 pages, and a page table of 4 slots (1, 2, then doubled to 4) of 24
  // bytes.
  EXPECT_EQ(trie.MemoryBytes(), 3 * page + 4 * 24);
  EXPECT_EQ(trie.size(), 10000u);
  // A node far ahead makes its page only (and the table up to it).
  trie.Define(100 * StackTrie::kPageNodes + 1, 1, 0x500000);
  EXPECT_EQ(trie.MemoryBytes(), 4 * page + 101 * 24);
}

}  // namespace
}  // namespace heapsight::analyzer
