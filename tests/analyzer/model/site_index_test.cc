// tests/analyzer/model/site_index_test.cc: SiteIndex against a plain map on
// the keys traces hold (dense stack ids, one API a stack, now and then a
// second), on keys the array cannot hold (huge stack ids, site numbers past
// 24 bits), and its memory: 4 bytes a node in 16 KiB pages.
#include "analyzer/model/site_index.h"

#include <cstdint>
#include <map>
#include <random>
#include <utility>

#include "format/trace_format.h"
#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

using format::Api;

class Checker {
 public:
  void Insert(uint64_t stack, Api api, uint32_t site) {
    ASSERT_EQ(index_.Find(stack, api), SiteIndex::kNone) << stack;
    index_.Insert(stack, api, site);
    ref_[{stack, api}] = site;
    ASSERT_EQ(index_.Find(stack, api), site) << stack;
  }
  void CheckAll() {
    ASSERT_EQ(index_.size(), ref_.size());
    for (const auto& [key, site] : ref_) {
      ASSERT_EQ(index_.Find(key.first, key.second), site) << key.first;
    }
  }
  bool Has(uint64_t stack, Api api) const { return ref_.count({stack, api}) != 0; }
  SiteIndex& index() { return index_; }

 private:
  SiteIndex index_;
  std::map<std::pair<uint64_t, Api>, uint32_t> ref_;
};

TEST(SiteIndexTest, EmptyFindsNothing) {
  SiteIndex index;
  EXPECT_EQ(index.Find(0, Api::kMalloc), SiteIndex::kNone);
  EXPECT_EQ(index.Find(1, Api::kMalloc), SiteIndex::kNone);
  EXPECT_EQ(index.Find(uint64_t{1} << 40, Api::kNew), SiteIndex::kNone);
  EXPECT_EQ(index.size(), 0u);
  EXPECT_EQ(index.MemoryBytes(), 0u);
}

TEST(SiteIndexTest, OneApiAStackStaysInTheArray) {
  Checker c;
  // Node 0 (the empty stack) is a key like any other.
  c.Insert(0, Api::kMalloc, 0);
  c.Insert(1, Api::kNew, 1);
  c.Insert(4095, Api::kCalloc, 2);
  c.Insert(4096, Api::kRealloc, 3);
  EXPECT_EQ(c.index().Find(1, Api::kMalloc), SiteIndex::kNone);
  EXPECT_EQ(c.index().Find(2, Api::kNew), SiteIndex::kNone);
  EXPECT_EQ(c.index().Find(4097, Api::kRealloc), SiteIndex::kNone);
  EXPECT_EQ(c.index().Find(1u << 20, Api::kRealloc), SiteIndex::kNone);
  EXPECT_EQ(c.index().elsewhere_size(), 0u);
  c.CheckAll();
  // Two pages of 4096 nodes, 4 bytes each, and a page table of two pointers.
  EXPECT_EQ(c.index().MemoryBytes(), 2 * 4096 * 4 + 2 * sizeof(void*));
}

TEST(SiteIndexTest, ASecondApiOnAStackGoesBeside) {
  Checker c;
  c.Insert(7, Api::kMalloc, 0);
  c.Insert(7, Api::kNew, 1);
  c.Insert(7, Api::kUnknown, 2);  // api 0 is a key like any other
  c.Insert(8, Api::kUnknown, 3);
  EXPECT_EQ(c.index().elsewhere_size(), 2u);
  EXPECT_EQ(c.index().Find(7, Api::kCalloc), SiteIndex::kNone);
  EXPECT_EQ(c.index().Find(8, Api::kMalloc), SiteIndex::kNone);
  c.CheckAll();
}

TEST(SiteIndexTest, HugeStackIdsAndSiteNumbersGoBeside) {
  Checker c;
  const uint64_t huge = SiteIndex::kDenseLimit;
  c.Insert(huge, Api::kMalloc, 0);
  c.Insert(~uint64_t{0}, Api::kMalloc, 1);
  // A site number past 24 bits leaves its node's word empty: a later site
  // on that node with another API still finds the array.
  c.Insert(5, Api::kMalloc, SiteIndex::kDenseSites);
  c.Insert(5, Api::kNew, 2);
  c.Insert(6, Api::kMalloc, UINT32_MAX - 1);
  EXPECT_EQ(c.index().elsewhere_size(), 4u);  // all but (5, new)
  EXPECT_EQ(c.index().Find(huge + 1, Api::kMalloc), SiteIndex::kNone);
  EXPECT_EQ(c.index().Find(6, Api::kNew), SiteIndex::kNone);
  c.CheckAll();
  // No page for the huge ids: one page (nodes 0-4095) holds node 5's word.
  SiteIndex only_huge;
  only_huge.Insert(huge, Api::kMalloc, 0);
  EXPECT_EQ(only_huge.Find(huge, Api::kMalloc), 0u);
  EXPECT_EQ(only_huge.Find(0, Api::kMalloc), SiteIndex::kNone);
  EXPECT_LT(only_huge.MemoryBytes(), 4096u);
}

TEST(SiteIndexTest, RandomKeysAgreeWithAMap) {
  std::mt19937_64 rng(16);
  Checker c;
  uint32_t next = 0;
  for (int i = 0; i < 200000; ++i) {
    uint64_t stack;
    switch (rng() % 8) {
      case 0:
        stack = rng();  // mostly beyond the dense limit
        break;
      case 1:
        stack = rng() % 64;  // a few hot nodes, several APIs each
        break;
      default:
        stack = rng() % 300000;
        break;
    }
    Api api = static_cast<Api>(rng() % 4 == 0 ? rng() % 24 : 1);
    if (c.Has(stack, api)) {
      ASSERT_NE(c.index().Find(stack, api), SiteIndex::kNone);
      continue;
    }
    uint32_t site = rng() % 1000 == 0 ? SiteIndex::kDenseSites + next : next;
    ++next;
    c.Insert(stack, api, site);
  }
  c.CheckAll();
  for (int i = 0; i < 100000; ++i) {
    uint64_t stack = rng() % 400000;
    Api api = static_cast<Api>(rng() % 24);
    if (!c.Has(stack, api)) {
      ASSERT_EQ(c.index().Find(stack, api), SiteIndex::kNone) << stack;
    }
  }
}

}  // namespace
}  // namespace heapsight::analyzer
