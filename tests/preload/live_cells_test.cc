// tests/preload/live_cells_test.cc: unit tests of preload/live_cells.
#include "preload/live_cells.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <thread>
#include <utility>
#include <vector>

namespace heapsight::preload {
namespace {

using format::AddressOrder;
using format::ApiFamily;
using format::kAddressOrderNone;
using Result = LiveCells::Result;

// The cells never touch the addresses they describe, so any on-grid
// address of user space will do.
constexpr uintptr_t kBase = uintptr_t{0x5555} << 28;  // a brk-like heap

std::unique_ptr<LiveCells> Fresh() { return std::make_unique<LiveCells>(); }

TEST(LiveCells, SetThenClearReportsFamilyAndLiveness) {
  auto cells = Fresh();
  uint64_t order = 99;
  EXPECT_FALSE(cells->IsLive(kBase));
  ASSERT_EQ(cells->Set(kBase, ApiFamily::kNew, 1, &order), Result::kDone);
  EXPECT_EQ(order, kAddressOrderNone);  // first event at the address
  EXPECT_TRUE(cells->IsLive(kBase));
  EXPECT_FALSE(cells->IsLive(kBase + 16));  // the next granule is its own
  ApiFamily family = ApiFamily::kNone;
  bool double_free = true;
  ASSERT_EQ(cells->Clear(kBase, 1, &order, &family, &double_free), Result::kDone);
  EXPECT_EQ(order, kAddressOrderNone);  // same thread as the allocation
  EXPECT_EQ(family, ApiFamily::kNew);
  EXPECT_FALSE(cells->IsLive(kBase));
}

TEST(LiveCells, OrderValuesCountHandOffs) {
  auto cells = Fresh();
  uint64_t order;
  ApiFamily family;
  bool double_free;
  // count 1, thread 1, never used before: none.
  ASSERT_EQ(cells->Set(kBase, ApiFamily::kMalloc, 1, &order), Result::kDone);
  EXPECT_EQ(order, kAddressOrderNone);
  // Freed by thread 2: a hand-off, count 2.
  ASSERT_EQ(cells->Clear(kBase, 2, &order, &family, &double_free), Result::kDone);
  EXPECT_EQ(order, AddressOrder(2));
  // Allocated again by thread 2: its own previous event, none.
  ASSERT_EQ(cells->Set(kBase, ApiFamily::kMalloc, 2, &order), Result::kDone);
  EXPECT_EQ(order, kAddressOrderNone);
  // Freed by thread 1: hand-off, count 4.
  ASSERT_EQ(cells->Clear(kBase, 1, &order, &family, &double_free), Result::kDone);
  EXPECT_EQ(order, AddressOrder(4));
  // kManyOwners is never "the same thread".
  const uint32_t many = LiveCells::OwnerOf(5000);
  EXPECT_EQ(many, LiveCells::kManyOwners);
  ASSERT_EQ(cells->Set(kBase, ApiFamily::kMalloc, many, &order), Result::kDone);
  EXPECT_EQ(order, AddressOrder(5));
  ASSERT_EQ(cells->Clear(kBase, many, &order, &family, &double_free), Result::kDone);
  EXPECT_EQ(order, AddressOrder(6));
  EXPECT_EQ(LiveCells::OwnerOf(0), LiveCells::kManyOwners);
  EXPECT_EQ(LiveCells::OwnerOf(30), 30u);
  EXPECT_EQ(LiveCells::OwnerOf(31), LiveCells::kManyOwners);
  EXPECT_EQ(LiveCells::OwnerOf(1022), LiveCells::kManyOwners);
}

// Threads of index 31 and more share the owner "many": their events at an
// address they used last carry an order value (a hand-off), so the reader
// orders them; a thread of index 30 or less has its own.
TEST(LiveCells, ThreadsPastThirtyAreManyOwners) {
  auto cells = Fresh();
  uint64_t order;
  ApiFamily family;
  bool double_free;
  const uint32_t t40 = LiveCells::OwnerOf(40);
  ASSERT_EQ(cells->Set(kBase, ApiFamily::kMalloc, t40, &order), Result::kDone);
  EXPECT_EQ(order, kAddressOrderNone);  // never used
  ASSERT_EQ(cells->Clear(kBase, t40, &order, &family, &double_free), Result::kDone);
  EXPECT_EQ(order, AddressOrder(2));
  const uint32_t t30 = LiveCells::OwnerOf(30);
  ASSERT_EQ(cells->Set(kBase + 16, ApiFamily::kMalloc, t30, &order), Result::kDone);
  ASSERT_EQ(cells->Clear(kBase + 16, t30, &order, &family, &double_free), Result::kDone);
  EXPECT_EQ(order, kAddressOrderNone);
}

// The cell keeps the size asked for mod 32; with a glibc chunk's usable
// size (at most 24 bytes more than any size it serves) that is the size.
TEST(LiveCells, CellsGiveTheSizeAskedForBackFromTheUsableSize) {
  auto cells = Fresh();
  uint64_t order;
  // glibc's usable size for a request n: max(32, (n + 8 + 15) & ~15) - 8.
  auto usable_for = [](uint64_t n) { return std::max<uint64_t>(32, (n + 23) & ~uint64_t{15}) - 8; };
  uintptr_t p = kBase;
  for (uint64_t n = 0; n < 5000; ++n, p += 16) {
    ASSERT_EQ(cells->Set(p, ApiFamily::kMalloc, 1, &order, n), Result::kDone);
    const LiveCells::Cell c = cells->Peek(p);
    EXPECT_EQ(LiveCells::FamilyOf(c), ApiFamily::kMalloc);
    EXPECT_EQ(LiveCells::SizeLowOf(c), n % 32);
    EXPECT_EQ(LiveCells::RequestedSize(usable_for(n), c), n) << n;
  }
  // An mmap'ed chunk (usable: n + 16 rounded up to the page, less 16): the
  // largest size <= usable with the cell's low bits, an upper bound of n.
  for (uint64_t n : {uint64_t{200000}, uint64_t{200017}, uint64_t{131072 + 4000}}) {
    ASSERT_EQ(cells->Set(p, ApiFamily::kMalloc, 1, &order, n), Result::kDone);
    const uint64_t usable = ((n + 16 + 4095) & ~uint64_t{4095}) - 16;
    const uint64_t got = LiveCells::RequestedSize(usable, cells->Peek(p));
    EXPECT_GE(got, n);
    EXPECT_LE(got, usable);
    EXPECT_LT(usable - got, 32u);
    EXPECT_EQ(got % 32, n % 32);
    p += 16;
  }
  // A usable size smaller than the low bits (a stale cell): the usable size.
  ASSERT_EQ(cells->Set(p, ApiFamily::kMalloc, 1, &order, 30), Result::kDone);
  EXPECT_EQ(LiveCells::RequestedSize(24, cells->Peek(p)), 24u);
  // A free drops the size's bits; the next allocation writes its own.
  ApiFamily family;
  bool double_free;
  ASSERT_EQ(cells->Clear(p, 1, &order, &family, &double_free), Result::kDone);
  EXPECT_EQ(LiveCells::SizeLowOf(cells->Peek(p)), 0u);
  ASSERT_EQ(cells->Set(p, ApiFamily::kNew, 1, &order, 7), Result::kDone);
  EXPECT_EQ(LiveCells::RequestedSize(24, cells->Peek(p)), 7u);
}

TEST(LiveCells, CountWrapsModuloSixteen) {
  auto cells = Fresh();
  uint64_t order;
  ApiFamily family;
  bool double_free;
  // Alternate two owners so every event is a hand-off and shows its count.
  for (uint32_t event = 1; event <= 40; ++event) {
    uint32_t owner = 1 + event % 2;
    if (event % 2 == 1) {
      ASSERT_EQ(cells->Set(kBase, ApiFamily::kMalloc, owner, &order), Result::kDone);
    } else {
      ASSERT_EQ(cells->Clear(kBase, owner, &order, &family, &double_free), Result::kDone);
    }
    EXPECT_EQ(order, event == 1 ? kAddressOrderNone : AddressOrder(event)) << event;
    EXPECT_EQ(cells->IsLive(kBase), event % 2 == 1);
  }
}

TEST(LiveCells, SetOnALiveCellCountsTheMissedFree) {
  auto cells = Fresh();
  uint64_t order;
  ASSERT_EQ(cells->Set(kBase, ApiFamily::kMalloc, 1, &order), Result::kDone);
  // Allocated again by the same thread without a free in between (a free
  // heapsight did not see): count 1 -> 3, and a hand-off so the reader sees it.
  ASSERT_EQ(cells->Set(kBase, ApiFamily::kMalloc, 1, &order), Result::kDone);
  EXPECT_EQ(order, AddressOrder(3));
  EXPECT_TRUE(cells->IsLive(kBase));
}

TEST(LiveCells, DoubleAndInvalidFreesLeaveTheCell) {
  auto cells = Fresh();
  uint64_t order = 7;
  ApiFamily family = ApiFamily::kNew;
  bool double_free = true;
  // Never used (no span at all yet): invalid.
  EXPECT_EQ(cells->Clear(kBase, 1, &order, &family, &double_free), Result::kNotLive);
  EXPECT_FALSE(double_free);
  ASSERT_EQ(cells->Set(kBase, ApiFamily::kMalloc, 1, &order), Result::kDone);
  // Never used, in a mapped span: invalid.
  double_free = true;
  EXPECT_EQ(cells->Clear(kBase + 64, 1, &order, &family, &double_free), Result::kNotLive);
  EXPECT_FALSE(double_free);
  ASSERT_EQ(cells->Clear(kBase, 1, &order, &family, &double_free), Result::kDone);
  LiveCells::Cell after_free = cells->Peek(kBase);
  // Freed before: double.
  EXPECT_EQ(cells->Clear(kBase, 2, &order, &family, &double_free), Result::kNotLive);
  EXPECT_TRUE(double_free);
  EXPECT_EQ(cells->Peek(kBase), after_free);
}

TEST(LiveCells, UnalignedAndHighPointersHaveNoCell) {
  auto cells = Fresh();
  uint64_t order;
  ApiFamily family;
  bool double_free = true;
  EXPECT_EQ(cells->Set(kBase + 8, ApiFamily::kMalloc, 1, &order), Result::kNoCell);
  EXPECT_EQ(cells->Clear(kBase + 8, 1, &order, &family, &double_free), Result::kNoCell);
  EXPECT_FALSE(double_free);
  EXPECT_EQ(cells->Peek(kBase + 8), 0);
  EXPECT_FALSE(cells->IsLive(kBase + 1));
  const uintptr_t high = uintptr_t{1} << LiveCells::kAddressBits;
  EXPECT_EQ(cells->Set(high, ApiFamily::kMalloc, 1, &order), Result::kNoCell);
  EXPECT_EQ(cells->Clear(high, 1, &order, &family, &double_free), Result::kNoCell);
  EXPECT_EQ(cells->MappedBytes(), 0u);  // nothing was mapped for them
}

TEST(LiveCells, RestoreUndoesAClear) {
  auto cells = Fresh();
  uint64_t order;
  ApiFamily family;
  bool double_free;
  ASSERT_EQ(cells->Set(kBase, ApiFamily::kNewArray, 3, &order), Result::kDone);
  LiveCells::Cell before = cells->Peek(kBase);
  LiveCells::Cell found = 0;
  ASSERT_EQ(cells->Clear(kBase, 4, &order, &family, &double_free, &found), Result::kDone);
  EXPECT_EQ(found, before);  // what the realloc hook keeps for Restore
  EXPECT_FALSE(cells->IsLive(kBase));
  cells->Restore(kBase, before);
  EXPECT_EQ(cells->Peek(kBase), before);
  // The next free is the one the reader sees after the allocation: count 2
  // again, a hand-off from thread 3.
  ASSERT_EQ(cells->Clear(kBase, 4, &order, &family, &double_free), Result::kDone);
  EXPECT_EQ(order, AddressOrder(2));
  EXPECT_EQ(family, ApiFamily::kNewArray);
  // A Restore after another event changed the cell does nothing.
  ASSERT_EQ(cells->Set(kBase, ApiFamily::kMalloc, 4, &order), Result::kDone);
  LiveCells::Cell now = cells->Peek(kBase);
  cells->Restore(kBase, before);
  EXPECT_EQ(cells->Peek(kBase), now);
}

std::vector<std::pair<uintptr_t, ApiFamily>> Live(const LiveCells& cells) {
  std::vector<std::pair<uintptr_t, ApiFamily>> out;
  cells.ForEachLive(
      [](uintptr_t p, LiveCells::Cell c, void* ctx) {
        static_cast<std::vector<std::pair<uintptr_t, ApiFamily>>*>(ctx)->emplace_back(
            p, LiveCells::FamilyOf(c));
      },
      &out);
  return out;
}

TEST(LiveCells, ForEachLiveListsLiveBlocksInAddressOrder) {
  auto cells = Fresh();
  uint64_t order;
  ApiFamily family;
  bool double_free;
  const uintptr_t span = uintptr_t{1} << LiveCells::kSpanShift;
  const uintptr_t mmap_area = uintptr_t{0x7f12} << 32;
  // Set out of order, over three spans in two directory pages.
  ASSERT_EQ(cells->Set(mmap_area + 0x30, ApiFamily::kNew, 1, &order), Result::kDone);
  ASSERT_EQ(cells->Set(kBase + span + 0x1000, ApiFamily::kMalloc, 1, &order), Result::kDone);
  ASSERT_EQ(cells->Set(kBase + 0x20, ApiFamily::kNewArray, 1, &order), Result::kDone);
  ASSERT_EQ(cells->Set(kBase, ApiFamily::kMalloc, 1, &order), Result::kDone);
  ASSERT_EQ(cells->Set(kBase + span - 16, ApiFamily::kMalloc, 1, &order), Result::kDone);
  ASSERT_EQ(cells->Set(kBase + 0x10, ApiFamily::kMalloc, 1, &order), Result::kDone);
  ASSERT_EQ(cells->Clear(kBase + 0x10, 1, &order, &family, &double_free), Result::kDone);
  std::vector<std::pair<uintptr_t, ApiFamily>> want = {
      {kBase, ApiFamily::kMalloc},
      {kBase + 0x20, ApiFamily::kNewArray},
      {kBase + span - 16, ApiFamily::kMalloc},
      {kBase + span + 0x1000, ApiFamily::kMalloc},
      {mmap_area + 0x30, ApiFamily::kNew},
  };
  EXPECT_EQ(Live(*cells), want);
}

// ForEachLive reads four cells at a time: every cell of a word live, each
// with an owner of its own, each reported with its own family.
TEST(LiveCells, ForEachLiveReadsEveryCellOfAWord) {
  auto cells = Fresh();
  uint64_t order;
  const ApiFamily families[] = {ApiFamily::kNewArray, ApiFamily::kMalloc, ApiFamily::kNew,
                                ApiFamily::kNewArray, ApiFamily::kMalloc};
  std::vector<std::pair<uintptr_t, ApiFamily>> want;
  for (uintptr_t k = 0; k < 5; ++k) {
    const uintptr_t p = kBase + 0x40 + 16 * k;  // four granules of one word, one of the next
    ASSERT_EQ(cells->Set(p, families[k], LiveCells::OwnerOf(10 + k), &order), Result::kDone);
    want.emplace_back(p, families[k]);
  }
  EXPECT_EQ(Live(*cells), want);
}

TEST(LiveCells, ForEachLiveMatchesTheLiveSetOverManyPages) {
  auto cells = Fresh();
  std::mt19937_64 rng(7);
  std::map<uintptr_t, ApiFamily> live;
  const ApiFamily families[] = {ApiFamily::kMalloc, ApiFamily::kNew, ApiFamily::kNewArray};
  for (int i = 0; i < 200000; ++i) {
    // 3 MiB of heap over a span boundary: every cell of a word, pages
    // with one live cell, pages emptied again.
    uintptr_t p = kBase + (uintptr_t{63} << 20) + (rng() % (3 << 16)) * 16;
    uint64_t order;
    if (live.count(p) != 0) {
      ApiFamily family;
      bool double_free;
      ASSERT_EQ(cells->Clear(p, 1, &order, &family, &double_free), Result::kDone);
      EXPECT_EQ(family, live[p]);
      live.erase(p);
    } else {
      ApiFamily family = families[rng() % 3];
      ASSERT_EQ(cells->Set(p, family, 1, &order), Result::kDone);
      live[p] = family;
    }
  }
  std::vector<std::pair<uintptr_t, ApiFamily>> want(live.begin(), live.end());
  EXPECT_EQ(Live(*cells), want);
}

TEST(LiveCells, MemoryIsCountedAndMostlyUntouched) {
  auto cells = Fresh();
  EXPECT_EQ(cells->MappedBytes(), 0u);
  EXPECT_EQ(cells->TouchedBytes(), 0u);
  uint64_t order;
  ASSERT_EQ(cells->Set(kBase, ApiFamily::kMalloc, 1, &order), Result::kDone);
  // The directory (16 MiB) and one span (8 MiB of cells, one page of page bits).
  const size_t span_bytes = (size_t{8} << 20) + 4096;
  EXPECT_EQ(cells->MappedBytes(), (size_t{16} << 20) + span_bytes);
  // One page of cells, the span's page bits, one page of the directory.
  EXPECT_EQ(cells->TouchedBytes(), 3u * 4096);
  // The same page of cells again: nothing more.
  ASSERT_EQ(cells->Set(kBase + 4096, ApiFamily::kMalloc, 1, &order), Result::kDone);
  EXPECT_EQ(cells->TouchedBytes(), 3u * 4096);
  // 2,048 cells later (32 KiB of heap): the next page of cells.
  ASSERT_EQ(cells->Set(kBase + 32768, ApiFamily::kMalloc, 1, &order), Result::kDone);
  EXPECT_EQ(cells->TouchedBytes(), 4u * 4096);
}

// Dense cells go into huge pages (live_cells.cc, "Huge pages"): a span
// whose every page of cells is in use asks for each 2 MiB region that lies
// wholly inside it (3, or 4 if the span happens to start on a 2 MiB
// boundary), once; the cells say the same before and after.
TEST(LiveCells, DenseRegionsAskForHugePagesOnce) {
  auto cells = Fresh();
  uint64_t order;
  // One block per page of cells (2,048 cells: 32 KiB of heap), over the
  // whole span (64 MiB of heap).
  constexpr uintptr_t kPageOfHeap = LiveCells::kCellsPerPage << LiveCells::kGranuleShift;
  for (size_t page = 0; page < LiveCells::kPagesPerSpan; ++page) {
    ASSERT_EQ(cells->Set(kBase + page * kPageOfHeap, ApiFamily::kMalloc, 1, &order),
              Result::kDone);
  }
  EXPECT_GE(cells->HugeAttempts(), 3u);
  EXPECT_LE(cells->HugeAttempts(), 4u);
  EXPECT_LE(cells->HugeRegions(), cells->HugeAttempts());  // the kernel may refuse
  // A second block in every page: no page is new, nothing is asked again.
  const size_t attempts = cells->HugeAttempts();
  for (size_t page = 0; page < LiveCells::kPagesPerSpan; ++page) {
    ASSERT_EQ(cells->Set(kBase + page * kPageOfHeap + 16, ApiFamily::kNew, 1, &order),
              Result::kDone);
  }
  EXPECT_EQ(cells->HugeAttempts(), attempts);
  // Every block still live, in address order, with its family.
  std::vector<std::pair<uintptr_t, ApiFamily>> live;
  cells->ForEachLive(
      [](uintptr_t p, LiveCells::Cell c, void* ctx) {
        static_cast<std::vector<std::pair<uintptr_t, ApiFamily>>*>(ctx)->emplace_back(
            p, LiveCells::FamilyOf(c));
      },
      &live);
  ASSERT_EQ(live.size(), 2 * LiveCells::kPagesPerSpan);
  for (size_t page = 0; page < LiveCells::kPagesPerSpan; ++page) {
    EXPECT_EQ(live[2 * page].first, kBase + page * kPageOfHeap);
    EXPECT_EQ(live[2 * page].second, ApiFamily::kMalloc);
    EXPECT_EQ(live[2 * page + 1].first, kBase + page * kPageOfHeap + 16);
    EXPECT_EQ(live[2 * page + 1].second, ApiFamily::kNew);
  }
  ApiFamily family;
  bool double_free;
  ASSERT_EQ(cells->Clear(kBase + 100 * kPageOfHeap, 1, &order, &family, &double_free),
            Result::kDone);
  EXPECT_FALSE(cells->IsLive(kBase + 100 * kPageOfHeap));
  EXPECT_TRUE(cells->IsLive(kBase + 100 * kPageOfHeap + 16));
}

// A sparse heap (one block per 2 MiB region of cells: 16 MiB of heap)
// never asks: its regions stay in 4 KiB pages, as much memory as it uses.
TEST(LiveCells, SparseRegionsStayInSmallPages) {
  auto cells = Fresh();
  uint64_t order;
  constexpr uintptr_t kRegionOfHeap = uintptr_t{16} << 20;
  for (uintptr_t at = kBase; at < kBase + 4 * kRegionOfHeap; at += 4096) {
    // 4 KiB of heap apart: 256 granules, 64 blocks per page of cells, so
    // 1/8 of each region's pages (the first 2 MiB of heap of each region).
    if ((at - kBase) % kRegionOfHeap >= (uintptr_t{2} << 20)) continue;
    ASSERT_EQ(cells->Set(at, ApiFamily::kMalloc, 1, &order), Result::kDone);
  }
  EXPECT_EQ(cells->HugeAttempts(), 0u);
  EXPECT_EQ(cells->HugeRegions(), 0u);
}

// Two threads pass blocks back and forth, as an allocator that hands a
// freed address to another thread does: every event is a hand-off and its
// order value is the event count at the address.
TEST(LiveCells, HandOffBetweenTwoThreads) {
  auto cells = Fresh();
  constexpr int kRounds = 200;
  constexpr int kBlocks = 64;
  std::atomic<int> turn{0};  // even: thread 1 allocates; odd: thread 2 frees
  std::vector<uint64_t> orders[2];
  auto run = [&](int me) {
    const uint32_t owner = static_cast<uint32_t>(me + 1);
    for (int round = 0; round < kRounds; ++round) {
      while (turn.load(std::memory_order_acquire) != 2 * round + me) std::this_thread::yield();
      for (int b = 0; b < kBlocks; ++b) {
        uint64_t order = 0;
        ApiFamily family;
        bool double_free;
        uintptr_t p = kBase + static_cast<uintptr_t>(b) * 48;
        Result r = me == 0 ? cells->Set(p, ApiFamily::kMalloc, owner, &order)
                           : cells->Clear(p, owner, &order, &family, &double_free);
        ASSERT_EQ(r, Result::kDone);
        orders[me].push_back(order);
      }
      turn.store(2 * round + me + 1, std::memory_order_release);
    }
  };
  std::thread a(run, 0), b(run, 1);
  a.join();
  b.join();
  for (int round = 0; round < kRounds; ++round) {
    for (int blk = 0; blk < kBlocks; ++blk) {
      uint64_t set = orders[0][static_cast<size_t>(round * kBlocks + blk)];
      uint64_t clear = orders[1][static_cast<size_t>(round * kBlocks + blk)];
      EXPECT_EQ(set, round == 0 ? kAddressOrderNone
                                : AddressOrder(static_cast<uint32_t>(2 * round + 1)));
      EXPECT_EQ(clear, AddressOrder(static_cast<uint32_t>(2 * round + 2)));
    }
  }
  EXPECT_TRUE(Live(*cells).empty());
}

// Many threads, one pool of addresses handed out under a lock (an
// allocator): no update is lost, no live block freed twice, and the live
// set at the end is the pool's.
TEST(LiveCells, ConcurrentEventsLoseNothing) {
  auto cells = Fresh();
  constexpr int kThreads = 4;
  constexpr int kOps = 20000;
  constexpr int kPool = 512;
  std::mutex pool_lock;
  std::vector<uintptr_t> free_pool;
  for (int i = 0; i < kPool; ++i) free_pool.push_back(kBase + static_cast<uintptr_t>(i) * 16);
  std::atomic<int> failures{0};
  std::vector<std::vector<uintptr_t>> held(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      const uint32_t owner = static_cast<uint32_t>(t + 1);
      for (int i = 0; i < kOps; ++i) {
        uint64_t order;
        if (held[t].empty() || (rng() % 2 == 0 && held[t].size() < 16)) {
          uintptr_t p = 0;
          {
            std::lock_guard<std::mutex> hold(pool_lock);
            if (free_pool.empty()) continue;
            p = free_pool.back();
            free_pool.pop_back();
          }
          if (cells->Set(p, ApiFamily::kMalloc, owner, &order) != Result::kDone) ++failures;
          held[t].push_back(p);
        } else {
          size_t k = rng() % held[t].size();
          uintptr_t p = held[t][k];
          held[t][k] = held[t].back();
          held[t].pop_back();
          ApiFamily family;
          bool double_free;
          // Record-before-free: cleared before the block goes back.
          if (cells->Clear(p, owner, &order, &family, &double_free) != Result::kDone) {
            ++failures;
          }
          std::lock_guard<std::mutex> hold(pool_lock);
          free_pool.push_back(p);
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  std::vector<std::pair<uintptr_t, ApiFamily>> want;
  for (const auto& h : held) {
    for (uintptr_t p : h) want.emplace_back(p, ApiFamily::kMalloc);
  }
  std::sort(want.begin(), want.end());
  EXPECT_EQ(Live(*cells), want);
}

TEST(LiveCells, ForkChildSeesTheParentsCells) {
  uint64_t order;
  ASSERT_EQ(g_live_cells.Set(kBase + 0x40, ApiFamily::kNew, 1, &order), Result::kDone);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // The child's copy: the block is live, and the child's own events do
    // not reach the parent.
    ApiFamily family;
    bool double_free;
    int code = g_live_cells.IsLive(kBase + 0x40) ? 0 : 1;
    if (g_live_cells.Clear(kBase + 0x40, 1, &order, &family, &double_free) != Result::kDone ||
        family != ApiFamily::kNew) {
      code |= 2;
    }
    // A span the parent never mapped.
    if (g_live_cells.Set(kBase + (uintptr_t{3} << LiveCells::kSpanShift), ApiFamily::kMalloc, 1,
                         &order) != Result::kDone) {
      code |= 4;
    }
    _exit(code);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  EXPECT_TRUE(g_live_cells.IsLive(kBase + 0x40));
  EXPECT_FALSE(g_live_cells.IsLive(kBase + (uintptr_t{3} << LiveCells::kSpanShift)));
}

}  // namespace
}  // namespace heapsight::preload
