// tests/preload/page_residency_test.cc: PageResidency against pages this
// test writes, discards and leaves alone in a private anonymous mapping.
#include "preload/page_residency.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace heapsight::preload {
namespace {

constexpr uintptr_t kPage = 4096;

using Runs = std::vector<std::pair<uintptr_t, uintptr_t>>;

Runs UsedRuns(PageResidency* pages, uintptr_t lo, uintptr_t hi, uint64_t* skipped) {
  Runs runs;
  *skipped =
      pages->ForEachUsedRun(lo, hi, [&](uintptr_t a, uintptr_t b) { runs.emplace_back(a, b); });
  return runs;
}

class Mapping {
 public:
  explicit Mapping(size_t pages) : bytes_(pages * kPage) {
    void* p = mmap(nullptr, bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    base_ = p == MAP_FAILED ? 0 : reinterpret_cast<uintptr_t>(p);
    // Small pages only: a huge page would make every page of its 2 MiB
    // present at the first write.
    if (base_ != 0) madvise(p, bytes_, MADV_NOHUGEPAGE);
  }
  ~Mapping() {
    if (base_ != 0) munmap(reinterpret_cast<void*>(base_), bytes_);
  }
  uintptr_t Page(size_t i) const { return base_ + i * kPage; }
  void Write(size_t page) { *reinterpret_cast<volatile uintptr_t*>(Page(page) + 8) = 42; }
  uintptr_t base() const { return base_; }
  uintptr_t end() const { return base_ + bytes_; }

 private:
  size_t bytes_;
  uintptr_t base_ = 0;
};

TEST(PageResidency, RunsAreTheWrittenPages) {
  Mapping m(2048);  // 8 MiB: four pagemap batches
  ASSERT_NE(m.base(), 0u);
  for (size_t p : {3, 4, 1000, 2047}) m.Write(p);
  PageResidency pages;
  uint64_t skipped = 0;
  Runs runs = UsedRuns(&pages, m.base(), m.end(), &skipped);
  if (pages.pages_checked() == 0) GTEST_SKIP() << "/proc/self/pagemap is not readable here";
  EXPECT_EQ(runs, (Runs{{m.Page(3), m.Page(5)}, {m.Page(1000), m.Page(1001)},
                        {m.Page(2047), m.end()}}));
  EXPECT_EQ(skipped, (2048 - 4) * kPage);
  EXPECT_EQ(pages.pages_checked(), 2048u);
  EXPECT_EQ(pages.pages_skipped(), 2048u - 4);
}

TEST(PageResidency, RunsAreClippedToTheRange) {
  Mapping m(512);
  ASSERT_NE(m.base(), 0u);
  for (size_t p : {0, 1, 2, 300}) m.Write(p);
  PageResidency pages;
  uint64_t skipped = 0;
  // From the middle of page 1 to the middle of page 300: both partial.
  uintptr_t lo = m.Page(1) + 1000, hi = m.Page(300) + 24;
  Runs runs = UsedRuns(&pages, lo, hi, &skipped);
  if (pages.pages_checked() == 0) GTEST_SKIP() << "/proc/self/pagemap is not readable here";
  EXPECT_EQ(runs, (Runs{{lo, m.Page(3)}, {m.Page(300), hi}}));
  EXPECT_EQ(skipped, (300 - 3) * kPage);
}

TEST(PageResidency, DiscardedPagesAreSkipped) {
  Mapping m(256);
  ASSERT_NE(m.base(), 0u);
  for (size_t p = 0; p < 256; ++p) m.Write(p);
  // MADV_DONTNEED: the pages read as zeros again.
  ASSERT_EQ(madvise(reinterpret_cast<void*>(m.Page(10)), 20 * kPage, MADV_DONTNEED), 0);
  PageResidency pages;
  uint64_t skipped = 0;
  Runs runs = UsedRuns(&pages, m.base(), m.end(), &skipped);
  if (pages.pages_checked() == 0) GTEST_SKIP() << "/proc/self/pagemap is not readable here";
  EXPECT_EQ(runs, (Runs{{m.base(), m.Page(10)}, {m.Page(30), m.end()}}));
  EXPECT_EQ(skipped, 20 * kPage);
}

TEST(PageResidency, ReadPagesCountAsUsed) {
  // A page only read is the shared zero page: present, so read (zeros
  // cost a scan, never a missed pointer).
  Mapping m(128);
  ASSERT_NE(m.base(), 0u);
  uintptr_t sum = *reinterpret_cast<volatile uintptr_t*>(m.Page(7));
  EXPECT_EQ(sum, 0u);
  PageResidency pages;
  uint64_t skipped = 0;
  Runs runs = UsedRuns(&pages, m.base(), m.end(), &skipped);
  if (pages.pages_checked() == 0) GTEST_SKIP() << "/proc/self/pagemap is not readable here";
  EXPECT_EQ(runs, (Runs{{m.Page(7), m.Page(8)}}));
}

TEST(PageResidency, SmallRangesAreOneRunUnchecked) {
  Mapping m(16);
  ASSERT_NE(m.base(), 0u);
  PageResidency pages;
  uint64_t skipped = 0;
  static_assert(16 * kPage < PageResidency::kMinBytes);
  Runs runs = UsedRuns(&pages, m.base(), m.end(), &skipped);
  EXPECT_EQ(runs, (Runs{{m.base(), m.end()}}));
  EXPECT_EQ(skipped, 0u);
  EXPECT_EQ(pages.pages_checked(), 0u);
}

TEST(PageResidency, NoPagemapAnswerMeansTheWholeRange) {
  // Above user space the kernel reads no entries: everything is a run.
  PageResidency pages;
  uint64_t skipped = 0;
  const uintptr_t lo = uintptr_t{1} << 62, hi = lo + (1 << 20);
  Runs runs = UsedRuns(&pages, lo, hi, &skipped);
  EXPECT_EQ(runs, (Runs{{lo, hi}}));
  EXPECT_EQ(skipped, 0u);
}

}  // namespace
}  // namespace heapsight::preload
