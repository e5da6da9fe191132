// tests/preload/leak_snapshot_test.cc: the leak scan's block set
// (preload/leak_snapshot.h) on real glibc blocks: from the live table
// (ids, recorded sizes, internal entries) and, with address frees, from
// the cells (usable sizes, the table's internal entries merged in address
// order, a block whose allocation hook is mid-window left out); extents of
// stale cells never read unmapped memory; the sizes a block of a given
// extent may have been asked with.
#include "preload/leak_snapshot.h"

#include <gtest/gtest.h>
#include <malloc.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <map>
#include <vector>

#include "preload/live_cells.h"
#include "preload/live_table.h"
#include "preload/root_regions.h"

namespace heapsight::preload {

// What the preload's tracer_state.cc and thread_state.cc define; the test
// stands in for them.
constinit LiveTable g_live_blocks;
std::vector<uintptr_t> g_test_pending;
size_t CollectPendingCellSets(uintptr_t* out, size_t max) {
  for (size_t i = 0; i < g_test_pending.size() && i < max; ++i) out[i] = g_test_pending[i];
  return g_test_pending.size();
}

namespace {

using format::ApiFamily;

class LeakSnapshotTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A fixed mmap threshold: glibc raises its dynamic one when an mmap'ed
    // chunk is freed, and a later 1 MiB block would come from the heap.
    mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    ASSERT_TRUE(ReadMemoryMap(&map_));
  }
  void TearDown() override {
    FreeMemoryMap(&map_);
    for (void* p : blocks_) {
      uint64_t order;
      ApiFamily family;
      bool double_free;
      g_live_cells.Clear(reinterpret_cast<uintptr_t>(p), 1, &order, &family, &double_free);
      LiveEntry e;
      g_live_blocks.Remove(reinterpret_cast<uintptr_t>(p), &e);
      std::free(p);
    }
    g_test_pending.clear();
  }
  // Re-reads the map (after new mappings).
  void RefreshMap() {
    FreeMemoryMap(&map_);
    ASSERT_TRUE(ReadMemoryMap(&map_));
  }
  void* Malloc(size_t n) {
    void* p = std::malloc(n);
    std::memset(p, 0x5a, n);
    blocks_.push_back(p);
    return p;
  }
  // As the allocation hook does: the cell keeps the size's low bits.
  void SetLive(void* p, ApiFamily family, size_t size) {
    uint64_t order;
    ASSERT_EQ(g_live_cells.Set(reinterpret_cast<uintptr_t>(p), family, 1, &order, size),
              LiveCells::Result::kDone);
  }

  MemoryMap map_;
  std::vector<void*> blocks_;
};

// Every request size glibc's malloc serves with a given usable size lies
// in [LeastRequestFor(usable), usable]; so do mmap'ed chunks'.
TEST_F(LeakSnapshotTest, LeastRequestCoversEverySizeWithThatExtent) {
  for (size_t n = 0; n <= 4200; ++n) {
    void* p = std::malloc(n);
    size_t usable = malloc_usable_size(p);
    EXPECT_LE(LeastRequestFor(usable, false), n) << n;
    EXPECT_GE(usable, n);
    std::free(p);
  }
  // 24 bytes serve every request up to 24; then each 16 more.
  EXPECT_EQ(LeastRequestFor(24, false), 0u);
  EXPECT_EQ(LeastRequestFor(40, false), 25u);
  EXPECT_EQ(LeastRequestFor(5240, false), 5225u);
  for (size_t n : {size_t{200000}, size_t{1} << 20, (size_t{1} << 20) + 4000}) {
    void* p = std::malloc(n);
    size_t usable = malloc_usable_size(p);
    EXPECT_LE(LeastRequestFor(usable, true), n) << n;
    EXPECT_GT(LeastRequestFor(usable, true) + 4096 + 32, usable);
    std::free(p);
  }
}

TEST_F(LeakSnapshotTest, ExtentsAreUsableSizesAndStaleHeadersAreNeverFollowed) {
  void* small = Malloc(100);
  void* big = Malloc(1 << 20);  // mmap'ed
  RefreshMap();
  const Vma* cache = nullptr;
  bool mmapped = false;
  EXPECT_EQ(CellBlockExtent(reinterpret_cast<uintptr_t>(small), map_, &cache, &mmapped),
            malloc_usable_size(small));
  EXPECT_FALSE(mmapped);
  EXPECT_EQ(CellBlockExtent(reinterpret_cast<uintptr_t>(big), map_, &cache, &mmapped),
            malloc_usable_size(big));
  EXPECT_TRUE(mmapped);

  // A page of our own whose "chunk headers" are garbage: a size running
  // past the mapping, a next chunk past it, and a chunk not in use. The
  // page after it is PROT_NONE: a mapping of its own, never read.
  const size_t page = 4096;
  auto* area = static_cast<uint8_t*>(
      mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(area, MAP_FAILED);
  ASSERT_EQ(mprotect(area + page, page, PROT_NONE), 0);
  RefreshMap();
  auto put = [&](size_t offset, uint64_t value) { std::memcpy(area + offset, &value, 8); };
  put(8, uint64_t{1} << 40);        // block at +16: size far past the page
  put(1032, (4096 - 1024) | 1);     // block at +1040: next header past the page
  put(2056, 64 | 1);                // block at +2064: next chunk at 2048 + 64
  put(2048 + 64 + 8, 32);           //   says its previous chunk is free
  put(3080, 64 | 1);                // block at +3088: a chunk in use
  put(3072 + 64 + 8, 32 | 1);
  cache = nullptr;
  auto extent = [&](size_t offset) {
    bool m = false;
    return CellBlockExtent(reinterpret_cast<uintptr_t>(area + offset), map_, &cache, &m);
  };
  EXPECT_EQ(extent(16), 0u);
  EXPECT_EQ(extent(1040), 0u);
  EXPECT_EQ(extent(2064), 0u);
  EXPECT_EQ(extent(3088), 56u);       // 64 - 8, as malloc_usable_size says
  EXPECT_EQ(extent(page + 16), 0u);   // not readable
  munmap(area, 2 * page);
}

TEST_F(LeakSnapshotTest, TableModeTakesTheTablesEntries) {
  void* a = Malloc(40);
  void* b = Malloc(300);
  void* internal = Malloc(64);
  ASSERT_TRUE(g_live_blocks.Insert(reinterpret_cast<uintptr_t>(b), 7, 300, 11,
                                   format::Api::kMalloc, false));
  ASSERT_TRUE(g_live_blocks.Insert(reinterpret_cast<uintptr_t>(a), 9, 33, 12, format::Api::kNew,
                                   false));
  ASSERT_TRUE(g_live_blocks.Insert(reinterpret_cast<uintptr_t>(internal), 0, 0, 0,
                                   format::Api::kUnknown, true));
  LeakSnapshot s;
  ASSERT_TRUE(TakeLeakSnapshot(false, map_, &s));
  ASSERT_EQ(s.count, 3u);
  ASSERT_NE(s.entries, nullptr);
  for (size_t i = 0; i + 1 < s.count; ++i) EXPECT_LT(s.starts[i], s.starts[i + 1]);
  for (size_t i = 0; i < s.count; ++i) {
    auto* p = reinterpret_cast<void*>(s.starts[i]);
    if (p == a) {
      EXPECT_EQ(s.sizes[i], 33u);
      EXPECT_EQ(s.name(i), 9u);
      EXPECT_EQ(s.entries[i].stack, 12u);
      EXPECT_FALSE(s.internal(i));
    } else if (p == b) {
      EXPECT_EQ(s.sizes[i], 300u);
      EXPECT_EQ(s.name(i), 7u);
    } else {
      EXPECT_EQ(p, internal);
      EXPECT_TRUE(s.internal(i));
      EXPECT_EQ(s.sizes[i], malloc_usable_size(internal));
    }
  }
  FreeLeakSnapshot(&s);
}

TEST_F(LeakSnapshotTest, AddressModeTakesTheCellsAndTheInternalEntries) {
  std::vector<void*> program;
  std::map<void*, size_t> sizes;
  for (size_t n : {size_t{10}, size_t{100}, size_t{1000}, size_t{5225}, size_t{300000}}) {
    program.push_back(Malloc(n));
    sizes[program.back()] = n;
    SetLive(program.back(), n == 1000 ? ApiFamily::kNewArray : ApiFamily::kMalloc, n);
  }
  void* internal = Malloc(48);
  ASSERT_TRUE(g_live_blocks.Insert(reinterpret_cast<uintptr_t>(internal), 0, 0, 0,
                                   format::Api::kUnknown, true));
  // A program block the cells could not hold: in the table, its size known.
  void* no_cell = Malloc(70);
  ASSERT_TRUE(g_live_blocks.Insert(reinterpret_cast<uintptr_t>(no_cell), 5, 70, 3,
                                   format::Api::kMalloc, false));
  // An internal entry gone stale: the cells say a program block starts there.
  void* stale = Malloc(200);
  SetLive(stale, ApiFamily::kNew, 200);
  ASSERT_TRUE(g_live_blocks.Insert(reinterpret_cast<uintptr_t>(stale), 0, 0, 0,
                                   format::Api::kUnknown, true));
  // A block Set by a hook that was stopped before its record.
  void* pending = Malloc(90);
  SetLive(pending, ApiFamily::kMalloc, 90);
  g_test_pending = {reinterpret_cast<uintptr_t>(pending)};
  RefreshMap();

  LeakSnapshot s;
  ASSERT_TRUE(TakeLeakSnapshot(true, map_, &s));
  EXPECT_EQ(s.entries, nullptr);
  EXPECT_EQ(s.pending_skipped, 1u);
  ASSERT_EQ(s.count, program.size() + 3);  // + internal, no_cell, stale (as a program block)
  for (size_t i = 0; i + 1 < s.count; ++i) EXPECT_LT(s.starts[i], s.starts[i + 1]);
  for (size_t i = 0; i < s.count; ++i) {
    auto* p = reinterpret_cast<void*>(s.starts[i]);
    EXPECT_NE(p, pending);
    EXPECT_EQ(s.name(i), s.starts[i]);
    if (p == internal) {
      EXPECT_TRUE(s.internal(i));
      EXPECT_EQ(s.sizes[i], malloc_usable_size(p));
    } else if (p == no_cell) {
      EXPECT_FALSE(s.internal(i));
      EXPECT_EQ(s.sizes[i], 70u);
    } else if (p == stale) {
      EXPECT_FALSE(s.internal(i));
      EXPECT_EQ(s.sizes[i], 200u);
    } else {
      // A program block: the size it was asked with, from the usable size
      // and the cell's low bits; an mmap'ed one's is an upper bound.
      EXPECT_FALSE(s.internal(i)) << p;
      const size_t n = sizes[p];
      bool mmapped = (s.flags[i] & LeakSnapshot::kMmapped) != 0;
      EXPECT_EQ(mmapped, p == program.back());
      if (mmapped) {
        EXPECT_GE(s.sizes[i], n);
        EXPECT_LE(s.sizes[i], malloc_usable_size(p));
      } else {
        EXPECT_EQ(s.sizes[i], n) << p;
      }
    }
  }
  FreeLeakSnapshot(&s);
}

// hang24: a stale internal entry (its block freed and its memory reused
// or perturbed) is not followed as an mmapped chunk its header claims but
// its mapping does not hold. MALLOC_PERTURB_'s fill (0xaf bytes) has the
// IS_MMAPPED bit set: a chunk of 12 EiB, whose "usable size" once made the
// root scan read a thread's stack as part of that block and on into
// [vvar] (SIGBUS, lock_stress_program keep-in-handler in address mode).
TEST_F(LeakSnapshotTest, StaleInternalHeadersClaimingAnMmappedChunkAreNotFollowed) {
  const size_t page = 4096;
  auto* area = static_cast<uint8_t*>(
      mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(area, MAP_FAILED);
  ASSERT_EQ(mprotect(area + page, page, PROT_NONE), 0);
  std::memset(area, 0xaf, page);
  // A plausible mmapped header whose 8 KiB run past the readable page.
  const uint64_t past_header = (2 * page) | 2;
  std::memcpy(area + page / 2 - 8, &past_header, 8);
  RefreshMap();
  const auto perturbed = reinterpret_cast<uintptr_t>(area + 16);
  const auto past = reinterpret_cast<uintptr_t>(area + page / 2);
  ASSERT_TRUE(g_live_blocks.Insert(perturbed, 0, 0, 0, format::Api::kUnknown, true));
  ASSERT_TRUE(g_live_blocks.Insert(past, 0, 0, 0, format::Api::kUnknown, true));

  LeakSnapshot s;
  ASSERT_TRUE(TakeLeakSnapshot(true, map_, &s));
  size_t seen = 0;
  for (size_t i = 0; i < s.count; ++i) {
    if (s.starts[i] != perturbed && s.starts[i] != past) continue;
    ++seen;
    EXPECT_TRUE(s.internal(i));
    EXPECT_EQ(s.sizes[i], 0u) << std::hex << s.starts[i];
  }
  EXPECT_EQ(seen, 2u);
  FreeLeakSnapshot(&s);
  LiveEntry e;
  EXPECT_TRUE(g_live_blocks.Remove(perturbed, &e));
  EXPECT_TRUE(g_live_blocks.Remove(past, &e));
  munmap(area, 2 * page);
}

}  // namespace
}  // namespace heapsight::preload
