// tests/analyzer/model/chunk_pairing_test.cc: which allocations and releases
// PairInChunk pairs in one chunk's events, and what it writes into them.
#include "analyzer/model/chunk_pairing.h"

#include <vector>

#include "format/trace_format.h"
#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

using format::Api;
using format::MakeAllocId;
using format::RecordTag;

Event Alloc(uint64_t id, uint64_t size, uint64_t stack, Api api = Api::kMalloc) {
  Event e{};
  e.tag = RecordTag::kAlloc;
  e.api = api;
  e.id = id;
  e.size = size;
  e.stack = stack;
  return e;
}

Event Free(uint64_t id, Api api = Api::kFree) {
  Event e{};
  e.tag = RecordTag::kFree;
  e.api = api;
  e.id = id;
  return e;
}

Event Realloc(uint64_t old_id, uint64_t id, uint64_t size, uint64_t stack) {
  Event e{};
  e.tag = RecordTag::kRealloc;
  e.api = Api::kRealloc;
  e.old_id = old_id;
  e.id = id;
  e.size = size;
  e.stack = stack;
  e.value = 77;  // the new block's time
  return e;
}

Event Other(RecordTag tag) {
  Event e{};
  e.tag = tag;
  return e;
}

uint64_t Id(uint64_t counter) { return MakeAllocId(3, counter); }

TEST(ChunkPairingTest, FreesAndReallocsPairWithTheirAllocationsInTheChunk) {
  std::vector<Event> ev = {
      Free(Id(5)),                      // 0: allocated in an earlier chunk
      Alloc(Id(10), 48, 7, Api::kNew),  // 1: freed at 4
      Alloc(Id(11), 16, 8),             // 2: reallocated at 5
      Other(RecordTag::kStackNode),     // 3: no barrier
      Free(Id(10), Api::kDelete),       // 4
      Realloc(Id(11), Id(12), 64, 9),   // 5: old pairs with 2; new freed at 7
      Other(RecordTag::kRss),           // 6: no barrier
      Free(Id(12)),                     // 7
      Alloc(Id(13), 8, 1),              // 8: still live at the chunk's end
  };
  std::vector<uint32_t> scratch;
  EXPECT_EQ(PairInChunk(ev.data(), ev.size(), &scratch), 3u);

  EXPECT_EQ(ev[0].paired, 0);
  EXPECT_EQ(ev[0].size, 0u);
  EXPECT_EQ(ev[1].paired, kPairedBlock);
  EXPECT_EQ(ev[2].paired, kPairedBlock);
  // The free carries its block's size, stack and allocation api; its own
  // api and id stay.
  EXPECT_EQ(ev[4].paired, kPairedBlock);
  EXPECT_EQ(ev[4].id, Id(10));
  EXPECT_EQ(ev[4].api, Api::kDelete);
  EXPECT_EQ(ev[4].size, 48u);
  EXPECT_EQ(ev[4].stack, 7u);
  EXPECT_EQ(ev[4].value, static_cast<uint64_t>(Api::kNew));
  // The realloc: old block 3 events back, new block paired with 7.
  EXPECT_EQ(ev[5].paired, kPairedOldBlock | kPairedBlock);
  EXPECT_EQ(ev[5].old_id, 3u);
  EXPECT_EQ((&ev[5])[-static_cast<ptrdiff_t>(ev[5].old_id)].id, Id(11));
  EXPECT_EQ(ev[5].id, Id(12));
  EXPECT_EQ(ev[5].size, 64u);
  EXPECT_EQ(ev[5].value, 77u);
  EXPECT_EQ(ev[7].paired, kPairedBlock);
  EXPECT_EQ(ev[7].size, 64u);
  EXPECT_EQ(ev[7].stack, 9u);
  EXPECT_EQ(ev[7].value, static_cast<uint64_t>(Api::kRealloc));
  EXPECT_EQ(ev[8].paired, 0);
}

TEST(ChunkPairingTest, BarriersRepeatsCompactFreesAndFarIdsDoNotPair) {
  std::vector<Event> ev = {
      Alloc(Id(1), 10, 1),            // 0: a free error lies before its free
      Other(RecordTag::kFreeError),   // 1
      Free(Id(1)),                    // 2
      Alloc(Id(2), 20, 2),            // 3: its id repeats (a corrupt trace)
      Alloc(Id(2), 21, 2),            // 4
      Free(Id(2)),                    // 5
      Alloc(Id(3), 30, 3),            // 6: freed twice: only the first pairs
      Free(Id(3)),                    // 7
      Free(Id(3)),                    // 8
      Alloc(Id(4), 40, 4),            // 9: a compact free names no block
      Free(Id(4)),                    // 10 (made compact below)
      Alloc(Id(5000), 50, 5),         // 11: beyond the chunk's id span
      Free(Id(5000)),                 // 12
      Alloc(MakeAllocId(4, 6), 60, 6),  // 13: another thread's id
      Free(MakeAllocId(4, 6)),        // 14
      Alloc(Id(7), 70, 7),            // 15: exec ends the image before its free
      Other(RecordTag::kExec),        // 16
      Free(Id(7)),                    // 17
  };
  ev[10].code = kCompactFree;
  std::vector<uint32_t> scratch;
  EXPECT_EQ(PairInChunk(ev.data(), ev.size(), &scratch), 1u);
  for (size_t i = 0; i < ev.size(); ++i) {
    const bool paired = i == 6 || i == 7;
    EXPECT_EQ(ev[i].paired, paired ? kPairedBlock : 0) << i;
  }
  EXPECT_EQ(ev[8].size, 0u);
  EXPECT_EQ(ev[12].size, 0u);
}

TEST(ChunkPairingTest, ScratchIsReusedAndChunksWithoutAllocationsPairNothing) {
  std::vector<uint32_t> scratch;
  std::vector<Event> frees = {Free(Id(1)), Free(Id(2)), Other(RecordTag::kRss)};
  EXPECT_EQ(PairInChunk(frees.data(), frees.size(), &scratch), 0u);
  EXPECT_EQ(PairInChunk(nullptr, 0, &scratch), 0u);
  // A second chunk with the same scratch: slots of the first are gone.
  std::vector<Event> a = {Alloc(Id(100), 1, 1), Free(Id(100))};
  std::vector<Event> b = {Free(Id(100)), Alloc(Id(101), 2, 2), Free(Id(101))};
  EXPECT_EQ(PairInChunk(a.data(), a.size(), &scratch), 1u);
  EXPECT_EQ(PairInChunk(b.data(), b.size(), &scratch), 1u);
  EXPECT_EQ(b[0].paired, 0);
  EXPECT_EQ(b[2].paired, kPairedBlock);
  EXPECT_EQ(b[2].size, 2u);
}

}  // namespace
}  // namespace heapsight::analyzer
