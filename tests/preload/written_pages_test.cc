// tests/preload/written_pages_test.cc: WrittenPages and WriteTouch make a
// page's first access a write. /proc/self/pagemap tells a page of the
// process's own (bit 56, "exclusively mapped") from the kernel's shared
// zero page, which a read of an untouched page maps.
#include "preload/written_pages.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>

namespace heapsight::preload {
namespace {

constexpr size_t kPage = 4096;
constexpr size_t kPages = 16;

// The pagemap entry of the page holding `p` (0 if unreadable).
uint64_t PagemapEntry(const void* p) {
  int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  uint64_t entry = 0;
  off_t at = static_cast<off_t>(reinterpret_cast<uintptr_t>(p) / kPage * sizeof entry);
  if (pread(fd, &entry, sizeof entry, at) != static_cast<ssize_t>(sizeof entry)) entry = 0;
  close(fd);
  return entry;
}
bool Present(const void* p) { return (PagemapEntry(p) >> 63) & 1; }
bool OwnPage(const void* p) { return (PagemapEntry(p) >> 56) & 1; }

class WrittenPagesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    void* m = mmap(nullptr, kPages * kPage, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                   -1, 0);
    ASSERT_NE(m, MAP_FAILED);
    base_ = static_cast<unsigned char*>(m);
    // Small pages: a huge page would be the process's own at the first read.
    madvise(m, kPages * kPage, MADV_NOHUGEPAGE);
  }
  void TearDown() override { munmap(base_, kPages * kPage); }
  unsigned char* Page(size_t i) { return base_ + i * kPage; }
  unsigned char* base_ = nullptr;
};

TEST_F(WrittenPagesTest, AReadFirstMapsTheSharedZeroPage) {
  // The premise: without WrittenPages, a lookup's read maps the zero page.
  volatile unsigned char c = *Page(0);
  (void)c;
  ASSERT_TRUE(Present(Page(0)));
  EXPECT_FALSE(OwnPage(Page(0)));
}

TEST_F(WrittenPagesTest, BeforeReadGivesThePageItsOwnFrameAndKeepsItsBytes) {
  WrittenPages<kPages * kPage> pages{};
  pages.BeforeRead(base_, Page(3) + 100);
  EXPECT_TRUE(OwnPage(Page(3)));
  EXPECT_EQ(Page(3)[100], 0);
  // Only that page: its neighbours are untouched.
  EXPECT_FALSE(Present(Page(2)));
  EXPECT_FALSE(Present(Page(4)));
  // Bytes written since stay as they are when BeforeRead comes again, or
  // for another address of the page.
  Page(5)[7] = 0xab;
  pages.BeforeRead(base_, Page(5) + 7);
  pages.BeforeRead(base_, Page(5) + 9);
  EXPECT_EQ(Page(5)[7], 0xab);
  EXPECT_EQ(Page(5)[9], 0);
}

TEST_F(WrittenPagesTest, ATableThatDoesNotStartOnAPage) {
  // A table starting 100 bytes into page 1 and running 3 pages on: its
  // last bytes lie in page 4, which has a bit of its own.
  unsigned char* table = Page(1) + 100;
  WrittenPages<3 * kPage> pages{};
  pages.BeforeRead(table, table + 3 * kPage - 1);
  EXPECT_TRUE(OwnPage(Page(4)));
  pages.BeforeRead(table, table);
  EXPECT_TRUE(OwnPage(Page(1)));
  EXPECT_FALSE(Present(Page(2)));
  EXPECT_FALSE(Present(Page(3)));
}

TEST_F(WrittenPagesTest, WriteTouchRangeWritesEveryPageOfTheRange) {
  WriteTouchRange(Page(8) + 4000, 2 * kPage);  // pages 8, 9 and 10
  EXPECT_TRUE(OwnPage(Page(8)));
  EXPECT_TRUE(OwnPage(Page(9)));
  EXPECT_TRUE(OwnPage(Page(10)));
  EXPECT_FALSE(Present(Page(11)));
  EXPECT_FALSE(Present(Page(7)));
}

}  // namespace
}  // namespace heapsight::preload
