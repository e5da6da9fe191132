// tests/analyzer/model/address_pairing_test.cc: the pairing stage of
// address-frees traces (format version 6): AddressPairer on events fed in
// a chosen order, and AnalyzeTrace on traces written by the real encoder
// in both modes (version 4 with ids, version 6 with addresses) that must
// give the same profile.
#include "analyzer/model/address_pairing.h"

#include <unistd.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "analyzer/model/pairing_converter.h"
#include "analyzer/model/trace_model.h"
#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer {
namespace {

using format::Api;
using format::RecordTag;
using testing::TestTraceWriter;

// Events as DecodeChunk makes them from version-6 records (chunk_events.h).
Event AllocEvent(uint32_t stream, uint64_t time, uint64_t id, uint64_t address, uint64_t order,
                 uint64_t size = 16) {
  Event e{};
  e.tag = RecordTag::kAlloc;
  e.api = Api::kMalloc;
  e.code = static_cast<uint8_t>(order);
  e.stream = stream;
  e.time_us = time;
  e.id = id;
  e.size = size;
  e.stack = 1;
  e.address = address;
  return e;
}
Event FreeEvent(uint32_t stream, uint64_t time, uint64_t address, uint64_t order) {
  Event e{};
  e.tag = RecordTag::kFree;
  e.api = Api::kFree;
  e.code = static_cast<uint8_t>(order);
  e.stream = stream;
  e.time_us = time;
  e.address = address;
  return e;
}
Event ReallocEvent(uint32_t stream, uint64_t time, uint64_t id, uint64_t old_address,
                   uint64_t old_order, uint64_t address, uint64_t order) {
  Event e{};
  e.tag = RecordTag::kRealloc;
  e.api = Api::kRealloc;
  e.code = static_cast<uint8_t>(order);
  e.paired = static_cast<uint8_t>(old_order);
  e.stream = stream;
  e.time_us = time;
  e.value = time;
  e.id = id;
  e.old_id = old_address;
  e.size = 32;
  e.stack = 2;
  e.address = address;
  return e;
}

// "alloc 5", "free 5", "realloc 5->6", "free* 5" (a realloc's old block
// alone) per output event.
std::vector<std::string> Feed(AddressPairer& p, const std::vector<Event>& in, bool finish = true) {
  EventArray out;
  for (const Event& e : in) p.Add(e, &out);
  if (finish) p.Finish(&out);
  std::vector<std::string> got;
  for (const Event& e : out) {
    EXPECT_EQ(e.paired, 0);
    switch (e.tag) {
      case RecordTag::kAlloc:
        EXPECT_EQ(e.code, 0);
        EXPECT_EQ(e.full, nullptr);
        got.push_back("alloc " + std::to_string(e.id));
        break;
      case RecordTag::kFree:
        got.push_back((e.code == kReallocOldFree ? "free* " : "free ") + std::to_string(e.id));
        break;
      case RecordTag::kRealloc:
        EXPECT_EQ(e.code, 0);
        got.push_back("realloc " + std::to_string(e.old_id) + "->" + std::to_string(e.id));
        break;
      default:
        got.push_back("other");
        break;
    }
  }
  return got;
}

using Out = std::vector<std::string>;
constexpr uint64_t kA = 0x1000, kB = 0x2000;

TEST(AddressPairerTest, FreesGetTheIdOfTheBlockLiveAtTheirAddress) {
  AddressPairer p(false);
  EXPECT_EQ(Feed(p, {AllocEvent(0, 1, 5, kA, 0), AllocEvent(0, 2, 6, kB, 0),
                     FreeEvent(0, 3, kB, 0), FreeEvent(0, 4, kA, 0), AllocEvent(0, 5, 7, kA, 0),
                     FreeEvent(0, 6, kA, 0)}),
            (Out{"alloc 5", "alloc 6", "free 6", "free 5", "alloc 7", "free 7"}));
  EXPECT_EQ(p.stats().events, 6u);
  EXPECT_EQ(p.stats().held, 0u);
  EXPECT_EQ(p.stats().forced, 0u);
}

// Thread 0 allocates and frees A (counts 1, 2); thread 1 then allocates A
// (a hand-off: count 3) and frees it. The merge shows thread 1's first.
TEST(AddressPairerTest, HandOffSeenBeforeItsPredecessorsWaitsForThem) {
  AddressPairer p(false);
  EXPECT_EQ(Feed(p, {AllocEvent(1, 10, 100, kA, format::AddressOrder(3)),
                     FreeEvent(1, 10, kA, 0), AllocEvent(0, 10, 5, kA, 0),
                     FreeEvent(0, 10, kA, 0)}),
            (Out{"alloc 5", "free 5", "alloc 100", "free 100"}));
  EXPECT_EQ(p.stats().held, 1u);  // thread 1's free only waited behind its allocation
  EXPECT_EQ(p.stats().forced, 0u);
  EXPECT_EQ(p.held(), 0u);
}

// A free by another thread than the allocating one, seen before the
// allocation; and a stream's other events wait behind its held one.
TEST(AddressPairerTest, FreeBeforeItsAllocationWaitsAndHoldsItsStream) {
  AddressPairer p(false);
  EXPECT_EQ(Feed(p, {FreeEvent(1, 7, kA, format::AddressOrder(2)), AllocEvent(1, 7, 200, kB, 0),
                     AllocEvent(0, 7, 5, kA, 0)}),
            (Out{"alloc 5", "free 5", "alloc 200"}));
  EXPECT_EQ(p.stats().held, 1u);
}

// An order-0 event names its own thread as the address's last: another
// thread's event there, applied first, makes it wait, and the count
// puts the hand-off in its place.
TEST(AddressPairerTest, CountOrdersOneThreadsBlocksAroundAnothers) {
  AddressPairer p(false);
  // True order: t0 alloc A (1), t0 free A (2), t1 alloc A (3), t1 free A
  // (4), t0 alloc A (5). Seen: t0's three first, then t1's.
  EXPECT_EQ(Feed(p, {AllocEvent(0, 3, 5, kA, 0), FreeEvent(0, 3, kA, 0),
                     AllocEvent(0, 3, 6, kA, format::AddressOrder(5)),
                     AllocEvent(1, 3, 100, kA, format::AddressOrder(3)), FreeEvent(1, 3, kA, 0)}),
            (Out{"alloc 5", "free 5", "alloc 100", "free 100", "alloc 6"}));
  EXPECT_EQ(p.stats().forced, 0u);
}

TEST(AddressPairerTest, ReallocInPlaceAndToAnotherAddress) {
  AddressPairer p(false);
  EXPECT_EQ(Feed(p, {AllocEvent(0, 1, 5, kA, 0), ReallocEvent(0, 2, 6, kA, 0, kA, 0),
                     ReallocEvent(0, 3, 7, kA, 0, kB, 0), FreeEvent(0, 4, kB, 0)}),
            (Out{"alloc 5", "realloc 5->6", "realloc 6->7", "free 7"}));
}

// Thread 1 reallocs its block at B to A while thread 0's block at A is
// still live in merged order (thread 0's free of A is seen later): the old
// block goes at once, the new one when A is free.
TEST(AddressPairerTest, ReallocWhoseNewAddressIsStillLiveSplits) {
  AddressPairer p(false);
  EXPECT_EQ(Feed(p, {AllocEvent(0, 1, 5, kA, 0), AllocEvent(1, 1, 100, kB, 0),
                     ReallocEvent(1, 2, 101, kB, 0, kA, format::AddressOrder(3)),
                     FreeEvent(0, 2, kA, 0)}),
            (Out{"alloc 5", "alloc 100", "free* 100", "free 5", "alloc 101"}));
  EXPECT_EQ(p.stats().forced, 0u);
}

// An allocation at a live address that never becomes consistent: at the
// end the block there is released by a phantom free.
TEST(AddressPairerTest, AllocationAtALiveAddressIsAPhantomFreeAtTheEnd) {
  AddressPairer p(false);
  EXPECT_EQ(Feed(p, {AllocEvent(0, 1, 5, kA, 0), AllocEvent(0, 2, 6, kA, 0)}),
            (Out{"alloc 5", "free* 5", "alloc 6"}));
  EXPECT_EQ(p.stats().forced, 1u);
  EXPECT_EQ(p.stats().phantom_frees, 1u);
}

TEST(AddressPairerTest, FreeOfAnUnknownAddressIsDroppedAndCounted) {
  AddressPairer p(false);
  EXPECT_EQ(Feed(p, {FreeEvent(0, 1, kA, 0), AllocEvent(1, 2, 100, kB, 0)}),
            (Out{"alloc 100"}));
  EXPECT_EQ(p.stats().unknown_frees, 1u);
  EXPECT_EQ(p.stats().forced, 1u);
}

// A held event is forced once the merge is hold_slack_us past it, not
// only at the end.
TEST(AddressPairerTest, HeldEventIsForcedAfterTheSlack) {
  AddressPairer p(false, /*hold_slack_us=*/10);
  EventArray out;
  p.Add(FreeEvent(0, 100, kA, 0), &out);
  p.Add(AllocEvent(1, 105, 100, kB, 0), &out);
  EXPECT_EQ(p.held(), 1u);
  p.Add(AllocEvent(1, 111, 101, kA, 0), &out);
  EXPECT_EQ(p.held(), 0u);
  EXPECT_EQ(p.stats().unknown_frees, 1u);
  EXPECT_EQ(out.size(), 2u);
}

// Why a freed address keeps its state however old it is (address_pairing.h,
// "Why a freed address's state is never dropped"): thread 0 frees A long
// before the merge reaches the rest (count 2), thread 1 allocates and frees
// A (counts 3, 4) with a late clock, and thread 2's allocation there
// (count 5) reaches the merge first. Only the count kept since the old free
// shows that thread 2's hand-off skips two events: it waits for thread 1's
// and nothing is forced.
TEST(AddressPairerTest, OldFreedAddressReusedOutOfOrderAcrossThreadsWaits) {
  AddressPairer p(false);
  std::vector<Event> in = {AllocEvent(0, 1, 5, kA, 0), FreeEvent(0, 2, kA, 0)};
  // Ten seconds of thread 0's churn elsewhere: far past the slack.
  for (uint64_t i = 0; i < 1000; ++i) {
    in.push_back(AllocEvent(0, 10 + i * 10'000, 6 + i, kB + 16 * (i % 7), 0));
    in.push_back(FreeEvent(0, 15 + i * 10'000, kB + 16 * (i % 7), 0));
  }
  in.push_back(AllocEvent(2, 10'000'005, 300, kA, format::AddressOrder(5)));
  in.push_back(AllocEvent(1, 10'000'010, 200, kA, format::AddressOrder(3)));
  in.push_back(FreeEvent(1, 10'000'011, kA, 0));
  in.push_back(FreeEvent(2, 10'000'012, kA, 0));
  Out got = Feed(p, in);
  ASSERT_EQ(got.size(), 2006u);
  EXPECT_EQ((Out(got.end() - 4, got.end())),
            (Out{"alloc 200", "free 200", "alloc 300", "free 300"}));
  EXPECT_EQ(p.stats().held, 1u);  // thread 2's allocation (its free only waited behind it)
  EXPECT_EQ(p.stats().forced, 0u);
  EXPECT_EQ(p.stats().phantom_frees, 0u);
  EXPECT_EQ(p.address_count(), 8u);  // A and the 7 churned addresses
}

// The pairing keeps one state per address used, however many events: 200,000
// allocations and frees by two threads over 1,000 addresses leave 1,000
// states, in the smallest table that holds them at its load limit (3/4).
TEST(AddressPairerTest, StatesAreBoundedByTheAddressesUsed) {
  AddressPairer p(false);
  EventArray out;
  uint8_t count[1000] = {};
  uint32_t last[1000] = {};
  uint64_t next_id[2] = {1, 1};
  uint64_t live = 0;
  for (uint64_t i = 0; i < 100'000; ++i) {
    const size_t a = (i * 7919) % 1000;
    const uint32_t thread = static_cast<uint32_t>((i / 3) % 2);
    const uint64_t address = 0x10000 + 16 * a;
    // Thread `thread` allocates at `address` and frees it at once: each is
    // a hand-off when the address's last event was the other thread's.
    auto order = [&](uint32_t t) {
      const bool hand_off = count[a] != 0 && last[a] != t;
      ++count[a];
      last[a] = t;
      return hand_off ? format::AddressOrder(count[a] % 16) : format::kAddressOrderNone;
    };
    const uint64_t id = format::MakeAllocId(thread, next_id[thread]++);
    uint64_t o = order(thread);
    p.Add(AllocEvent(thread, i, id, address, o), &out);
    o = order(thread);
    p.Add(FreeEvent(thread, i, address, o), &out);
  }
  p.Finish(&out);
  for (const Event& e : out) live += e.tag == RecordTag::kAlloc ? 1 : 0;
  EXPECT_EQ(live, 100'000u);
  EXPECT_EQ(out.size(), 200'000u);
  EXPECT_EQ(p.stats().held, 0u);
  EXPECT_EQ(p.stats().forced, 0u);
  EXPECT_EQ(p.address_count(), 1000u);
  EXPECT_EQ(p.state_capacity(), 2048u);
  size_t live_now = 0;
  p.ForEachLive([&](uint64_t, uint64_t) { ++live_now; });
  EXPECT_EQ(live_now, 0u);
}

// Record's conversion and the live server pair in file order: a thread's
// chunk of thousands of events comes whole, before or after the other
// threads' chunks, so a thread's events wait behind hand-offs that other
// threads' later chunks resolve. Four threads share 64 addresses (frees
// and reallocs of each other's blocks); fed in chunks of 3,000 events per
// thread, the pairing must give each thread the blocks the time order
// gives it, force nothing, and hold thousands of events on the way.
TEST(AddressPairerTest, WholeChunksInFileOrderPairAsTheTimeOrderDoes) {
  constexpr int kThreads = 4, kAddresses = 64, kSteps = 40'000;
  std::mt19937_64 rng(15);
  struct Slot {
    bool live = false;
    uint8_t count = 0;
    uint32_t last = 0;
    bool used = false;
  };
  std::vector<Slot> slots(kAddresses);
  std::vector<std::vector<Event>> per_thread(kThreads);
  std::vector<Event> by_time;
  uint64_t next_id[kThreads] = {};
  auto order = [&](Slot& s, uint32_t t) {
    const bool hand_off = s.used && s.last != t;
    ++s.count;
    s.last = t;
    s.used = true;
    return hand_off ? format::AddressOrder(s.count % 16) : format::kAddressOrderNone;
  };
  for (uint64_t time = 0; time < kSteps; ++time) {
    const auto t = static_cast<uint32_t>(rng() % kThreads);
    const size_t a = rng() % kAddresses, b = rng() % kAddresses;
    const uint64_t address = 0x10000 + 16 * a;
    Event e;
    if (!slots[a].live) {
      e = AllocEvent(t, time, format::MakeAllocId(t, next_id[t]++), address, order(slots[a], t));
      slots[a].live = true;
    } else if (a == b || slots[b].live || rng() % 2 == 0) {
      e = FreeEvent(t, time, address, order(slots[a], t));
      slots[a].live = false;
    } else {  // a realloc that moves the block from a to b
      const uint64_t old_order = order(slots[a], t);
      slots[a].live = false;
      e = ReallocEvent(t, time, format::MakeAllocId(t, next_id[t]++), address, old_order,
                       0x10000 + 16 * b, order(slots[b], t));
      slots[b].live = true;
    }
    per_thread[t].push_back(e);
    by_time.push_back(e);
  }
  std::vector<Event> by_chunk;
  for (size_t begin = 0; by_chunk.size() < by_time.size(); begin += 3000) {
    for (const std::vector<Event>& events : per_thread) {
      for (size_t i = begin; i < std::min(events.size(), begin + 3000); ++i) {
        by_chunk.push_back(events[i]);
      }
    }
  }
  // Per thread: "a<id>" for each block it allocates, "f<id>" for each it
  // releases (a realloc both; whether it was split does not matter).
  size_t most_held = 0;
  auto per_stream = [&](AddressPairer& p, const std::vector<Event>& in) {
    EventArray out;
    for (const Event& e : in) {
      p.Add(e, &out);
      most_held = std::max(most_held, p.held());
    }
    p.Finish(&out);
    std::vector<std::vector<std::string>> got(kThreads);
    for (const Event& e : out) {
      std::vector<std::string>& g = got.at(e.stream);
      if (e.tag == RecordTag::kAlloc) g.push_back("a" + std::to_string(e.id));
      if (e.tag == RecordTag::kFree) g.push_back("f" + std::to_string(e.id));
      if (e.tag == RecordTag::kRealloc) {
        g.push_back("f" + std::to_string(e.old_id));
        g.push_back("a" + std::to_string(e.id));
      }
    }
    return got;
  };
  AddressPairer in_time(false, /*hold_slack_us=*/0, /*max_held=*/size_t{1} << 20);
  AddressPairer in_chunks(false, /*hold_slack_us=*/0, /*max_held=*/size_t{1} << 20);
  const auto want = per_stream(in_time, by_time);
  const auto got = per_stream(in_chunks, by_chunk);
  EXPECT_EQ(in_time.stats().held, 0u);
  EXPECT_EQ(in_chunks.stats().forced, 0u);
  EXPECT_EQ(in_chunks.stats().phantom_frees, 0u);
  EXPECT_EQ(in_chunks.stats().unknown_frees, 0u);
  EXPECT_GT(in_chunks.stats().held, 100u);  // out of order (the rest waited behind them)
  EXPECT_GT(most_held, 2000u);
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(got[t], want[t]) << "thread " << t;
    EXPECT_GT(want[t].size(), 9000u);
  }
}

// A fork child's first events at an inherited address: whatever order
// value (the parent's cells), the block is the inherited one.
TEST(AddressPairerTest, InheritedBlocksGetIdsOfTheirOwn) {
  AddressPairer p(/*fork_child=*/true);
  Event inherited{};
  inherited.tag = RecordTag::kInherited;
  inherited.api = Api::kMalloc;
  inherited.id = kA;  // the address
  inherited.size = 48;
  EventArray out;
  p.Add(inherited, &out);
  p.Add(FreeEvent(0, 1, kA, format::AddressOrder(10)), &out);
  p.Add(AllocEvent(0, 2, 5, kB, format::AddressOrder(4)), &out);  // the parent's count
  p.Finish(&out);
  ASSERT_EQ(out.size(), 3u);
  const uint64_t id = format::MakeAllocId(kInheritedThread, 1);
  EXPECT_EQ(out[0].id, id);
  EXPECT_EQ(out[1].tag, RecordTag::kFree);
  EXPECT_EQ(out[1].id, id);
  EXPECT_EQ(out[2].id, 5u);
  EXPECT_EQ(p.stats().held, 0u);
}

// --- AnalyzeTrace on traces written both ways ------------------------------

std::string WriteTrace(TestTraceWriter& w, const std::string& name) {
  std::string path = ::testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".hst";
  EXPECT_TRUE(w.WriteFile(path));
  return path;
}

ProcessProfile Analyze(const std::string& path, AnalyzeOptions options = {}) {
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path, options);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? std::move(*p) : ProcessProfile{};
}

// The numbers every report prints, per site and in total.
void ExpectSameProfile(const ProcessProfile& a, const ProcessProfile& b, bool same_peak) {
  const Totals& x = a.totals;
  const Totals& y = b.totals;
  EXPECT_EQ(x.allocs, y.allocs);
  EXPECT_EQ(x.frees, y.frees);
  EXPECT_EQ(x.bytes_allocated, y.bytes_allocated);
  EXPECT_EQ(x.leaked_bytes, y.leaked_bytes);
  EXPECT_EQ(x.leaked_blocks, y.leaked_blocks);
  EXPECT_EQ(x.temporary, y.temporary);
  EXPECT_EQ(x.unmatched_frees, y.unmatched_frees);
  EXPECT_EQ(x.bad_frees, y.bad_frees);
  EXPECT_EQ(x.frees_by_api, y.frees_by_api);
  if (same_peak) {
    EXPECT_EQ(x.peak_bytes, y.peak_bytes);
    EXPECT_EQ(x.peak_blocks, y.peak_blocks);
    EXPECT_EQ(x.peak_time_us, y.peak_time_us);
  }
  // Sites by (stack, api): the merge meets one microsecond's first
  // allocations in an order that depends on the chunks' bounds.
  ASSERT_EQ(a.sites.size(), b.sites.size());
  std::map<std::pair<uint64_t, Api>, const Site*> by_key;
  for (const Site& site : b.sites) by_key[{site.stack, site.api}] = &site;
  for (size_t i = 0; i < a.sites.size(); ++i) {
    auto it = by_key.find({a.sites[i].stack, a.sites[i].api});
    ASSERT_NE(it, by_key.end());
    const SiteStats& s = a.sites[i].stats;
    const SiteStats& t = it->second->stats;
    EXPECT_EQ(s.alloc_count, t.alloc_count) << i;
    EXPECT_EQ(s.leaked_count, t.leaked_count) << i;
    EXPECT_EQ(s.leaked_bytes, t.leaked_bytes) << i;
    EXPECT_EQ(s.temporary_count, t.temporary_count) << i;
    if (same_peak) {
      EXPECT_EQ(s.peak_bytes, t.peak_bytes) << i;
    }
  }
  EXPECT_EQ(a.leak_classes.errors.size(), b.leak_classes.errors.size());
  for (size_t i = 0; i < a.leak_classes.errors.size() && i < b.leak_classes.errors.size(); ++i) {
    EXPECT_EQ(a.leak_classes.errors[i].alloc_known, b.leak_classes.errors[i].alloc_known);
    EXPECT_EQ(a.leak_classes.errors[i].alloc_stack, b.leak_classes.errors[i].alloc_stack);
  }
  EXPECT_EQ(a.leak_classes.sites.size(), b.leak_classes.sites.size());
}

// One program written both ways: threads allocating, freeing each other's
// blocks and reallocating, on an allocator that reuses the most recently
// freed address (so addresses pass between threads), with many events in
// one microsecond across threads and chunks flushed at random: the merge
// meets the events of one address out of order, and the version-6 profile
// must still be the version-4 one.
void RandomProgram(uint32_t seed, AddressPairingStats* stats) {
  std::mt19937 rng(seed);
  TestTraceWriter v4(4242, 1, 512), v6(4242, 1, 512);
  v6.UseAddressFrees();
  constexpr uint32_t kThreads = 4;
  for (uint32_t t = 0; t < kThreads; ++t) {
    v4.StackNode(t, t + 1, 0, 0x1000 * (t + 1));
    v6.StackNode(t, t + 1, 0, 0x1000 * (t + 1));
  }
  struct Block {
    uint64_t id4, address, size;
  };
  std::vector<Block> live;
  std::vector<uint64_t> free_addresses;
  uint64_t next_address = 0x10000;
  auto take_address = [&]() {
    if (!free_addresses.empty() && rng() % 4 != 0) {
      uint64_t a = free_addresses.back();
      free_addresses.pop_back();
      return a;
    }
    next_address += 64;
    return next_address;
  };
  uint64_t time = 100;
  for (int op = 0; op < 3000; ++op) {
    if (rng() % 3 == 0) ++time;  // many events share a microsecond
    const uint32_t t = rng() % kThreads;
    const uint64_t stack = t + 1;
    const int kind = live.empty() ? 0 : static_cast<int>(rng() % 6);
    if (kind <= 2) {  // allocate
      const uint64_t size = 16 + rng() % 200;
      const uint64_t address = take_address();
      uint64_t id4 = v4.Alloc(t, time, Api::kMalloc, size, stack);
      v6.AllocAt(t, time, Api::kMalloc, size, stack, address);
      live.push_back({id4, address, size});
    } else if (kind <= 4) {  // free a random block (often another thread's)
      const size_t i = rng() % live.size();
      v4.Free(t, time, live[i].id4);
      v6.FreeAt(t, time, live[i].address);
      free_addresses.push_back(live[i].address);
      live.erase(live.begin() + static_cast<ptrdiff_t>(i));
    } else {  // realloc, in place or moved
      const size_t i = rng() % live.size();
      const uint64_t size = 16 + rng() % 400;
      const uint64_t old = live[i].address;
      uint64_t address = old;
      if (rng() % 2 == 0) {
        free_addresses.push_back(old);
        address = take_address();
        if (address == old) address = (next_address += 64);
      }
      uint64_t id4 = v4.Realloc(t, time, live[i].id4, size, stack);
      v6.ReallocAtAddress(t, time, time, old, size, stack, address);
      live[i] = {id4, address, size};
    }
    if (rng() % 50 == 0) {
      const uint32_t f = rng() % kThreads;
      v4.Flush(f);
      v6.Flush(f);
    }
  }
  v4.End(0, time + 1);
  v6.End(0, time + 1);
  const std::string name = "random" + std::to_string(seed);
  ProcessProfile a = Analyze(WriteTrace(v4, name + "v4"));
  AnalyzeOptions options;
  options.address_pairing = stats;
  const std::string v6_path = WriteTrace(v6, name + "v6");
  ProcessProfile b = Analyze(v6_path, options);
  EXPECT_EQ(b.header.version, format::kFormatVersionAddress);
  EXPECT_EQ(stats->forced, 0u);
  EXPECT_EQ(stats->unknown_frees, 0u);
  EXPECT_EQ(stats->phantom_frees, 0u);
  EXPECT_EQ(a.totals.leaked_blocks, live.size());
  // The version-4 merge may put one microsecond's events of two threads
  // in another order than they happened (it needs no order); the pairing
  // puts them in theirs: the peak may then differ by that instant.
  ExpectSameProfile(a, b, /*same_peak=*/stats->held == 0);
  // The version-6 trace converted to version 4 (pairing_converter.h), which
  // pairs in file order rather than the merge's: the same profile again.
  const std::string converted = v6_path + ".v4";
  unlink(converted.c_str());
  PairingConversionStats conversion;
  ASSERT_TRUE(ConvertAddressTrace(v6_path, converted, 3, &conversion).ok());
  EXPECT_EQ(conversion.pairing.forced, 0u);
  ProcessProfile c = Analyze(converted);
  EXPECT_EQ(c.header.version, format::kFormatVersion);
  ExpectSameProfile(a, c, /*same_peak=*/stats->held == 0);
  unlink(converted.c_str());
}

TEST(AddressPairingTraceTest, RandomProgramsGiveTheVersion4Profile) {
  uint64_t held = 0;
  for (uint32_t seed = 1; seed <= 12; ++seed) {
    SCOPED_TRACE(seed);
    AddressPairingStats stats;
    RandomProgram(seed, &stats);
    EXPECT_EQ(stats.events, 3000u);
    held += stats.held;
  }
  // The programs did meet out-of-order events (else this tests less).
  EXPECT_GT(held, 0u);
}

// Two threads' events at one address inverted by their timestamps (thread
// 1 was preempted between its cell update and its clock read): the merge
// shows thread 1's allocation of A before thread 0's free of A.
TEST(AddressPairingTraceTest, InvertedTimestampsAcrossThreads) {
  TestTraceWriter w;
  w.UseAddressFrees();
  w.StackNode(0, 1, 0, 0x1000);
  w.StackNode(1, 2, 0, 0x2000);
  const uint64_t a0 = w.AllocAt(0, 10, Api::kMalloc, 100, 1, kA);
  w.FreeAt(0, 20, kA);
  const uint64_t a1 = w.AllocAt(1, 19, Api::kNew, 300, 2, kA);  // after the free, stamped before
  w.End(0, 30);
  AddressPairingStats stats;
  AnalyzeOptions options;
  options.address_pairing = &stats;
  ProcessProfile p = Analyze(WriteTrace(w, "inverted"), options);
  EXPECT_EQ(stats.held, 1u);
  EXPECT_EQ(stats.forced, 0u);
  EXPECT_EQ(p.totals.allocs, 2u);
  EXPECT_EQ(p.totals.frees, 1u);
  EXPECT_EQ(p.totals.leaked_bytes, 300u);  // thread 1's block, not thread 0's
  EXPECT_EQ(p.totals.leaked_blocks, 1u);
  EXPECT_EQ(p.totals.peak_bytes, 300u);
  EXPECT_TRUE(p.warnings.empty());
  (void)a0;
  (void)a1;
}

// Leak-scan classes name addresses; free errors name the block at theirs.
TEST(AddressPairingTraceTest, BlockClassesAndFreeErrorsFindTheirBlocks) {
  TestTraceWriter w;
  w.UseAddressFrees();
  w.StackNode(0, 1, 0, 0x1000);
  w.StackNode(0, 2, 0, 0x2000);
  w.StackNode(0, 3, 0, 0x3000);
  w.AllocAt(0, 10, Api::kMalloc, 100, 1, kA);
  w.AllocAt(0, 11, Api::kNew, 40, 2, kB);
  // delete[] of a new'd block: the error, then the free that releases it.
  w.FreeError(0, 12, Api::kDeleteArray, format::FreeError::kMismatchedFree, kB, 3, 0);
  w.FreeAt(0, 12, kB, Api::kDeleteArray);
  w.LeakScan(0, 13, 1);
  w.BlockClasses(0, 1, format::LeakClass::kDefinite, {kA, 0x999000});
  w.End(0, 14);
  AddressPairingStats stats;
  AnalyzeOptions options;
  options.address_pairing = &stats;
  ProcessProfile p = Analyze(WriteTrace(w, "classes"), options);
  ASSERT_EQ(p.leak_classes.errors.size(), 1u);
  EXPECT_TRUE(p.leak_classes.errors[0].alloc_known);
  EXPECT_EQ(p.leak_classes.errors[0].alloc_stack, 2u);
  EXPECT_EQ(p.leak_classes.errors[0].alloc_size, 40u);
  EXPECT_EQ(stats.unknown_classes, 1u);
  ASSERT_EQ(p.leak_classes.sites.size(), 1u);
  EXPECT_EQ(p.leak_classes.sites.begin()->first.first, 1u);
  EXPECT_EQ(p.totals.leaked_bytes, 100u);
}

// A free of an address nothing was allocated at is an unmatched free, as
// a version-4 free of an unknown id; and `report` says so.
TEST(AddressPairingTraceTest, UnknownAddressIsAnUnmatchedFree) {
  TestTraceWriter w;
  w.UseAddressFrees();
  w.StackNode(0, 1, 0, 0x1000);
  w.AllocAt(0, 10, Api::kMalloc, 100, 1, kA);
  w.FreeAt(0, 11, 0x7777000);
  w.AllocAt(0, 12, Api::kMalloc, 50, 1, kA, /*order=*/0);  // A is live: a lost free
  w.End(0, 20);
  ProcessProfile p = Analyze(WriteTrace(w, "unknown"));
  EXPECT_EQ(p.totals.unmatched_frees, 1u);
  EXPECT_EQ(p.totals.frees, 1u);  // the phantom free of the first block
  EXPECT_EQ(p.totals.leaked_bytes, 50u);
  std::string warnings;
  for (const std::string& s : p.warnings) warnings += s + "\n";
  EXPECT_NE(warnings.find("1 frees name blocks this trace never allocated"), std::string::npos)
      << warnings;
  EXPECT_NE(warnings.find("2 address events stayed out of order"), std::string::npos) << warnings;
  EXPECT_NE(warnings.find("1 blocks were released without a free record"), std::string::npos)
      << warnings;
}

}  // namespace
}  // namespace heapsight::analyzer
