// tests/preload/internal_alloc_test.cc: the preload's own memory
// (preload/internal_alloc.h): the bump arena's alignment and chunking, and
// the direct mappings for large requests.
#include "preload/internal_alloc.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

namespace heapsight::preload {
namespace {

uintptr_t Addr(const void* p) { return reinterpret_cast<uintptr_t>(p); }

TEST(InternalAlloc, ArenaBlocksAreAlignedZeroedAndDisjoint) {
  std::vector<std::pair<uintptr_t, size_t>> blocks;
  // ~3 MiB in all: several 1 MiB chunks.
  for (size_t i = 0; i < 3000; ++i) {
    size_t size = 1 + (i * 37) % 2000;
    auto* p = static_cast<unsigned char*>(ArenaAlloc(size));
    ASSERT_NE(p, nullptr);
    ASSERT_EQ(Addr(p) % 16, 0u) << i;
    for (size_t k = 0; k < size; ++k) ASSERT_EQ(p[k], 0) << i;  // fresh pages
    std::memset(p, 0xab, size);
    blocks.emplace_back(Addr(p), size);
  }
  std::sort(blocks.begin(), blocks.end());
  for (size_t i = 1; i < blocks.size(); ++i) {
    ASSERT_LE(blocks[i - 1].first + blocks[i - 1].second, blocks[i].first) << i;
  }
}

TEST(InternalAlloc, ConsecutiveSmallBlocksAreAdjacentRoundedTo16) {
  // Fill to a fresh chunk first, so the next two come from the same one.
  void* big = ArenaAlloc(256 * 1024);  // the largest arena request
  ASSERT_NE(big, nullptr);
  void* a = ArenaAlloc(1);
  void* b = ArenaAlloc(17);
  void* c = ArenaAlloc(16);
  if (Addr(b) == Addr(a) + 16) {  // a and b share a chunk
    EXPECT_EQ(Addr(c), Addr(b) + 32);
  } else {
    ADD_FAILURE() << "a=" << a << " b=" << b;
  }
}

TEST(InternalAlloc, LargeRequestsGetTheirOwnPages) {
  // Over a quarter of the 1 MiB chunk: mapped directly, page-aligned.
  void* p = ArenaAlloc(256 * 1024 + 1);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(Addr(p) % 4096, 0u);
  void* q = ArenaAlloc(64);
  EXPECT_TRUE(Addr(q) + 64 <= Addr(p) || Addr(q) >= Addr(p) + 256 * 1024 + 16);
  void* page = PageAlloc(3 * 4096);
  ASSERT_NE(page, nullptr);
  EXPECT_EQ(Addr(page) % 4096, 0u);
  std::memset(page, 1, 3 * 4096);
  PageFree(page, 3 * 4096);
  PageFree(nullptr, 4096);  // a no-op
  EXPECT_EQ(PageAlloc(~size_t{0} / 2), nullptr);  // cannot be mapped: nullptr, no crash
}

TEST(InternalAlloc, ThreadsGetDisjointBlocks) {
  std::vector<std::vector<uintptr_t>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t, &got] {
      for (int i = 0; i < 5000; ++i) got[t].push_back(Addr(ArenaAlloc(48)));
    });
  }
  for (auto& th : threads) th.join();
  std::vector<uintptr_t> all;
  for (const auto& v : got) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  for (size_t i = 1; i < all.size(); ++i) ASSERT_GE(all[i], all[i - 1] + 48) << i;
}

}  // namespace
}  // namespace heapsight::preload
