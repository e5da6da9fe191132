// tests/preload/leak_scan_test.cc: LeakClassifier on synthetic block sets
// (blocks carved from one word array, roots in another), against memcheck's
// definitions: reachable, possibly lost (interior pointers, or reached only
// from possibly-lost blocks), indirectly lost, definitely lost (clique
// leaders in address order), heuristics, unreadable blocks.
#include "preload/leak_scan.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <vector>

namespace heapsight::preload {
namespace {

using format::LeakClass;

// kBlocks blocks of kWords words each, laid out back to back (with a gap
// word between them so "one past the end" is not the next block).
class Heap {
 public:
  static constexpr size_t kWords = 8;
  explicit Heap(size_t blocks) : words_(blocks * (kWords + 1) + 1, 0) {
    for (size_t i = 0; i < blocks; ++i) {
      starts_.push_back(reinterpret_cast<uintptr_t>(&words_[i * (kWords + 1) + 1]));
      sizes_.push_back(kWords * sizeof(uintptr_t));
    }
  }
  uintptr_t Start(size_t i) const { return starts_[i]; }
  // Block i's word w := pointer to block j (+ offset bytes).
  void Point(size_t i, size_t w, size_t j, size_t offset = 0) {
    Word(i, w) = starts_[j] + offset;
  }
  uintptr_t& Word(size_t i, size_t w) { return reinterpret_cast<uintptr_t*>(starts_[i])[w]; }
  void SetSize(size_t i, uint64_t size) { sizes_[i] = size; }
  bool Init(LeakClassifier* c, LeakClassifier::Hooks hooks = {}) {
    return c->Init(starts_.data(), sizes_.data(), starts_.size(), hooks);
  }

 private:
  std::vector<uintptr_t> words_;
  std::vector<uintptr_t> starts_;
  std::vector<uint64_t> sizes_;
};

void ScanRoots(LeakClassifier* c, const std::vector<uintptr_t>& roots) {
  c->ScanRange(reinterpret_cast<uintptr_t>(roots.data()),
               reinterpret_cast<uintptr_t>(roots.data() + roots.size()));
}

TEST(LeakClassifier, StartPointersMakeReachableChains) {
  Heap heap(4);
  heap.Point(0, 3, 1);
  heap.Point(1, 0, 2);
  LeakClassifier c;
  ASSERT_TRUE(heap.Init(&c));
  ScanRoots(&c, {0, heap.Start(0), 17});
  c.Finish();
  EXPECT_EQ(c.ClassOf(0), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(1), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(2), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(3), LeakClass::kDefinite);
}

TEST(LeakClassifier, InteriorPointerGivesPossiblyLostAndSoDoesEverythingBelow) {
  Heap heap(3);
  heap.Point(0, 1, 1);  // start pointer, but from a possibly-lost block
  heap.Point(1, 1, 2, 16);
  LeakClassifier c;
  ASSERT_TRUE(heap.Init(&c));
  ScanRoots(&c, {heap.Start(0) + 40});
  c.Finish();
  EXPECT_EQ(c.ClassOf(0), LeakClass::kPossible);
  EXPECT_EQ(c.ClassOf(1), LeakClass::kPossible);
  EXPECT_EQ(c.ClassOf(2), LeakClass::kPossible);
}

TEST(LeakClassifier, PossiblyLostIsUpgradedByALaterStartPointer) {
  Heap heap(3);
  heap.Point(0, 1, 1);
  LeakClassifier c;
  ASSERT_TRUE(heap.Init(&c));
  ScanRoots(&c, {heap.Start(0) + 40});
  ScanRoots(&c, {heap.Start(0)});
  c.Finish();
  EXPECT_EQ(c.ClassOf(0), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(1), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(2), LeakClass::kDefinite);
}

TEST(LeakClassifier, InteriorPointerFromReachableBlockIsPossible) {
  Heap heap(2);
  heap.Point(0, 0, 1, 8 * 3);
  LeakClassifier c;
  ASSERT_TRUE(heap.Init(&c));
  ScanRoots(&c, {heap.Start(0)});
  c.Finish();
  EXPECT_EQ(c.ClassOf(0), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(1), LeakClass::kPossible);
}

TEST(LeakClassifier, LostTreeHasOneDefiniteRootAndIndirectChildren) {
  Heap heap(5);
  heap.Point(1, 0, 2);
  heap.Point(1, 1, 3, 8);  // interior pointers count among lost blocks
  heap.Point(3, 0, 4);
  LeakClassifier c;
  ASSERT_TRUE(heap.Init(&c));
  ScanRoots(&c, {heap.Start(0)});
  c.Finish();
  EXPECT_EQ(c.ClassOf(0), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(1), LeakClass::kDefinite);
  EXPECT_EQ(c.ClassOf(2), LeakClass::kIndirect);
  EXPECT_EQ(c.ClassOf(3), LeakClass::kIndirect);
  EXPECT_EQ(c.ClassOf(4), LeakClass::kIndirect);
}

TEST(LeakClassifier, LostCycleLowestAddressIsDefinite) {
  Heap heap(3);
  heap.Point(0, 0, 1);
  heap.Point(1, 0, 0);
  heap.Point(2, 0, 2);  // only points to itself
  LeakClassifier c;
  ASSERT_TRUE(heap.Init(&c));
  c.Finish();
  EXPECT_EQ(c.ClassOf(0), LeakClass::kDefinite);
  EXPECT_EQ(c.ClassOf(1), LeakClass::kIndirect);
  EXPECT_EQ(c.ClassOf(2), LeakClass::kDefinite);
}

TEST(LeakClassifier, LaterLeaderAbsorbsEarlierOne) {
  Heap heap(2);
  heap.Point(1, 0, 0);  // the higher block points to the lower one only
  LeakClassifier c;
  ASSERT_TRUE(heap.Init(&c));
  c.Finish();
  EXPECT_EQ(c.ClassOf(0), LeakClass::kIndirect);
  EXPECT_EQ(c.ClassOf(1), LeakClass::kDefinite);
}

TEST(LeakClassifier, SingleWordsAndExplicitRoots) {
  Heap heap(3);
  heap.Point(2, 0, 1);
  LeakClassifier c;
  ASSERT_TRUE(heap.Init(&c));
  c.ScanWord(heap.Start(0));  // e.g. a register
  c.MarkReachable(2);         // e.g. the DTV
  c.Finish();
  EXPECT_EQ(c.ClassOf(0), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(1), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(2), LeakClass::kReachable);
}

TEST(LeakClassifier, ZeroSizeBlockOnlyAtItsStart) {
  Heap heap(2);
  heap.SetSize(0, 0);
  heap.SetSize(1, 0);
  LeakClassifier c;
  ASSERT_TRUE(heap.Init(&c));
  EXPECT_EQ(c.Find(heap.Start(0)), 0u);
  EXPECT_EQ(c.Find(heap.Start(0) + 8), SIZE_MAX);
  ScanRoots(&c, {heap.Start(0), heap.Start(1) + 8});
  c.Finish();
  EXPECT_EQ(c.ClassOf(0), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(1), LeakClass::kDefinite);
}

TEST(LeakClassifier, MemcheckHeuristicsMakeInteriorPointersReachable) {
  Heap heap(4);
  // length64: first word = size - 8, pointer to start + 8.
  heap.Word(0, 0) = 56;
  // newarray: first word = element count dividing size - 8 (7 x 8 bytes).
  heap.Word(1, 0) = 7;
  // stdstring (COW rep): length <= capacity == size - 25; pointer to start + 24.
  heap.SetSize(2, 64);
  heap.Word(2, 0) = 10;
  heap.Word(2, 1) = 39;
  // No heuristic: plain interior pointer.
  heap.Word(3, 0) = 5;
  LeakClassifier c;
  ASSERT_TRUE(heap.Init(&c));
  ScanRoots(&c, {heap.Start(0) + 8, heap.Start(1) + 8, heap.Start(2) + 24, heap.Start(3) + 16});
  c.Finish();
  EXPECT_EQ(c.ClassOf(0), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(1), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(2), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(3), LeakClass::kPossible);
}

// Address frees: block sizes are extents (64 bytes here); the heuristics
// accept any size the block may have been asked with, [min_request, 64].
TEST(LeakClassifier, HeuristicsWithExtentsAcceptTheSizesTheBlockMayHaveBeenAskedWith) {
  Heap heap(8);
  // length64 with 44 bytes after the count: asked 52, extent 64.
  heap.Word(0, 0) = 44;
  // length64 whose count says 58 bytes: more than the extent holds.
  heap.Word(1, 0) = 58;
  // newarray of 5 elements of 9 bytes (asked 53): no multiple of 5 is 56,
  // but 45 + 8 = 53 is in [49, 64].
  heap.Word(2, 0) = 5;
  // newarray of 40 elements: no multiple of 40 in [49 - 8, 64 - 8].
  heap.Word(3, 0) = 40;
  // stdstring with capacity 30 (asked 3 * 8 + 30 + 1 = 55).
  heap.Word(4, 0) = 12;
  heap.Word(4, 1) = 30;
  // stdstring with capacity 15 (asked 40: below the smallest size).
  heap.Word(5, 0) = 12;
  heap.Word(5, 1) = 15;
  // length64 whose count is just below the range (asked 48 < 49).
  heap.Word(6, 0) = 40;
  // The same count with exact sizes: the block is reachable only if its
  // size is 48 exactly.
  heap.Word(7, 0) = 40;
  LeakClassifier c;
  LeakClassifier::Hooks hooks;
  hooks.min_request = [](size_t index, void*) -> uint64_t { return index == 7 ? 64 : 49; };
  ASSERT_TRUE(heap.Init(&c, hooks));
  ScanRoots(&c, {heap.Start(0) + 8, heap.Start(1) + 8, heap.Start(2) + 8, heap.Start(3) + 8,
                 heap.Start(4) + 24, heap.Start(5) + 24, heap.Start(6) + 8, heap.Start(7) + 8});
  c.Finish();
  EXPECT_EQ(c.ClassOf(0), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(1), LeakClass::kPossible);
  EXPECT_EQ(c.ClassOf(2), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(3), LeakClass::kPossible);
  EXPECT_EQ(c.ClassOf(4), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(5), LeakClass::kPossible);
  EXPECT_EQ(c.ClassOf(6), LeakClass::kPossible);
  EXPECT_EQ(c.ClassOf(7), LeakClass::kPossible);
}

TEST(LeakClassifier, UnreadableBlocksAreNotScanned) {
  Heap heap(2);
  heap.Point(0, 0, 1);
  LeakClassifier c;
  ASSERT_TRUE(heap.Init(&c));
  c.SetUnreadable(0);
  ScanRoots(&c, {heap.Start(0)});
  c.Finish();
  EXPECT_EQ(c.ClassOf(0), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(1), LeakClass::kDefinite);
}

TEST(LeakClassifier, NextChunkHeaderPointerIsIgnored) {
  Heap heap(2);
  LeakClassifier c;
  // usable size 64 bytes: the next chunk's header would be at start + 56.
  LeakClassifier::Hooks hooks;
  hooks.usable_size = [](uintptr_t) -> size_t { return 64; };
  ASSERT_TRUE(heap.Init(&c, hooks));
  ScanRoots(&c, {heap.Start(0) + 56, heap.Start(1) + 48});
  c.Finish();
  EXPECT_EQ(c.ClassOf(0), LeakClass::kDefinite);
  EXPECT_EQ(c.ClassOf(1), LeakClass::kPossible);
}

TEST(LeakClassifier, LargeRandomGraphIsConsistent) {
  constexpr size_t kN = 20000;
  Heap heap(kN);
  std::mt19937_64 rng(42);
  for (size_t i = 0; i < kN; ++i) {
    for (size_t w = 0; w < 3; ++w) {
      if (rng() % 3 == 0) heap.Point(i, w, rng() % kN, (rng() % 4 == 0) ? 8 * (rng() % 8) : 0);
    }
  }
  std::vector<uintptr_t> roots;
  for (int i = 0; i < 50; ++i) roots.push_back(heap.Start(rng() % kN));
  LeakClassifier c;
  ASSERT_TRUE(heap.Init(&c));
  ScanRoots(&c, roots);
  c.Finish();
  // Invariants: every root target is reachable; a reachable block's start
  // pointers lead to reachable blocks; definite blocks are never pointed to
  // by a reachable or possible block.
  for (uintptr_t r : roots) {
    EXPECT_EQ(c.ClassOf(c.Find(r)), LeakClass::kReachable);
  }
  for (size_t i = 0; i < kN; ++i) {
    for (size_t w = 0; w < Heap::kWords; ++w) {
      uintptr_t v = heap.Word(i, w);
      size_t j = c.Find(v);
      if (j == SIZE_MAX) continue;
      LeakClass from = c.ClassOf(i), to = c.ClassOf(j);
      if (from == LeakClass::kReachable && v == heap.Start(j)) {
        EXPECT_EQ(to, LeakClass::kReachable);
      }
      if (from == LeakClass::kReachable || from == LeakClass::kPossible) {
        EXPECT_TRUE(to == LeakClass::kReachable || to == LeakClass::kPossible);
      }
      // Reachable and possibly-lost blocks never point to lost ones.
      if (to == LeakClass::kDefinite || to == LeakClass::kIndirect) {
        EXPECT_TRUE(from == LeakClass::kDefinite || from == LeakClass::kIndirect);
      }
    }
  }
}

// The granule filter (scan24) changes no answer: blocks in two arrays far
// apart (as the brk heap and an mmap'ed chunk), words between them that
// point into no block, words inside and just past each block. Only the
// words the filter cannot rule out reach the block search.
TEST(LeakClassifier, GranuleFilterKeepsEveryAnswer) {
  std::vector<uintptr_t> low(64, 0), high(64, 0);
  std::vector<uintptr_t> starts = {reinterpret_cast<uintptr_t>(&low[8]),
                                   reinterpret_cast<uintptr_t>(&low[40])};
  std::vector<uint64_t> sizes = {64, 0};  // 8 words; a zero-size block
  uintptr_t far = reinterpret_cast<uintptr_t>(&high[16]);
  bool high_first = far < starts[0];
  if (high_first) {
    starts.insert(starts.begin(), far);
    sizes.insert(sizes.begin(), 128);
  } else {
    starts.push_back(far);
    sizes.push_back(128);
  }
  size_t far_index = high_first ? 0 : 2;
  size_t block8 = high_first ? 1 : 0;
  size_t zero = high_first ? 2 : 1;
  LeakClassifier c;
  ASSERT_TRUE(c.Init(starts.data(), sizes.data(), starts.size(), {}));
  // Find: inside, at the end, a zero-size block only at its start.
  EXPECT_EQ(c.Find(starts[block8]), block8);
  EXPECT_EQ(c.Find(starts[block8] + 63), block8);
  EXPECT_EQ(c.Find(starts[block8] + 64), SIZE_MAX);
  EXPECT_EQ(c.Find(starts[zero]), zero);
  EXPECT_EQ(c.Find(starts[zero] + 1), SIZE_MAX);
  EXPECT_EQ(c.Find(far + 127), far_index);
  EXPECT_EQ(c.Find(far + 128), SIZE_MAX);
  EXPECT_EQ(c.Find(far - 8), SIZE_MAX);
  // Roots: an interior pointer to the 8-word block (possible), the far
  // block's start (reachable), and words in the span that hit nothing.
  uintptr_t lo = starts.front(), hi = starts.back() + sizes.back();
  std::vector<uintptr_t> roots = {starts[block8] + 16, far, starts[zero] + 8};
  for (uintptr_t k = 1; k <= 64; ++k) {
    uintptr_t w = lo + (hi - lo) / 65 * k;
    if (c.Find(w) == SIZE_MAX) roots.push_back(w);
  }
  ScanRoots(&c, roots);
  c.Finish();
  EXPECT_EQ(c.ClassOf(block8), LeakClass::kPossible);
  EXPECT_EQ(c.ClassOf(far_index), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(zero), LeakClass::kDefinite);
  EXPECT_EQ(c.words_scanned(), roots.size() + 8 + 16);  // + the two blocks read
  EXPECT_LE(c.words_searched(), c.words_scanned());
  EXPECT_GE(c.words_searched(), 2u);  // the two pointers into blocks at least
}

// A large block in private anonymous memory (SetAnonymous): its pages never
// written are skipped (page_residency.h), its written pages still scanned,
// so the block it points to from deep inside stays reachable and the one a
// leaked large block points to is indirectly lost.
TEST(LeakClassifier, AnonymousBlocksSkipOnlyPagesNeverWritten) {
  constexpr size_t kBig = 4 << 20;  // two blocks of 4 MiB, 1,024 pages each
  void* map = mmap(nullptr, 2 * kBig, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(map, MAP_FAILED);
  madvise(map, 2 * kBig, MADV_NOHUGEPAGE);
  const auto big0 = reinterpret_cast<uintptr_t>(map), big1 = big0 + kBig;
  static uintptr_t small[2][4];  // two small blocks
  // big0 (reachable from the root) points to small[0] from page 700;
  // big1 (leaked) to small[1] from page 300.
  reinterpret_cast<uintptr_t*>(big0 + 700 * 4096)[5] = reinterpret_cast<uintptr_t>(small[0]);
  reinterpret_cast<uintptr_t*>(big1 + 300 * 4096)[9] = reinterpret_cast<uintptr_t>(small[1]);
  struct Block {
    uintptr_t start;
    uint64_t size;
    int name;
  };
  std::vector<Block> blocks = {{big0, kBig, 0}, {big1, kBig, 1},
                               {reinterpret_cast<uintptr_t>(small[0]), sizeof small[0], 2},
                               {reinterpret_cast<uintptr_t>(small[1]), sizeof small[1], 3}};
  std::sort(blocks.begin(), blocks.end(),
            [](const Block& a, const Block& b) { return a.start < b.start; });
  std::vector<uintptr_t> starts;
  std::vector<uint64_t> sizes;
  size_t index[4];
  for (size_t i = 0; i < blocks.size(); ++i) {
    starts.push_back(blocks[i].start);
    sizes.push_back(blocks[i].size);
    index[blocks[i].name] = i;
  }
  LeakClassifier c;
  ASSERT_TRUE(c.Init(starts.data(), sizes.data(), starts.size(), {}));
  c.SetAnonymous(index[0]);
  c.SetAnonymous(index[1]);
  std::vector<uintptr_t> roots = {big0};
  ScanRoots(&c, roots);
  c.Finish();
  EXPECT_EQ(c.ClassOf(index[0]), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(index[2]), LeakClass::kReachable);
  EXPECT_EQ(c.ClassOf(index[1]), LeakClass::kDefinite);
  EXPECT_EQ(c.ClassOf(index[3]), LeakClass::kIndirect);
  if (c.pages_skipped() != 0) {  // 0: no /proc/self/pagemap here (all read)
    EXPECT_EQ(c.pages_skipped(), 2u * 1024 - 2);
    // The root, the two written pages and the small blocks (small[1] twice:
    // first as its own clique's leader, then reached from big1's clique),
    // not the 1,048,576 words of the two blocks.
    EXPECT_EQ(c.words_scanned(), 1u + 2 * 512 + 3 * 4);
  }
  munmap(map, 2 * kBig);
}

}  // namespace
}  // namespace heapsight::preload
