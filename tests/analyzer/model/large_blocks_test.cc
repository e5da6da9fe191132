// tests/analyzer/model/large_blocks_test.cc: UseMmapForLargeBlocks keeps
// large blocks mapped on their own even after glibc would have raised its
// threshold, so freeing them returns their memory.
#include "analyzer/model/large_blocks.h"

#include <malloc.h>

#include <cstdlib>
#include <cstring>

#include <gtest/gtest.h>

namespace heapsight::analyzer {
namespace {

// Where each block's address goes, so the compiler cannot drop a malloc and
// free pair whose block is never read.
void* volatile sink = nullptr;

// Bytes malloc holds in mmapped blocks.
size_t MappedBytes() { return mallinfo2().hblkhd; }

// Allocates and frees an 8 MiB block (mapped: above any threshold), which
// makes glibc's dynamic threshold 8 MiB, then reports whether a 1 MiB
// block allocated after it is mapped on its own.
bool OneMebibyteBlockMappedAfterAnEightMebibyteFree() {
  void* big = std::malloc(8 << 20);
  std::memset(big, 1, 8 << 20);
  sink = big;
  std::free(big);
  size_t before = MappedBytes();
  void* block = std::malloc(1 << 20);
  std::memset(block, 1, 1 << 20);
  sink = block;
  bool mapped = MappedBytes() >= before + (1 << 20);
  std::free(block);
  // A mapped block is unmapped by free: nothing stays behind.
  if (mapped) {
    EXPECT_EQ(MappedBytes(), before);
  }
  return mapped;
}

// One test, in this order: the threshold is process-wide and cannot be
// unset.
TEST(LargeBlocksTest, GlibcRaisesItsThresholdUnlessItIsSet) {
  // Without the setting, the free of the 8 MiB block raised the threshold:
  // the 1 MiB block comes from the heap (where, freed, it stays resident).
  EXPECT_FALSE(OneMebibyteBlockMappedAfterAnEightMebibyteFree());
  ASSERT_TRUE(UseMmapForLargeBlocks());
  EXPECT_TRUE(UseMmapForLargeBlocks());  // idempotent
  EXPECT_TRUE(OneMebibyteBlockMappedAfterAnEightMebibyteFree());
  // Just at the threshold: mapped; well below: from the heap.
  size_t before = MappedBytes();
  void* at = std::malloc(kLargeBlockBytes);
  sink = at;
  EXPECT_GE(MappedBytes(), before + kLargeBlockBytes);
  std::free(at);
  before = MappedBytes();
  void* small = std::malloc(kLargeBlockBytes / 4);
  sink = small;
  EXPECT_EQ(MappedBytes(), before);
  std::free(small);
}

}  // namespace
}  // namespace heapsight::analyzer
