// tests/analyzer/model/huge_page_allocator_test.cc: HugePageAllocator gives
// small arrays std::allocator's memory and large ones memory aligned to a
// huge page; vectors on it grow, copy and free like std::vector's; and
// AdviseHugePages advises only whole huge pages inside its range.
#include "analyzer/model/huge_page_allocator.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

struct Record {
  uint64_t a = 0;
  uint64_t b = 0;
  char pad[112] = {};
};
static_assert(sizeof(Record) == 128);

TEST(HugePageAllocatorTest, LargeArraysAreAlignedToAHugePage) {
  HugePageAllocator<Record> alloc;
  const size_t large = HugePageAllocator<Record>::kMinBytes / sizeof(Record);
  Record* p = alloc.allocate(large);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % kHugePageBytes, 0u);
  for (size_t i = 0; i < large; ++i) p[i].a = i;  // writable throughout
  EXPECT_EQ(p[large - 1].a, large - 1);
  alloc.deallocate(p, large);
  // Below kMinBytes: std::allocator's (no alignment promised; usable).
  Record* small = alloc.allocate(3);
  small[2].b = 7;
  EXPECT_EQ(small[2].b, 7u);
  alloc.deallocate(small, 3);
}

TEST(HugePageAllocatorTest, VectorsGrowPastTheThresholdAndKeepTheirElements) {
  std::vector<Record, HugePageAllocator<Record>> v;
  const size_t n = 3 * HugePageAllocator<Record>::kMinBytes / sizeof(Record) + 17;
  for (size_t i = 0; i < n; ++i) {
    Record r;
    r.a = i;
    r.b = i * 3;
    v.push_back(r);
  }
  ASSERT_EQ(v.size(), n);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(v.data()) % kHugePageBytes, 0u);
  for (size_t i = 0; i < n; i += 4099) {
    EXPECT_EQ(v[i].a, i);
    EXPECT_EQ(v[i].b, i * 3);
  }
  std::vector<Record, HugePageAllocator<Record>> copy = v;
  EXPECT_EQ(copy[n - 1].b, (n - 1) * 3);
  v.clear();
  v.shrink_to_fit();  // back below the threshold: freed the other way
  v.resize(5);
  EXPECT_EQ(v[4].a, 0u);
  // Rebinding (what containers do) and equality.
  HugePageAllocator<uint32_t> other(copy.get_allocator());
  EXPECT_TRUE(other == copy.get_allocator());
}

TEST(HugePageAllocatorTest, AdvisesOnlyWholeHugePagesInside) {
  // A range without a whole huge page inside is left alone (no crash on
  // unaligned or tiny ranges); a large aligned one is advised.
  std::vector<char> small(4096);
  AdviseHugePages(small.data(), small.size());
  AdviseHugePages(small.data(), 0);
  HugePageAllocator<char> alloc;
  char* p = alloc.allocate(3 * kHugePageBytes);
  AdviseHugePages(p + 1, 3 * kHugePageBytes - 1);
  p[0] = 1;
  p[3 * kHugePageBytes - 1] = 2;
  EXPECT_EQ(p[0] + p[3 * kHugePageBytes - 1], 3);
  alloc.deallocate(p, 3 * kHugePageBytes);
}

}  // namespace
}  // namespace heapsight::analyzer
