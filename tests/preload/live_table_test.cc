// tests/preload/live_table_test.cc: unit tests of preload/live_table.
#include "preload/live_table.h"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <vector>

#include "preload/internal_alloc.h"
#include "preload/mix.h"

namespace heapsight::preload {
namespace {

using format::Api;

LiveEntry Entry(uint64_t id, uint64_t size, uint64_t stack = 0, Api api = Api::kMalloc) {
  return LiveEntry{id, size, stack, api, false};
}

TEST(LiveTable, InsertRemoveRoundTrip) {
  static LiveTable table;
  ASSERT_TRUE(table.Insert(0x1000, Entry(7, 100, 42, Api::kNewArray)));
  EXPECT_TRUE(table.Contains(0x1000));
  LiveEntry e;
  ASSERT_TRUE(table.Remove(0x1000, &e));
  EXPECT_EQ(e.id, 7u);
  EXPECT_EQ(e.size, 100u);
  EXPECT_EQ(e.stack, 42u);
  EXPECT_EQ(e.api, Api::kNewArray);
  EXPECT_FALSE(e.internal);
  EXPECT_FALSE(table.Remove(0x1000, &e));
  EXPECT_FALSE(table.Contains(0x1000));
}

TEST(LiveTable, InternalFlagAndNullAddress) {
  static LiveTable table;
  LiveEntry internal;
  internal.internal = true;
  ASSERT_TRUE(table.Insert(0x2000, internal));
  LiveEntry e;
  ASSERT_TRUE(table.Remove(0x2000, &e));
  EXPECT_TRUE(e.internal);
  EXPECT_FALSE(table.Insert(0, Entry(1, 1)));
}

TEST(LiveTable, ManyEntriesMatchAReferenceMap) {
  static LiveTable table;
  std::map<uintptr_t, uint64_t> reference;
  std::mt19937_64 rng(1);
  for (int step = 0; step < 200000; ++step) {
    uintptr_t address = (rng() % 50000 + 1) * 16;
    if (rng() % 3 != 0) {
      table.Insert(address, Entry(step, address));
      reference[address] = static_cast<uint64_t>(step);
    } else {
      LiveEntry e;
      bool found = table.Remove(address, &e);
      auto it = reference.find(address);
      ASSERT_EQ(found, it != reference.end());
      if (found) {
        EXPECT_EQ(e.id, it->second);
        reference.erase(it);
      }
    }
  }
  EXPECT_EQ(table.Size(), reference.size());
  size_t visited = 0;
  table.ForEachUnlocked(
      [](uintptr_t, const LiveEntry&, void* ctx) { ++*static_cast<size_t*>(ctx); }, &visited);
  EXPECT_EQ(visited, reference.size());
}

TEST(LiveTable, ConcurrentThreadsOnDisjointAddresses) {
  static LiveTable table;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      for (int round = 0; round < 20; ++round) {
        for (uintptr_t i = 1; i <= 5000; ++i) table.Insert((i * 4 + t) * 16, Entry(i, t));
        for (uintptr_t i = 1; i <= 5000; ++i) {
          LiveEntry e;
          ASSERT_TRUE(table.Remove((i * 4 + t) * 16, &e));
          ASSERT_EQ(e.id, i);
          ASSERT_EQ(e.size, static_cast<uint64_t>(t));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(table.Size(), 0u);
}

// Every field at the edge of what the packed 16-byte entry holds, and one
// past it (those go to the side table), round-trip exactly; the side table
// holds exactly the ones past a limit.
TEST(LiveTable, FieldLimitsRoundTripPackedAndWide) {
  static LiveTable table;
  struct Case {
    uintptr_t address;
    LiveEntry entry;
    bool side;
  };
  const uint64_t max_id = format::MakeAllocId(16383, (uint64_t{1} << 36) - 1);
  const Case cases[] = {
      {0x7ffffffffff8, LiveEntry{max_id, (uint64_t{1} << 14) - 1, (uint64_t{1} << 24) - 1,
                                 Api::kNewArrayAlignedNothrow, false}, false},
      {0x10008, LiveEntry{format::MakeAllocId(1, 5), 0, 0, Api::kUnknown, false}, false},
      {0x10010, LiveEntry{format::MakeAllocId(2, 9), 33, 17, Api::kUnknown, true}, false},
      // One past each limit: side table.
      {0x800000000000, Entry(1, 10), true},                     // above 2^47
      {0x20004, Entry(2, 10), true},                            // 4-aligned
      {0x20011, Entry(3, 10), true},                            // odd
      {0x20018, Entry(4, uint64_t{1} << 14), true},             // 16 KiB
      {0x20020, Entry(5, 10, uint64_t{1} << 24), true},         // stack id
      {0x20028, Entry(format::MakeAllocId(16384, 1), 10), true},  // thread index
      {0x20030, Entry(format::MakeAllocId(1, uint64_t{1} << 36), 10), true},  // counter
      {0x20038, LiveEntry{6, 10, 0, Api::kNew, true}, true},    // internal with an api
      {0x20040, Entry(7, 10, 0, Api::kDelete), true},           // api 32
      {0x20048, Entry(8, 10, 0, static_cast<Api>(31)), true},   // api 31 (internal's code)
      {0xfffffffffffffff8, Entry(7, ~uint64_t{0}, ~uint64_t{0} >> 9, Api::kCalloc), true},
  };
  size_t side = 0;
  for (const Case& c : cases) {
    ASSERT_TRUE(table.Insert(c.address, c.entry));
    side += c.side;
  }
  EXPECT_EQ(table.Size(), std::size(cases));
  EXPECT_EQ(table.Memory().side, side);
  EXPECT_EQ(table.Memory().packed, std::size(cases) - side);
  for (const Case& c : cases) {
    SCOPED_TRACE(c.address);
    EXPECT_TRUE(table.Contains(c.address));
    LiveEntry e;
    ASSERT_TRUE(table.Remove(c.address, &e));
    EXPECT_EQ(e.id, c.entry.id);
    EXPECT_EQ(e.size, c.entry.size);
    EXPECT_EQ(e.stack, c.entry.stack);
    EXPECT_EQ(e.api, c.entry.api);
    EXPECT_EQ(e.internal, c.entry.internal);
    EXPECT_FALSE(table.Contains(c.address));
    uint64_t id = 0;
    EXPECT_TRUE(table.RecentlyRemoved(c.address, &id));
    EXPECT_EQ(id, c.entry.id);
  }
  EXPECT_EQ(table.Size(), 0u);
  // Side tables left empty are unmapped.
  EXPECT_GT(side, 0u);
  EXPECT_EQ(table.Memory().side_bytes, 0u);
}

// Overwriting an address moves its entry between the packed table and the
// side table; there is never more than one entry per address.
TEST(LiveTable, OverwriteMovesBetweenPackedAndSideTable) {
  static LiveTable table;
  ASSERT_TRUE(table.Insert(0x5000, Entry(1, 10)));
  ASSERT_TRUE(table.Insert(0x5000, Entry(2, uint64_t{1} << 40)));  // side table
  EXPECT_EQ(table.Size(), 1u);
  ASSERT_TRUE(table.Insert(0x5000, Entry(3, 30)));  // back to packed
  EXPECT_EQ(table.Size(), 1u);
  LiveEntry e;
  ASSERT_TRUE(table.Remove(0x5000, &e));
  EXPECT_EQ(e.id, 3u);
  EXPECT_EQ(e.size, 30u);
  EXPECT_FALSE(table.Remove(0x5000, &e));
  EXPECT_EQ(table.Size(), 0u);
}

// Regions (address >> 16) whose blocks all land in one shard, so a test can
// grow a single shard far beyond one region's 8,192 8-aligned addresses.
std::vector<uintptr_t> RegionsOfOneShard(size_t count) {
  std::vector<uintptr_t> regions;
  size_t shard = LiveTable::ShardIndex(uintptr_t{0x5555} << 16);
  for (uintptr_t r = 0x5555; regions.size() < count; ++r) {
    if (LiveTable::ShardIndex(r << 16) == shard) regions.push_back(r);
  }
  return regions;
}

// Every 8-aligned address of `regions` (64 KiB each) but the first, region
// by region: 8,191 per region, all in one shard for RegionsOfOneShard's.
std::vector<uintptr_t> AddressesIn(const std::vector<uintptr_t>& regions) {
  std::vector<uintptr_t> addresses;
  for (uintptr_t region : regions) {
    for (uintptr_t k = 1; k < 8192; ++k) addresses.push_back(region << 16 | k * 8);
  }
  return addresses;
}

using Reference = std::map<uintptr_t, LiveEntry>;

void ExpectSameContents(LiveTable& table, const Reference& reference) {
  Reference seen;
  table.ForEachUnlocked(
      [](uintptr_t address, const LiveEntry& e, void* ctx) {
        auto* m = static_cast<Reference*>(ctx);
        EXPECT_TRUE(m->emplace(address, e).second) << "visited twice: " << address;
      },
      &seen);
  ASSERT_EQ(seen.size(), reference.size());
  for (const auto& [address, e] : reference) {
    auto it = seen.find(address);
    ASSERT_NE(it, seen.end()) << address;
    EXPECT_EQ(it->second.id, e.id);
    EXPECT_EQ(it->second.size, e.size);
    EXPECT_EQ(it->second.stack, e.stack);
    EXPECT_EQ(it->second.api, e.api);
  }
}

// One shard grows from empty to about 150,000 entries, with removes,
// lookups of absent addresses and iteration in the middle of every growth;
// every answer matches a map. Between growths the shard spends at most 24
// bytes per entry (a load of 2/3 or more), and while it migrates the new
// table is filled by migration only, so the old table's unmoved part plus
// the new table's moved part stay under 24 bytes per entry too.
TEST(LiveTable, OneShardGrowsIncrementallyAndStaysExact) {
  static LiveTable table;
  const size_t base = table.MappedBytes();
  EXPECT_EQ(base, sizeof(LiveTable));  // nothing mapped yet
  std::vector<uintptr_t> regions = RegionsOfOneShard(24);
  Reference reference;
  std::mt19937_64 rng(7);
  size_t last_chunk_bytes = 0, growths = 0, checked_mid_growth = 0;
  for (uintptr_t region : regions) {
    for (uintptr_t k = 1; k < 8192; ++k) {
      uintptr_t address = region << 16 | k * 8;
      LiveEntry e{rng() >> 30, rng() & 0x3fff, rng() & 0xffffff, Api::kMalloc, false};
      ASSERT_TRUE(table.Insert(address, e));
      reference[address] = e;
      if (rng() % 4 == 0) {  // free a random live block
        auto it = reference.lower_bound(region << 16 | (rng() % 8192) * 8);
        if (it != reference.end()) {
          LiveEntry got;
          ASSERT_TRUE(table.Remove(it->first, &got));
          ASSERT_EQ(got.id, it->second.id);
          ASSERT_EQ(got.size, it->second.size);
          ASSERT_EQ(got.stack, it->second.stack);
          reference.erase(it);
        }
      }
      ASSERT_FALSE(table.Contains((region + 1000000) << 16 | k * 8));
      if (k % 16 != 0) continue;  // Memory takes every shard lock
      LiveTable::MemoryUse m = table.Memory();
      ASSERT_EQ(m.packed + m.side, reference.size());
      // Tables up to 32 KiB double and halve; above, a shrink must save an
      // eighth of the table in whole pages, so tables under 144 KiB may sit
      // at up to 25 bytes per entry; from 144 KiB on the bound is 24.
      if (m.resizing == 0 && m.chunk_bytes > 32 * 1024) {
        ASSERT_LE(m.chunk_bytes, (m.chunk_bytes >= 144 * 1024 ? 24 : 25) * m.packed)
            << reference.size();
      }
      if (m.chunk_bytes > last_chunk_bytes) {
        ++growths;
        // Right after a growth, check everything (the old table is still
        // mostly unmoved): contents, and that both tables answer lookups.
        if (reference.size() > 2000) {
          ASSERT_EQ(m.resizing, 1u);
          ++checked_mid_growth;
          ExpectSameContents(table, reference);
          for (const auto& [address, entry] : reference) {
            ASSERT_TRUE(table.Contains(address)) << address;
          }
        }
      }
      last_chunk_bytes = m.chunk_bytes;
    }
  }
  EXPECT_EQ(table.Size(), reference.size());
  ExpectSameContents(table, reference);
  // From 128 chunks, doubling to 512, then 5/4 as many homes (in whole
  // pages) each time: 128, 256, 512, 640, 832, 1088, ... past 150,000
  // entries.
  EXPECT_GE(growths, 20u);
  EXPECT_GE(checked_mid_growth, 10u);
  // Drive it to the end of the last migration with removes and re-inserts.
  std::vector<uintptr_t> live;
  for (const auto& kv : reference) live.push_back(kv.first);
  for (int i = 0; i < 40000; ++i) {
    uintptr_t address = live[rng() % live.size()];
    LiveEntry got;
    ASSERT_TRUE(table.Remove(address, &got));
    ASSERT_EQ(got.id, reference[address].id);
    ASSERT_TRUE(table.Insert(address, got));
  }
  LiveTable::MemoryUse m = table.Memory();
  EXPECT_EQ(m.resizing, 0u);
  EXPECT_EQ(m.old_bytes, 0u);
  EXPECT_LE(m.chunk_bytes + m.side_bytes, 24 * reference.size());
  EXPECT_GE(m.chunk_bytes, 16 * reference.size() * 8 / 7);  // load at most 7/8
  EXPECT_EQ(table.MappedBytes(), base + m.chunk_bytes + m.side_bytes);
  EXPECT_EQ(table.Size(), reference.size());
  for (auto& [address, e] : reference) {
    LiveEntry got;
    ASSERT_TRUE(table.Remove(address, &got));
    ASSERT_EQ(got.id, e.id);
  }
  EXPECT_EQ(table.Size(), 0u);
  // Emptied, it has shrunk back to its smallest table.
  EXPECT_EQ(table.Memory().chunk_bytes, 128u * 64);
}

// While a shard migrates, the old table's pages go back to the system in
// 64 KiB pieces as the cursor passes them, so the shard never holds two
// full tables; the new table is made resident 64 KiB ahead of the
// migration. One munmap per piece, one map per resize: counted.
TEST(LiveTable, GrowthReturnsTheOldTableAsItGoes) {
  static LiveTable table;
  std::vector<uintptr_t> regions = RegionsOfOneShard(8);
  std::vector<uintptr_t> addresses = AddressesIn(regions);
  // Chunks (homes): 128 (98), 256 (226), 512 (482), then 5/4 in whole
  // pages: 640 (610), 832 (802), 1088 (1058), 1408 (1378), 1792 (1762),
  // 2240 (2210), 2816 (2786): room for 2786 x 7/2 = 9,751 entries; the
  // 9,752nd starts the growth to 3,520 chunks.
  size_t i = 0;
  for (; i < 9751; ++i) ASSERT_TRUE(table.Insert(addresses[i], Entry(i + 1, 8)));
  LiveTable::MemoryUse m = table.Memory();
  ASSERT_EQ(m.chunk_bytes, 2816u * 64);
  ASSERT_EQ(m.resizing, 0u);
  EXPECT_EQ(m.grows, 9u);
  EXPECT_EQ(m.shrinks, 0u);
  // The old tables of 8-52 KiB went back in one munmap each at the end of
  // their migration, those of 68-112 KiB in two (a 64 KiB piece, the
  // rest), the one of 140 KiB in three.
  EXPECT_EQ(m.unmaps, 5u + 2 * 3 + 3);
  ASSERT_TRUE(table.Insert(addresses[i], Entry(i + 1, 8)));
  ++i;
  // New table mapped; the old one is whole but for the first 8 chunks moved.
  m = table.Memory();
  EXPECT_EQ(m.chunk_bytes, 3520u * 64);
  EXPECT_EQ(m.old_bytes, 2816u * 64);
  EXPECT_EQ(m.resizing, 1u);
  EXPECT_EQ(m.grows, 10u);
  // 128 more inserts move 8 chunks each: 1,032 chunks, so the first 64 KiB
  // (1,024 chunks) of the old table are gone, in one munmap.
  for (int n = 0; n < 128; ++n, ++i) ASSERT_TRUE(table.Insert(addresses[i], Entry(i + 1, 8)));
  m = table.Memory();
  EXPECT_EQ(m.old_bytes, (2816u - 1024) * 64);
  EXPECT_EQ(m.unmaps, 15u);
  // 127 more: 2,048 chunks moved, the second 64 KiB is gone.
  for (int n = 0; n < 127; ++n, ++i) ASSERT_TRUE(table.Insert(addresses[i], Entry(i + 1, 8)));
  EXPECT_EQ(table.Memory().old_bytes, (2816u - 2048) * 64);
  // 95 more: 2,808 chunks moved, the last 768 chunks are still mapped
  // until the end; then one more ends the migration.
  for (int n = 0; n < 95; ++n, ++i) ASSERT_TRUE(table.Insert(addresses[i], Entry(i + 1, 8)));
  m = table.Memory();
  EXPECT_EQ(m.old_bytes, (2816u - 2048) * 64);
  EXPECT_EQ(m.unmaps, 16u);
  ASSERT_TRUE(table.Insert(addresses[i], Entry(i + 1, 8)));
  ++i;
  m = table.Memory();
  EXPECT_EQ(m.old_bytes, 0u);
  EXPECT_EQ(m.resizing, 0u);
  EXPECT_EQ(m.unmaps, 17u);
  EXPECT_EQ(m.chunk_bytes, 3520u * 64);
  EXPECT_EQ(table.Size(), i);
  for (size_t k = 0; k < i; ++k) {
    LiveEntry e;
    ASSERT_TRUE(table.Remove(addresses[k], &e));
    ASSERT_EQ(e.id, k + 1);
  }
}

// The documented thresholds (live_table.h, SetThresholds), restated so the
// tests below can say exactly when a shard shrinks and to what. A table of
// `nchunks` chunks shrinks at its next insert below ShrinkBelow(nchunks)
// entries, at a remove below a quarter of it; to 128 chunks if it has up to
// 512, else to the whole pages that hold its count at a load of 4/5.
size_t ShrinkBelow(size_t nchunks) {
  if (nchunks <= 512) return nchunks > 128 ? (128 - 30) * 7 / 4 : 0;
  size_t pages = nchunks * 7 / 8 / 64 * 64;
  size_t by_size = pages > 30 ? (pages - 30) * 16 / 5 : 0;
  size_t by_load = (nchunks * 8 + 2) / 3;
  return std::min(by_size, by_load);
}
size_t ShrinkTo(size_t nchunks, size_t count) {
  if (nchunks <= 512) return 128;
  return std::max<size_t>(128, (count * 5 / 16 + 30 + 63) / 64 * 64);
}

// Freeing with no insert shrinks a shard only once its count falls below a
// quarter of the insert threshold (a load of 1/6), straight to a load of
// 4/5, incrementally as growth does (a table of up to 64 KiB at once): a
// program that frees most of its blocks gives the table's memory back in a
// few migrations, not one per 4/5 -> 2/3 step. Checked at every remove: a
// shrink happens exactly at the first remove below the bound, to exactly
// the table its count fits; contents stay exact throughout, and a settled
// shard over 32 KiB spends at most 96 bytes per entry (111 under 144 KiB,
// where a shrink must save an eighth of the table).
TEST(LiveTable, ShrinksWhenBlocksAreFreedAndStaysExact) {
  static LiveTable table;
  std::vector<uintptr_t> regions = RegionsOfOneShard(8);
  Reference reference;
  for (uintptr_t region : regions) {
    for (uintptr_t k = 1; k < 8192; ++k) {
      uintptr_t address = region << 16 | k * 8;
      ASSERT_TRUE(table.Insert(address, Entry(address, k)));
      reference[address] = Entry(address, k);
    }
  }
  LiveTable::MemoryUse m = table.Memory();
  const size_t grown = m.chunk_bytes;
  const size_t shrinks_at_start = m.shrinks;
  EXPECT_EQ(shrinks_at_start, 0u);
  std::mt19937_64 rng(3);
  std::vector<uintptr_t> live;
  for (const auto& kv : reference) live.push_back(kv.first);
  std::shuffle(live.begin(), live.end(), rng);
  size_t shrinks = 0, small_shrinks = 0;
  std::vector<size_t> sizes{grown / 64};
  while (live.size() > 500) {
    const LiveTable::MemoryUse before = m;
    LiveEntry got;
    ASSERT_TRUE(table.Remove(live.back(), &got));
    ASSERT_EQ(got.id, live.back());
    reference.erase(live.back());
    live.pop_back();
    m = table.Memory();
    ASSERT_EQ(m.packed + m.side, live.size());
    const size_t nchunks = before.chunk_bytes / 64;
    const bool due = before.resizing == 0 && live.size() < ShrinkBelow(nchunks) / 4;
    ASSERT_EQ(m.shrinks - before.shrinks, due ? 1u : 0u) << live.size() << " " << nchunks;
    if (!due) {
      ASSERT_EQ(m.chunk_bytes, before.chunk_bytes);
      continue;
    }
    ++shrinks;
    ASSERT_EQ(m.chunk_bytes, ShrinkTo(nchunks, live.size()) * 64) << live.size();
    sizes.push_back(m.chunk_bytes / 64);
    // A table over 64 KiB moves a few chunks per remove; one of up to
    // 64 KiB moves all its entries in the remove that shrank it.
    ASSERT_EQ(m.resizing, before.chunk_bytes > 64 * 1024 ? 1u : 0u) << before.chunk_bytes;
    if (m.resizing == 0) {
      ++small_shrinks;
      ASSERT_EQ(m.old_bytes, 0u);
    }
    ExpectSameContents(table, reference);  // mid-migration too
  }
  // 65,528 entries in 21,568 chunks (1,348 KiB); removes shrink it below
  // 14,378 entries (a quarter of its threshold, 57,515) to 4,544 chunks,
  // below 3,029 to 1,024 (64 KiB, moved at once), below 682 to 256 (16 KiB,
  // which would shrink only below 42 entries, to 128 chunks). Three
  // migrations where the old rule made over ten.
  EXPECT_EQ(sizes, (std::vector<size_t>{21568, 4544, 1024, 256}));
  EXPECT_EQ(shrinks, 3u);
  EXPECT_EQ(small_shrinks, 1u);
  for (size_t i = 1; i < sizes.size(); ++i) {
    if (sizes[i] * 64 > 32 * 1024) {
      size_t settled = sizes[i] * 64, at_bound = ShrinkBelow(sizes[i]) / 4;
      // (at_bound + 1: the bound's count is rounded down)
      EXPECT_LE(settled, (settled >= 144 * 1024 ? 96 : 111) * (at_bound + 1)) << sizes[i];
    }
  }
  EXPECT_EQ(table.Memory().chunk_bytes, 256u * 64);
  ExpectSameContents(table, reference);
  for (uintptr_t address : live) ASSERT_TRUE(table.Contains(address));
}

// A burst of removes with no insert leaves a shard's table as it is until
// its count falls below a quarter of the insert threshold; once below the
// threshold itself, the next insert shrinks it, to the table that fits its
// count. Exact sizes and counts from Memory().
TEST(LiveTable, RemovesShrinkOnlyFarBelowTheThresholdAndTheNextInsertShrinks) {
  static LiveTable table;
  std::vector<uintptr_t> regions = RegionsOfOneShard(4);
  std::vector<uintptr_t> addresses = AddressesIn(regions);
  Reference reference;
  const size_t n = 20000;
  for (size_t i = 0; i < n; ++i) {
    ASSERT_TRUE(table.Insert(addresses[i], Entry(i + 1, 8)));
    reference[addresses[i]] = Entry(i + 1, 8);
  }
  // Ends the last growth's migration: removes and re-inserts move 8 chunks
  // each.
  LiveTable::MemoryUse m = table.Memory();
  for (size_t i = 0; m.resizing != 0; ++i, m = table.Memory()) {
    LiveEntry e;
    ASSERT_TRUE(table.Remove(addresses[i], &e));
    ASSERT_TRUE(table.Insert(addresses[i], e));
  }
  ASSERT_EQ(m.shrinks, 0u);
  const size_t grown = m.chunk_bytes / 64;
  const size_t below = ShrinkBelow(grown);
  // 20,000 entries: 6,976 chunks (436 KiB), which shrinks below 18,603.
  EXPECT_EQ(grown, 6976u);
  EXPECT_EQ(below, 18603u);
  // Removes down to one under the threshold, and a quarter further: no
  // shrink (the old rule shrank here at each 4/5 -> 2/3 step).
  size_t live = n;
  auto remove_down_to = [&](size_t target) {
    while (live > target) {
      --live;
      LiveEntry e;
      ASSERT_TRUE(table.Remove(addresses[live], &e));
      ASSERT_EQ(e.id, live + 1);
      reference.erase(addresses[live]);
    }
  };
  remove_down_to(below - 1);
  m = table.Memory();
  EXPECT_EQ(m.shrinks, 0u);
  EXPECT_EQ(m.chunk_bytes, grown * 64);
  // The next insert shrinks it to a load of 4/5 for its count (18,602
  // entries: 5,888 chunks, 368 KiB), incrementally (a 436 KiB table).
  ASSERT_TRUE(table.Insert(addresses[live], Entry(live + 1, 8)));
  reference[addresses[live]] = Entry(live + 1, 8);
  ++live;
  m = table.Memory();
  EXPECT_EQ(m.shrinks, 1u);
  EXPECT_EQ(m.resizing, 1u);
  EXPECT_EQ(m.chunk_bytes, ShrinkTo(grown, below - 1) * 64);
  EXPECT_EQ(m.chunk_bytes, 5888u * 64);
  EXPECT_EQ(m.old_bytes, grown * 64);
  ExpectSameContents(table, reference);
  // Removes alone: the migration ends (8 chunks per remove) and the shard
  // stays at 5,888 chunks down to a quarter of its threshold (3,925 of
  // 15,702 entries); the remove below it shrinks it, straight to a load of
  // 4/5 (3,924 entries: 1,280 chunks, 80 KiB, moved a few chunks per
  // remove).
  const size_t current = m.chunk_bytes / 64;
  const size_t far = ShrinkBelow(current) / 4;
  EXPECT_EQ(ShrinkBelow(current), 15702u);
  EXPECT_EQ(far, 3925u);
  remove_down_to(far);
  m = table.Memory();
  EXPECT_EQ(m.shrinks, 1u);
  EXPECT_EQ(m.resizing, 0u);
  EXPECT_EQ(m.old_bytes, 0u);
  EXPECT_EQ(m.chunk_bytes, current * 64);
  remove_down_to(far - 1);
  m = table.Memory();
  EXPECT_EQ(m.shrinks, 2u);
  EXPECT_EQ(m.chunk_bytes, ShrinkTo(current, far - 1) * 64);
  EXPECT_EQ(m.chunk_bytes, 1280u * 64);
  ExpectSameContents(table, reference);
  // A shard that never sees another insert holds at most 96 bytes per
  // live block past 144 KiB: 368 KiB held 3,925 entries (96.0 bytes each).
  EXPECT_LE(current * 64, 96 * (far + 1));
  for (size_t i = 0; i < live; ++i) {
    LiveEntry e;
    ASSERT_TRUE(table.Remove(addresses[i], &e));
    ASSERT_EQ(e.id, i + 1);
  }
  EXPECT_EQ(table.Size(), 0u);
}

// A small table (up to 32 KiB) doubles when full and shrinks, straight to
// the smallest table (128 chunks), only once that would be at most half
// full (171 entries; at its next insert, or at a remove below 42): a program whose live blocks swing around one size
// (an interpreter building and dropping a dict) does not resize at all,
// one that frees everything migrates once, not once per halving; and a
// resize of a small table returns its whole old table, once, when the
// migration ends. Exact counts from Memory().
TEST(LiveTable, SmallTablesDoubleAndHalveWithoutChurn) {
  static LiveTable table;
  std::vector<uintptr_t> regions = RegionsOfOneShard(1);
  std::vector<uintptr_t> addresses;
  for (uintptr_t k = 1; k <= 2000; ++k) addresses.push_back(regions[0] << 16 | k * 8);
  LiveEntry gone;
  // 128 chunks (room 343), 256 (room 791), 512 (room 1,687): 792 entries
  // took two growths.
  for (size_t i = 0; i < 792; ++i) ASSERT_TRUE(table.Insert(addresses[i], Entry(i + 1, 8)));
  LiveTable::MemoryUse m = table.Memory();
  EXPECT_EQ(m.grows, 2u);
  EXPECT_EQ(m.chunk_bytes, 512u * 64);
  // 512 chunks shrink below (128 - 30) x 7/4 = 171 entries. Swing 50 times
  // between 792 and 171 live entries: no resize.
  for (int round = 0; round < 50; ++round) {
    for (size_t i = 171; i < 792; ++i) ASSERT_TRUE(table.Remove(addresses[i], &gone));
    for (size_t i = 171; i < 792; ++i) ASSERT_TRUE(table.Insert(addresses[i], Entry(i + 1, 8)));
  }
  m = table.Memory();
  EXPECT_EQ(m.grows, 2u);
  EXPECT_EQ(m.shrinks, 0u);
  EXPECT_EQ(m.unmaps, 2u);  // the 8 and 16 KiB tables, once each
  EXPECT_EQ(m.resizing, 0u);
  // Down to 170: the removes leave it (a remove shrinks a small table only
  // below 171 / 4 = 42); the next insert shrinks it straight to 128 chunks
  // (no 256 between). Back up to 792: it doubles twice.
  for (size_t i = 170; i < 792; ++i) ASSERT_TRUE(table.Remove(addresses[i], &gone));
  m = table.Memory();
  EXPECT_EQ(m.shrinks, 0u);
  EXPECT_EQ(m.chunk_bytes, 512u * 64);
  ASSERT_TRUE(table.Insert(addresses[170], Entry(171, 8)));
  m = table.Memory();
  EXPECT_EQ(m.shrinks, 1u);
  EXPECT_EQ(m.resizing, 0u);
  EXPECT_EQ(m.chunk_bytes, 128u * 64);
  for (size_t i = 171; i < 792; ++i) ASSERT_TRUE(table.Insert(addresses[i], Entry(i + 1, 8)));
  m = table.Memory();
  EXPECT_EQ(m.grows, 4u);
  EXPECT_EQ(m.chunk_bytes, 512u * 64);
  // All freed, with no insert: 512 -> 128 at the remove that leaves 41
  // entries, once.
  for (size_t i = 0; i < 792; ++i) {
    LiveEntry e;
    ASSERT_TRUE(table.Remove(addresses[i], &e));
    ASSERT_EQ(e.id, i + 1);
    m = table.Memory();
    ASSERT_EQ(m.shrinks, 792 - i - 1 < 42 ? 2u : 1u) << i;
  }
  m = table.Memory();
  EXPECT_EQ(m.shrinks, 2u);
  EXPECT_EQ(m.resizing, 0u);
  EXPECT_EQ(m.chunk_bytes, 128u * 64);
  EXPECT_EQ(m.unmaps, 6u);  // one per resize
  EXPECT_EQ(table.Size(), 0u);
  EXPECT_EQ(table.MappedBytes(), sizeof(LiveTable) + 128u * 64);
}

// Old tables go back to the system in batches: each shard's first growth
// (128 -> 256 chunks) hands its 8 KiB table to the process-wide queue when
// its migration ends, and the 64th such table returns all 64 (512 KiB) at
// once, in one process_madvise where the kernel takes it (Linux 6.16:
// one TLB flush for the batch) and 64 munmaps otherwise. Exact counts from
// Memory() and PageBytesMapped().
TEST(LiveTable, OldTablesAreReturnedInBatches) {
  static LiveTable table;
  // Does this kernel take a batched release from us (PIDFD_SELF_THREAD)?
  void* probe = PageAlloc(4096);
  ASSERT_NE(probe, nullptr);
  static_cast<char*>(probe)[0] = 1;
  iovec iov{probe, 4096};
  const bool batched = syscall(440, -10000, &iov, 1, 4 /* MADV_DONTNEED */, 0) == 4096;
  PageFree(probe, 4096);
  // 64 regions of 64 different shards.
  std::vector<uintptr_t> regions;
  std::set<size_t> shards;
  for (uintptr_t r = 0x7000; regions.size() < 64; ++r) {
    if (shards.insert(LiveTable::ShardIndex(r << 16)).second) regions.push_back(r);
  }
  LiveTable::ReleaseRetired();
  const LiveTable::MemoryUse start = table.Memory();
  ASSERT_EQ(start.retired_bytes, 0u);
  for (size_t k = 0; k < regions.size(); ++k) {
    // Room for 98 x 7/2 = 343 entries: the 344th starts the growth, which
    // moves 8 of the 128 old chunks per operation; 20 more end it.
    for (uintptr_t i = 1; i <= 344; ++i) ASSERT_TRUE(table.Insert(regions[k] << 16 | i * 8, Entry(i, 8)));
    const size_t mapped = PageBytesMapped();
    for (uintptr_t i = 345; i <= 364; ++i) ASSERT_TRUE(table.Insert(regions[k] << 16 | i * 8, Entry(i, 8)));
    LiveTable::MemoryUse m = table.Memory();
    ASSERT_EQ(m.grows - start.grows, k + 1);
    ASSERT_EQ(m.resizing, 0u);
    ASSERT_EQ(m.unmaps - start.unmaps, k + 1);
    if (k < 63) {
      // Queued, still mapped: nothing returned yet.
      ASSERT_EQ(m.retired_bytes, (k + 1) * 8192);
      ASSERT_EQ(m.release_calls, start.release_calls);
      ASSERT_EQ(m.released_ranges, start.released_ranges);
      ASSERT_EQ(PageBytesMapped(), mapped);
    } else {
      EXPECT_EQ(m.retired_bytes, 0u);
      EXPECT_EQ(m.released_ranges - start.released_ranges, 64u);
      EXPECT_EQ(m.release_calls - start.release_calls, batched ? 1u : 64u);
      EXPECT_EQ(mapped - PageBytesMapped(), 64u * 8192);
    }
  }
  // The entries survived the moves.
  for (size_t k = 0; k < regions.size(); ++k) {
    for (uintptr_t i = 1; i <= 364; ++i) {
      LiveEntry e;
      ASSERT_TRUE(table.Remove(regions[k] << 16 | i * 8, &e));
      ASSERT_EQ(e.id, i);
    }
  }
  // Emptied with no insert, every shard went back to 128 chunks (at the
  // remove that left 41 entries, below a quarter of 171): 64 more 16 KiB tables
  // (1 MiB) went through the queue, in two batches of 32 (512 KiB each).
  LiveTable::MemoryUse m = table.Memory();
  EXPECT_EQ(m.shrinks - start.shrinks, 64u);
  EXPECT_EQ(m.retired_bytes, 0u);
  EXPECT_EQ(m.released_ranges - start.released_ranges, 128u);
  EXPECT_EQ(m.release_calls - start.release_calls, batched ? 3u : 128u);
}

// A fork child inherits the queue of old tables with their pages (forked
// under LockAll, so no thread is inside it): it returns them from its own
// address space and goes on growing, while the parent's queue is as it was.
TEST(LiveTable, ForkChildReturnsTheInheritedQueue) {
  static LiveTable table;
  std::vector<uintptr_t> regions;
  std::set<size_t> shards;
  for (uintptr_t r = 0x9000; regions.size() < 8; ++r) {
    if (shards.insert(LiveTable::ShardIndex(r << 16)).second) regions.push_back(r);
  }
  LiveTable::ReleaseRetired();
  const LiveTable::MemoryUse start = table.Memory();
  // Four shards grow once each: four 8 KiB tables queued.
  for (size_t k = 0; k < 4; ++k) {
    for (uintptr_t i = 1; i <= 364; ++i) ASSERT_TRUE(table.Insert(regions[k] << 16 | i * 8, Entry(i, 8)));
  }
  ASSERT_EQ(table.Memory().retired_bytes, 4u * 8192);
  table.LockAll();
  pid_t pid = fork();
  if (pid == 0) {
    table.ResetLocksInChild();
    const size_t mapped = PageBytesMapped();
    int failed = 0;  // the first check that failed, for the exit status
    auto check = [&failed](bool ok, int code) {
      if (!ok && failed == 0) failed = code;
    };
    check(table.Memory().retired_bytes == 4u * 8192, 1);
    // Four more growths, then everything returned: eight ranges, 64 KiB.
    for (size_t k = 4; k < 8; ++k) {
      for (uintptr_t i = 1; i <= 364; ++i) check(table.Insert(regions[k] << 16 | i * 8, Entry(i, 8)), 2);
    }
    check(table.Memory().retired_bytes == 8u * 8192, 3);
    LiveTable::ReleaseRetired();
    LiveTable::MemoryUse m = table.Memory();
    check(m.retired_bytes == 0 && m.released_ranges - start.released_ranges == 8, 4);
    // Four shards' first tables (8 KiB) and second (16 KiB) mapped, eight
    // 8 KiB tables returned.
    check(PageBytesMapped() == mapped + 4 * (8192 + 16384) - 8 * 8192, 5);
    for (size_t k = 0; k < 8; ++k) {
      for (uintptr_t i = 1; i <= 364; ++i) {
        LiveEntry e;
        check(table.Remove(regions[k] << 16 | i * 8, &e) && e.id == i, 6);
      }
    }
    _exit(failed);
  }
  table.UnlockAll();
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  LiveTable::MemoryUse m = table.Memory();
  EXPECT_EQ(m.retired_bytes, 4u * 8192);
  EXPECT_EQ(m.released_ranges, start.released_ranges);
}

// Entries aimed at one home chunk of a shard's first table (98 homes):
// four fit the home, the next ones go on to the following chunks (their
// distance is kept, and the address is rebuilt from home and distance),
// and past 30 chunks on they go to the side table. Removing from the middle
// of the run keeps every other one findable (the chunks they passed keep
// counting them), and removed slots are reused.
TEST(LiveTable, CollidingEntriesRunOnThenGoToTheSideTable) {
  static LiveTable table;
  std::vector<uintptr_t> regions = RegionsOfOneShard(64);
  std::vector<uintptr_t> same_home;
  for (uintptr_t region : regions) {
    for (uintptr_t k = 1; k < 8192 && same_home.size() < 150; ++k) {
      uintptr_t address = region << 16 | k * 8;
      if (LiveTable::HomeForTest(address, 98) == 40) same_home.push_back(address);
    }
  }
  ASSERT_EQ(same_home.size(), 150u);
  // 150 entries, under the first table's room of 343: no growth.
  for (size_t i = 0; i < same_home.size(); ++i) {
    ASSERT_TRUE(table.Insert(same_home[i], Entry(i + 1, i)));
  }
  LiveTable::MemoryUse m = table.Memory();
  EXPECT_EQ(m.chunk_bytes, 128u * 64);
  EXPECT_EQ(m.packed, 4u * 31);  // chunks 40 to 70, four each
  EXPECT_EQ(m.side, 150u - 4 * 31);
  Reference reference;
  for (size_t i = 0; i < same_home.size(); ++i) reference[same_home[i]] = Entry(i + 1, i);
  ExpectSameContents(table, reference);
  // Remove every third, from the home chunk to the far end.
  for (size_t i = 0; i < same_home.size(); i += 3) {
    LiveEntry e;
    ASSERT_TRUE(table.Remove(same_home[i], &e));
    ASSERT_EQ(e.id, i + 1);
    reference.erase(same_home[i]);
  }
  for (const auto& [address, e] : reference) {
    LiveEntry got;
    ASSERT_TRUE(table.Contains(address)) << address;
  }
  ExpectSameContents(table, reference);
  // Re-inserted, they take the freed slots near home (the side table only
  // shrinks as its own entries go).
  for (size_t i = 0; i < same_home.size(); i += 3) {
    ASSERT_TRUE(table.Insert(same_home[i], Entry(i + 1000, i)));
    reference[same_home[i]] = Entry(i + 1000, i);
  }
  ExpectSameContents(table, reference);
  EXPECT_EQ(table.Size(), 150u);
  for (const auto& [address, e] : reference) {
    LiveEntry got;
    ASSERT_TRUE(table.Remove(address, &got));
    ASSERT_EQ(got.id, e.id);
  }
  m = table.Memory();
  EXPECT_EQ(m.packed + m.side, 0u);
}

// Addresses built to collide: all in one chunk's hash range is impossible to
// aim at through the mixer, so instead every address shares its low 16 bits
// and differs above (one block per region, all regions in one shard), and a
// dense run of 8-byte steps in one region.
TEST(LiveTable, AdversarialAddressPatterns) {
  static LiveTable table;
  Reference reference;
  std::vector<uintptr_t> regions = RegionsOfOneShard(3000);
  uint64_t id = 1;
  for (uintptr_t region : regions) {
    uintptr_t address = region << 16 | 0x10;
    ASSERT_TRUE(table.Insert(address, Entry(id, 1)));
    reference[address] = Entry(id++, 1);
  }
  for (uintptr_t k = 1; k < 8192; ++k) {
    uintptr_t address = uintptr_t{0x7f0000000000} | k * 8;
    ASSERT_TRUE(table.Insert(address, Entry(id, 2)));
    reference[address] = Entry(id++, 2);
  }
  // Page-aligned blocks of many regions (mmap'ed large blocks).
  for (uintptr_t k = 1; k <= 5000; ++k) {
    uintptr_t address = uintptr_t{0x7e0000000000} + k * 4096;
    ASSERT_TRUE(table.Insert(address, Entry(id, 4096)));
    reference[address] = Entry(id++, 4096);
  }
  EXPECT_EQ(table.Size(), reference.size());
  ExpectSameContents(table, reference);
  // Free every other one, then check the rest are all still found.
  bool odd = false;
  for (auto it = reference.begin(); it != reference.end();) {
    if ((odd = !odd)) {
      LiveEntry e;
      ASSERT_TRUE(table.Remove(it->first, &e));
      ASSERT_EQ(e.id, it->second.id);
      it = reference.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [address, e] : reference) ASSERT_TRUE(table.Contains(address)) << address;
  ExpectSameContents(table, reference);
}

// Many shards at once from several threads, each thread on its own regions,
// with growth in every shard.
TEST(LiveTable, ManyShardsGrowConcurrently) {
  static LiveTable table;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([t] {
      std::vector<uintptr_t> mine;
      for (uintptr_t i = 0; i < 60000; ++i) {
        mine.push_back((uintptr_t{0x100000} + i * 4 + t) * 64);  // 256 B apart, 1,024 per region
      }
      for (uintptr_t i = 0; i < mine.size(); ++i) {
        ASSERT_TRUE(table.Insert(mine[i], Entry(i + 1, t)));
      }
      for (uintptr_t i = 0; i < mine.size(); i += 2) {
        LiveEntry e;
        ASSERT_TRUE(table.Remove(mine[i], &e));
        ASSERT_EQ(e.id, i + 1);
        ASSERT_EQ(e.size, static_cast<uint64_t>(t));
      }
      for (uintptr_t i = 1; i < mine.size(); i += 2) ASSERT_TRUE(table.Contains(mine[i]));
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(table.Size(), 4u * 30000);
}

// A fork child (lifecycle.cc's ForkChild) walks the table it inherited,
// in the middle of a growth (old and new table both hold entries): it sees
// every entry once, with its address rebuilt and its fields intact.
TEST(LiveTable, ForkChildSeesEveryEntryMidGrowth) {
  static LiveTable table;
  std::vector<uintptr_t> regions = RegionsOfOneShard(2);
  uint64_t k = 1;
  for (; table.Memory().resizing == 0 || k < 2000; ++k) {
    ASSERT_TRUE(table.Insert(regions[k % 2] << 16 | (k / 2 + 1) * 8, Entry(k, k)));
  }
  for (int more = 0; more < 50; ++more, ++k) {
    ASSERT_TRUE(table.Insert(regions[k % 2] << 16 | (k / 2 + 1) * 8, Entry(k, k)));
  }
  const uint64_t n = k - 1;
  ASSERT_EQ(table.Memory().resizing, 1u);
  table.LockAll();
  pid_t pid = fork();
  if (pid == 0) {
    table.ResetLocksInChild();
    uint64_t sum[2] = {0, 0};
    table.ForEachUnlocked(
        [](uintptr_t address, const LiveEntry& e, void* ctx) {
          auto* s = static_cast<uint64_t*>(ctx);
          ++s[0];
          bool right = e.id == e.size && (address & 0xffff) == (e.id / 2 + 1) * 8;
          s[1] += right ? e.id : 1000000000;
        },
        sum);
    _exit(sum[0] == n && sum[1] == n * (n + 1) / 2 && table.Size() == n ? 0 : 1);
  }
  table.UnlockAll();
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

// Edge cases written against the earlier table; they hold for the packed one.
TEST(LiveTable, EveryFieldRoundTripsAtItsLimits) {
  static LiveTable table;
  // The stack id shares a word with the api and the internal flag: 55 bits.
  const uint64_t max_stack = (uint64_t{1} << 55) - 1;
  for (int api = 0; api <= 255; ++api) {
    for (bool internal : {false, true}) {
      uintptr_t address = 0x100000 + static_cast<uintptr_t>(api) * 32 + (internal ? 16 : 0);
      LiveEntry in{UINT64_MAX - static_cast<uint64_t>(api), UINT64_MAX, max_stack,
                   static_cast<Api>(api), internal};
      ASSERT_TRUE(table.Insert(address, in));
      LiveEntry out;
      ASSERT_TRUE(table.Remove(address, &out));
      EXPECT_EQ(out.id, in.id);
      EXPECT_EQ(out.size, UINT64_MAX);
      EXPECT_EQ(out.stack, max_stack);
      EXPECT_EQ(out.api, in.api);
      EXPECT_EQ(out.internal, internal);
    }
  }
  EXPECT_EQ(table.Size(), 0u);
}

TEST(LiveTable, InsertOverwritesTheSameAddress) {
  static LiveTable table;
  ASSERT_TRUE(table.Insert(0x3000, Entry(1, 10)));
  ASSERT_TRUE(table.Insert(0x3000, Entry(2, 20)));
  EXPECT_EQ(table.Size(), 1u);
  LiveEntry e;
  ASSERT_TRUE(table.Remove(0x3000, &e));
  EXPECT_EQ(e.id, 2u);
  EXPECT_EQ(e.size, 20u);
  EXPECT_FALSE(table.Remove(0x3000, &e));
}

TEST(LiveTable, RecentlyRemovedRemembersTheLastSixteenOfAShard) {
  static LiveTable table;
  // All in one 64 KiB region, hence one shard.
  const uintptr_t base = 0x7f0000000000;
  auto addr = [&](int i) { return base + static_cast<uintptr_t>(i) * 16; };
  uint64_t id = 0;
  EXPECT_FALSE(table.RecentlyRemoved(addr(0), &id));  // never seen
  ASSERT_TRUE(table.Insert(addr(0), Entry(100, 1)));
  EXPECT_FALSE(table.RecentlyRemoved(addr(0)));  // live
  LiveEntry e;
  ASSERT_TRUE(table.Remove(addr(0), &e));
  ASSERT_TRUE(table.RecentlyRemoved(addr(0), &id));
  EXPECT_EQ(id, 100u);
  // The ring does not look at the table: an address live again is still
  // "recently removed" (live_table.h says "and not live"; callers only ask
  // after Remove failed, when it cannot be live).
  ASSERT_TRUE(table.Insert(addr(0), Entry(101, 1)));
  EXPECT_TRUE(table.RecentlyRemoved(addr(0), &id));
  EXPECT_EQ(id, 100u);
  ASSERT_TRUE(table.Remove(addr(0), &e));
  // Fifteen more removals in the shard: addr(0) is still remembered...
  for (int i = 1; i <= 15; ++i) {
    ASSERT_TRUE(table.Insert(addr(i), Entry(200 + static_cast<uint64_t>(i), 1)));
    ASSERT_TRUE(table.Remove(addr(i), &e));
  }
  ASSERT_TRUE(table.RecentlyRemoved(addr(0), &id));
  EXPECT_EQ(id, 101u);  // the latest removal of that address
  ASSERT_TRUE(table.RecentlyRemoved(addr(15), &id));
  EXPECT_EQ(id, 215u);
  // ...the sixteenth pushes it out of the ring.
  ASSERT_TRUE(table.Insert(addr(16), Entry(216, 1)));
  ASSERT_TRUE(table.Remove(addr(16), &e));
  EXPECT_FALSE(table.RecentlyRemoved(addr(0), &id));
  EXPECT_TRUE(table.RecentlyRemoved(addr(1), &id));
  // A failed Remove records nothing.
  EXPECT_FALSE(table.Remove(addr(500), &e));
  EXPECT_FALSE(table.RecentlyRemoved(addr(500)));
}

TEST(LiveTable, ForEachSeesExactlyTheLiveEntries) {
  static LiveTable table;
  std::map<uintptr_t, uint64_t> want;
  for (uintptr_t i = 1; i <= 3000; ++i) {
    uintptr_t address = i * 4096 + 32;  // many regions, many shards
    table.Insert(address, Entry(i, i * 3, i + 7));
    want[address] = i;
  }
  LiveEntry e;
  for (uintptr_t i = 2; i <= 3000; i += 2) {
    ASSERT_TRUE(table.Remove(i * 4096 + 32, &e));
    want.erase(i * 4096 + 32);
  }
  std::map<uintptr_t, uint64_t> seen;
  bool fields_ok = true;
  struct Ctx {
    std::map<uintptr_t, uint64_t>* seen;
    bool* ok;
  } ctx{&seen, &fields_ok};
  table.ForEachUnlocked(
      [](uintptr_t address, const LiveEntry& entry, void* c) {
        auto* x = static_cast<Ctx*>(c);
        (*x->seen)[address] = entry.id;
        if (entry.size != entry.id * 3 || entry.stack != entry.id + 7) *x->ok = false;
      },
      &ctx);
  EXPECT_EQ(seen, want);
  EXPECT_TRUE(fields_ok);
  EXPECT_EQ(table.Size(), 1500u);
}

}  // namespace
}  // namespace heapsight::preload

namespace heapsight::preload {
namespace {

// --- the counting filter of sampled mode (live_table.h) ---------------------

// Entries from before EnableFilter are counted (internal ones dropped);
// through 200,000 random inserts, overwrites and removes no live address
// ever reads as surely absent, every answer matches a map, and once all
// are removed every slot is back at 0.
TEST(LiveTableFilter, NeverHidesALiveEntryAndCountsBackToZero) {
  static LiveTable table;
  EXPECT_FALSE(table.SurelyAbsent(0x1000));  // off: every address probes
  LiveEntry internal;
  internal.internal = true;
  ASSERT_TRUE(table.Insert(0x1000, Entry(1, 10)));
  ASSERT_TRUE(table.Insert(0x2000, internal));
  ASSERT_TRUE(table.Insert(0x3001, Entry(2, 20)));  // unaligned: side table
  ASSERT_TRUE(table.Insert(0x4001, internal));      // side table, internal
  ASSERT_TRUE(table.EnableFilter());
  EXPECT_TRUE(table.FilterOn());
  EXPECT_EQ(table.FilterBytes(), size_t{1} << LiveTable::kFilterBits);
  EXPECT_EQ(table.Size(), 2u);  // the internal entries are gone
  EXPECT_FALSE(table.Contains(0x2000));
  EXPECT_FALSE(table.Contains(0x4001));
  EXPECT_FALSE(table.SurelyAbsent(0x1000));
  EXPECT_FALSE(table.SurelyAbsent(0x3001));
  EXPECT_EQ(table.FilterMarkedSlots(), 2u);
  // An internal insert with the filter on adds nothing.
  ASSERT_TRUE(table.Insert(0x5000, internal));
  EXPECT_FALSE(table.Contains(0x5000));

  std::map<uintptr_t, uint64_t> reference{{0x1000, 1}, {0x3001, 2}};
  std::mt19937_64 rng(3);
  size_t absent_said = 0, absent_asked = 0;
  for (int step = 0; step < 200000; ++step) {
    // 16-aligned heap-like addresses, some unaligned, some above 2^47.
    uintptr_t address = (rng() % 100000 + 1) * 16;
    if (step % 97 == 0) address += 3;
    if (step % 101 == 0) address |= uintptr_t{1} << 50;
    bool live = reference.count(address) != 0;
    if (live) {
      ASSERT_FALSE(table.SurelyAbsent(address)) << std::hex << address;
    } else {
      ++absent_asked;
      absent_said += table.SurelyAbsent(address);
    }
    if (rng() % 3 != 0) {
      ASSERT_TRUE(table.Insert(address, Entry(step, 1)));
      reference[address] = static_cast<uint64_t>(step);
      ASSERT_FALSE(table.SurelyAbsent(address));
    } else {
      LiveEntry e;
      ASSERT_EQ(table.Remove(address, &e), live) << std::hex << address;
      if (live) {
        EXPECT_EQ(e.id, reference[address]);
      }
      reference.erase(address);
    }
  }
  // About 60,000 live in 2^20 slots: a few percent of absent addresses
  // share a slot with a live one.
  EXPECT_GT(absent_said, absent_asked * 9 / 10);
  EXPECT_LE(table.FilterMarkedSlots(), reference.size());
  for (const auto& [address, id] : reference) {
    ASSERT_FALSE(table.SurelyAbsent(address));
    LiveEntry e;
    ASSERT_TRUE(table.Remove(address, &e));
    EXPECT_EQ(e.id, id);
  }
  EXPECT_EQ(table.Size(), 0u);
  EXPECT_EQ(table.FilterMarkedSlots(), 0u);
}

// 300 addresses of one slot: the count sticks at 255, so the slot keeps
// sending frees to the table (which answers exactly) and never reads 0
// while one of them is live.
TEST(LiveTableFilter, ACrowdedSlotSticksAndNeverLosesAnEntry) {
  static LiveTable table;
  ASSERT_TRUE(table.EnableFilter());
  const size_t slot = LiveTable::FilterSlot(0x10000);
  std::vector<uintptr_t> same;
  for (uintptr_t a = 0x10000; same.size() < 300; a += 16) {
    if (LiveTable::FilterSlot(a) == slot) {
      same.push_back(a);
      a += (uintptr_t{1} << 24) - 16;  // the next one of the slot, if any, is 16 MiB on
    }
  }
  for (size_t i = 0; i < same.size(); ++i) {
    ASSERT_TRUE(table.Insert(same[i], Entry(i, 1)));
    for (size_t j = 0; j <= i; ++j) ASSERT_FALSE(table.SurelyAbsent(same[j]));
  }
  EXPECT_EQ(table.FilterMarkedSlots(), 1u);
  for (size_t i = 0; i < same.size(); ++i) {
    LiveEntry e;
    ASSERT_TRUE(table.Remove(same[i], &e));
    EXPECT_EQ(e.id, i);
    for (size_t j = i + 1; j < same.size(); ++j) ASSERT_FALSE(table.SurelyAbsent(same[j]));
  }
  // Stuck: all gone, the slot still says "ask the table", which says no.
  EXPECT_FALSE(table.SurelyAbsent(same[0]));
  EXPECT_FALSE(table.Contains(same[0]));
  EXPECT_EQ(table.FilterMarkedSlots(), 1u);
}

// StickFilterRange (the bootstrap arena's blocks, recorder.h's free fast
// path): every 8-aligned address of the range reads as "ask the table",
// before and after entries of those slots come and go; the table still
// answers exactly, and addresses of other slots are untouched.
TEST(LiveTableFilter, StuckRangeNeverReadsAbsent) {
  static LiveTable table;
  EXPECT_FALSE(table.StickFilterRange(0x20000, 0x20100));  // filter off
  ASSERT_TRUE(table.EnableFilter());
  EXPECT_EQ(table.FilterMarkedSlots(), 0u);
  ASSERT_TRUE(table.StickFilterRange(0x20004, 0x20100));  // from 0x20008
  // 31 addresses (0x20008 ... 0x200f8), in 16 slots (one per 16 bytes).
  EXPECT_EQ(table.FilterMarkedSlots(), 16u);
  EXPECT_TRUE(table.SurelyAbsent(0x1fff0));  // the granule before (0x20000 shares 0x20008's)
  EXPECT_TRUE(table.SurelyAbsent(0x20100));
  for (uintptr_t a = 0x20008; a < 0x20100; a += 8) {
    ASSERT_FALSE(table.SurelyAbsent(a)) << std::hex << a;
    ASSERT_FALSE(table.Contains(a));
  }
  ASSERT_TRUE(table.Insert(0x20010, Entry(5, 1)));
  LiveEntry e;
  ASSERT_TRUE(table.Remove(0x20010, &e));
  EXPECT_EQ(e.id, 5u);
  EXPECT_FALSE(table.SurelyAbsent(0x20010));  // stuck: not counted back to 0
  EXPECT_FALSE(table.Remove(0x20010, &e));
  EXPECT_EQ(table.FilterMarkedSlots(), 16u);
}

// The slot is the 16-byte granule modulo 2^20: 16-aligned neighbours read
// neighbouring bytes (a 64 KiB stretch of heap: one 4 KiB page of the
// filter), and only addresses 16 MiB apart share a slot.
TEST(LiveTableFilter, SlotsFollowTheHeap) {
  const uintptr_t base = 0x7f0012345670;
  EXPECT_EQ(LiveTable::FilterSlot(base + 16), LiveTable::FilterSlot(base) + 1);
  EXPECT_EQ(LiveTable::FilterSlot(base + 0x10000) - LiveTable::FilterSlot(base), 4096u);
  EXPECT_EQ(LiveTable::FilterSlot(base + (uintptr_t{1} << 24)), LiveTable::FilterSlot(base));
  std::set<size_t> slots;
  for (uintptr_t a = base; a < base + (uintptr_t{1} << 24); a += 16) slots.insert(LiveTable::FilterSlot(a));
  EXPECT_EQ(slots.size(), size_t{1} << LiveTable::kFilterBits);
}

// Threads insert and remove their own addresses, many sharing slots with
// the other threads' (and shards): no live entry ever reads as absent, and
// every count returns to 0.
TEST(LiveTableFilter, ConcurrentThreadsKeepCountsExact) {
  static LiveTable table;
  ASSERT_TRUE(table.EnableFilter());
  constexpr int kThreads = 4;
  std::atomic<int> misses{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &misses] {
      std::mt19937_64 rng(100 + t);
      std::vector<uintptr_t> mine;
      for (int step = 0; step < 50000; ++step) {
        if (mine.size() < 2000 && rng() % 2 == 0) {
          uintptr_t a = ((rng() % 1000000) * kThreads + t + 1) * 16;
          if (table.Contains(a)) continue;
          table.Insert(a, Entry(step, 1));
          mine.push_back(a);
        } else if (!mine.empty()) {
          size_t i = rng() % mine.size();
          if (table.SurelyAbsent(mine[i])) ++misses;
          LiveEntry e;
          if (!table.Remove(mine[i], &e)) ++misses;
          mine[i] = mine.back();
          mine.pop_back();
        }
      }
      for (uintptr_t a : mine) {
        if (table.SurelyAbsent(a)) ++misses;
        LiveEntry e;
        table.Remove(a, &e);
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(misses.load(), 0);
  EXPECT_EQ(table.Size(), 0u);
  EXPECT_EQ(table.FilterMarkedSlots(), 0u);
}

// hang24: the removal a signal handler nested in the defer zone may do
// (nested_hooks.cc, FreeNestedAtOnce): exactly what Remove does for a
// packed entry, and nothing (kBusy) wherever Remove could wait, migrate or
// unmap, or the free is the caller's to report.
TEST(LiveTable, TryRemoveNestedRemovesOnlyWhatNeedsNoWait) {
  static LiveTable table;
  LiveEntry e;
  EXPECT_EQ(table.TryRemoveNested(0x5000, Api::kFree, false, &e),
            LiveTable::NestedRemove::kAbsent);

  // A packed entry: removed as Remove would, and remembered as removed.
  ASSERT_TRUE(table.Insert(0x5000, Entry(11, 777, 5, Api::kMalloc)));
  ASSERT_EQ(table.TryRemoveNested(0x5000, Api::kFree, false, &e),
            LiveTable::NestedRemove::kRemoved);
  EXPECT_EQ(e.id, 11u);
  EXPECT_EQ(e.size, 777u);
  EXPECT_EQ(e.stack, 5u);
  EXPECT_EQ(e.api, Api::kMalloc);
  EXPECT_FALSE(table.Contains(0x5000));
  uint64_t id = 0;
  EXPECT_TRUE(table.RecentlyRemoved(0x5000, &id));
  EXPECT_EQ(id, 11u);
  EXPECT_EQ(table.Size(), 0u);

  // A mismatched free (new'ed, freed with free): left for the caller.
  ASSERT_TRUE(table.Insert(0x6000, Entry(12, 64, 0, Api::kNew)));
  EXPECT_EQ(table.TryRemoveNested(0x6000, Api::kFree, false, &e),
            LiveTable::NestedRemove::kBusy);
  EXPECT_TRUE(table.Contains(0x6000));
  EXPECT_EQ(table.TryRemoveNested(0x6000, Api::kDelete, false, &e),
            LiveTable::NestedRemove::kRemoved);

  // internal_only: a program block stays, heapsight's own goes.
  ASSERT_TRUE(table.Insert(0x7000, Entry(13, 64)));
  EXPECT_EQ(table.TryRemoveNested(0x7000, Api::kFree, true, &e),
            LiveTable::NestedRemove::kBusy);
  EXPECT_TRUE(table.Contains(0x7000));
  LiveEntry internal;
  internal.internal = true;
  ASSERT_TRUE(table.Insert(0x8000, internal));
  ASSERT_EQ(table.TryRemoveNested(0x8000, Api::kFree, true, &e),
            LiveTable::NestedRemove::kRemoved);
  EXPECT_TRUE(e.internal);
  EXPECT_FALSE(table.Contains(0x8000));

  // The shard lock taken (here by LockAll, as fork's prepare handler
  // holds it): nothing waits, nothing changes.
  table.LockAll();
  EXPECT_EQ(table.TryRemoveNested(0x7000, Api::kFree, false, &e),
            LiveTable::NestedRemove::kBusy);
  table.UnlockAll();
  EXPECT_TRUE(table.Contains(0x7000));

  // A side-table entry (a size the packed form cannot hold): erasing it
  // may unmap the side table, so it is left to Remove; so is any address
  // of that shard that the packed table does not hold.
  ASSERT_TRUE(table.Insert(0x9000, Entry(14, 1 << 20)));
  EXPECT_EQ(table.TryRemoveNested(0x9000, Api::kFree, false, &e),
            LiveTable::NestedRemove::kBusy);
  EXPECT_TRUE(table.Contains(0x9000));
  EXPECT_EQ(table.TryRemoveNested(0xa000, Api::kFree, false, &e),
            LiveTable::NestedRemove::kBusy);
  EXPECT_TRUE(table.Remove(0x9000, &e));
  EXPECT_EQ(e.size, uint64_t{1} << 20);
  EXPECT_TRUE(table.Remove(0x7000, &e));
  EXPECT_EQ(table.Size(), 0u);
}

// proc24: a short-lived process's exit walk used to write the lock of, and
// read, all 1024 shard headers (96 pages). Now the whole-table operations
// touch only shards an insert reached, and a lookup of a shard no insert
// reached returns at once: the table's pages stay untouched but for the
// used shard's and the bitmap's. mincore counts a page resident once read
// (the zero page) or written.
TEST(LiveTable, WholeTableWalksLeaveUnusedShardsUntouched) {
  // Constant-initialized (static storage, constexpr constructor): none of
  // its pages is touched before the first use.
  static LiveTable table;
  const long page = sysconf(_SC_PAGESIZE);
  auto lo = (reinterpret_cast<uintptr_t>(&table) + page - 1) & ~uintptr_t(page - 1);
  auto hi = (reinterpret_cast<uintptr_t>(&table) + sizeof table) & ~uintptr_t(page - 1);
  ASSERT_GT(hi, lo);
  const size_t pages = (hi - lo) / page;
  ASSERT_GE(pages, 90u);
  // No huge page may back the range (one would make every page resident).
  ASSERT_EQ(madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_NOHUGEPAGE), 0);
  auto resident = [&]() {
    std::vector<unsigned char> vec(pages);
    EXPECT_EQ(mincore(reinterpret_cast<void*>(lo), hi - lo, vec.data()), 0);
    return static_cast<size_t>(std::count_if(vec.begin(), vec.end(),
                                             [](unsigned char v) { return (v & 1) != 0; }));
  };
  ASSERT_EQ(resident(), 0u);

  const uintptr_t used = uintptr_t{0x7f1234560000};
  ASSERT_TRUE(table.Insert(used, Entry(5, 48, 9)));
  // An address of another shard: nothing there, and not looked at.
  uintptr_t other = used;
  while (LiveTable::ShardIndex(other) == LiveTable::ShardIndex(used)) other += 1 << 16;
  LiveEntry e;
  EXPECT_FALSE(table.Contains(other));
  EXPECT_FALSE(table.Remove(other, &e));
  EXPECT_FALSE(table.RecentlyRemoved(other));

  // The exit walk's calls, and the statistics' ones.
  size_t seen = 0;
  table.LockAll();
  table.ForEachUnlocked(
      [](uintptr_t address, const LiveEntry& entry, void* ctx) {
        EXPECT_EQ(address, uintptr_t{0x7f1234560000});
        EXPECT_EQ(entry.id, 5u);
        EXPECT_EQ(entry.size, 48u);
        ++*static_cast<size_t*>(ctx);
      },
      &seen);
  table.UnlockAll();
  EXPECT_EQ(seen, 1u);
  EXPECT_EQ(table.Size(), 1u);
  EXPECT_EQ(table.Memory().packed + table.Memory().side, 1u);
  EXPECT_GT(table.MappedBytes(), sizeof table);
  // The used shard's header (384 bytes: one page, or two if it straddles)
  // and the bitmap at the object's end (in a page only partly inside the
  // range, or one more), of the 96.
  EXPECT_GE(resident(), 1u);
  EXPECT_LE(resident(), 3u);

  ASSERT_TRUE(table.Remove(used, &e));
  EXPECT_EQ(e.id, 5u);
  EXPECT_TRUE(table.RecentlyRemoved(used));
  EXPECT_EQ(table.Size(), 0u);
}

// proc24: LockAll locks only the shards an insert reached; an insert into a
// shard no insert had reached must then wait until UnlockAll (the touch
// lock), or the table would change under a walk that holds it "whole".
TEST(LiveTable, InsertsIntoFreshShardsWaitForUnlockAll) {
  static LiveTable table;
  constexpr int kThreads = 2;
  constexpr int kPerThread = 400;  // over half of the 1024 shards become used
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kPerThread; ++i) {
        // One block per 64 KiB region: a new region, most often a new shard.
        uintptr_t a = (uintptr_t{0x7e0000000000} + (uintptr_t(i * kThreads + t) << 16));
        ASSERT_TRUE(table.Insert(a, Entry(static_cast<uint64_t>(i + 1), 32)));
        if (i % 16 == 0) std::this_thread::yield();
      }
    });
  }
  auto count = [](uintptr_t, const LiveEntry&, void* ctx) { ++*static_cast<size_t*>(ctx); };
  go.store(true);
  size_t walks = 0;
  for (size_t last = 0; last < size_t{kThreads} * kPerThread; ++walks) {
    size_t first = 0, second = 0;
    table.LockAll();
    table.ForEachUnlocked(count, &first);
    for (int k = 0; k < 20; ++k) std::this_thread::yield();
    table.ForEachUnlocked(count, &second);
    table.UnlockAll();
    ASSERT_EQ(first, second) << "walk " << walks;
    last = second;
    // Let the inserters run (a spin lock is not fair to them).
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(table.Size(), size_t{kThreads} * kPerThread);
}

}  // namespace
}  // namespace heapsight::preload
