// tests/analyzer/model/mapped_vector_test.cc: MappedVector holds what a
// std::vector given the same calls holds, across the switch from the heap
// to a mapping and across growths that move the mapping's pages; large
// arrays are aligned to a huge page; copies and moves are deep and
// independent.
#include "analyzer/model/mapped_vector.h"

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

struct Record {
  uint64_t a = 0;
  uint64_t b = 7;  // value-initialized elements carry the defaults
  char pad[112] = {};
};
static_assert(sizeof(Record) == 128);

Record Make(uint64_t i) {
  Record r;
  r.a = i;
  r.b = i * 3 + 1;
  r.pad[111] = static_cast<char>(i);
  return r;
}

void ExpectSame(const MappedVector<Record>& got, const std::vector<Record>& want) {
  ASSERT_EQ(got.size(), want.size());
  ASSERT_EQ(got.empty(), want.empty());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(got[i].a, want[i].a) << i;
    ASSERT_EQ(got[i].b, want[i].b) << i;
    ASSERT_EQ(got[i].pad[111], want[i].pad[111]) << i;
  }
}

TEST(MappedVectorTest, PushBackPastSeveralGrowthsKeepsEveryElement) {
  MappedVector<Record> v;
  std::vector<Record> want;
  const size_t per_map = MappedVector<Record>::kMapBytes / sizeof(Record);
  const size_t n = 5 * per_map + 123;  // heap, then four mapped growths
  const Record* last_data = nullptr;
  int moves = 0;
  for (size_t i = 0; i < n; ++i) {
    v.push_back(Make(i));
    want.push_back(Make(i));
    if (v.data() != last_data) {
      ++moves;
      last_data = v.data();
    }
    ASSERT_GE(v.capacity(), v.size());
  }
  EXPECT_GE(moves, 4);
  ExpectSame(v, want);
  // Large: aligned to a huge page (the mapping's start).
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHugePageBytes, 0u);
  EXPECT_EQ(v.front().a, 0u);
  EXPECT_EQ(v.back().a, n - 1);
  size_t count = 0;
  for (const Record& r : v) count += r.a == count ? 1 : 0;
  EXPECT_EQ(count, n);
}

TEST(MappedVectorTest, ResizeValueInitializesAndKeepsThePrefix) {
  MappedVector<Record> v;
  std::vector<Record> want;
  std::mt19937_64 rng(16);
  const size_t per_map = MappedVector<Record>::kMapBytes / sizeof(Record);
  // One site at a time, as the site timeline grows, with jumps over the
  // mapping threshold and shrinks in between.
  for (int step = 0; step < 400; ++step) {
    size_t n;
    switch (rng() % 4) {
      case 0:
        n = v.size() + 1;
        break;
      case 1:
        n = v.size() + rng() % (per_map / 3);
        break;
      case 2:
        n = v.size() / 2;
        break;
      default:
        n = v.size();
        break;
    }
    v.resize(n);
    want.resize(n);
    for (size_t i = 0; i < n; i += 1 + rng() % 97) {
      v[i] = Make(i + static_cast<uint64_t>(step));
      want[i] = Make(i + static_cast<uint64_t>(step));
    }
    ASSERT_NO_FATAL_FAILURE(ExpectSame(v, want)) << "step " << step;
  }
  v.clear();
  EXPECT_TRUE(v.empty());
  v.resize(3);
  EXPECT_EQ(v[2].b, 7u);  // the default, not what was there before clear
}

TEST(MappedVectorTest, CopiesAndMovesAreIndependent) {
  const size_t n = 2 * MappedVector<Record>::kMapBytes / sizeof(Record) + 5;
  for (size_t size : {size_t{0}, size_t{3}, n}) {
    MappedVector<Record> v;
    std::vector<Record> want;
    for (size_t i = 0; i < size; ++i) {
      v.push_back(Make(i));
      want.push_back(Make(i));
    }
    MappedVector<Record> copy = v;
    ExpectSame(copy, want);
    if (size != 0) copy[0].a = 99;
    ExpectSame(v, want);  // the original is untouched
    MappedVector<Record> assigned;
    assigned.push_back(Make(5));
    assigned = v;
    ExpectSame(assigned, want);
    MappedVector<Record> moved = std::move(v);
    ExpectSame(moved, want);
    EXPECT_TRUE(v.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty
    v.push_back(Make(1));    // and usable
    EXPECT_EQ(v.size(), 1u);
    MappedVector<Record> target;
    target.resize(n);
    target = std::move(moved);
    ExpectSame(target, want);
  }
}

TEST(MappedVectorTest, ReserveKeepsElementsAndSizeAndAvoidsGrowths) {
  MappedVector<Record> v;
  v.push_back(Make(1));
  const size_t n = MappedVector<Record>::kMapBytes / sizeof(Record) * 3;
  v.reserve(n);
  EXPECT_GE(v.capacity(), n);
  EXPECT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].b, 4u);
  const Record* data = v.data();
  for (size_t i = 1; i < n; ++i) v.push_back(Make(i));
  EXPECT_EQ(v.data(), data);  // no growth within the reserved room
  EXPECT_EQ(v[n - 1].a, n - 1);
}

}  // namespace
}  // namespace heapsight::analyzer
