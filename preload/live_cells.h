// preload/live_cells.h: which heap addresses start a live block, one 16-bit
// cell per 16-byte granule (address frees, HEAPSIGHT_PAIRING=address).
//
// With address frees (format version 6, trace_format.h) the preload keeps
// no table of live blocks: the analyzer pairs each free with the allocation
// at its address. What the program's process still decides itself, it
// decides from these cells:
// - whether a free's pointer starts a live block (bad and double frees,
//   HEAPSIGHT_ON_BAD_FREE=skip, decided before the real free);
// - whether the block was allocated by the family that releases it
//   (mismatched frees, with the releasing call's stack);
// - the order of the events at one address across threads (the order
//   value, trace_format.h's AddressOrder), which the analyzer needs where
//   its merge by time cannot tell (two threads, one microsecond);
// - the live blocks at a fork (the child's kInherited) and at a leak scan.
//
// A cell (Cell below): bits 12-15 the event count mod 16 (odd = live), bits
// 10-11 the ApiFamily of the block's allocation, bits 5-9 the size the
// block was asked with, mod 32, bits 0-4 the owner: the thread index of the
// cell's last event when it is 1..30, kManyOwners for any other. (The count
// on top: it wraps mod 16 as the 16-bit cell does, with no mask, and the
// owner compares with no shift.) A cell of 0 was never used.
//
// Why the size's low bits (stop 40): the leak scan reads each live block
// over the bytes it was asked with, as memcheck does; with only the cells
// it had the allocator's usable size, up to 24 bytes more, and a reused
// chunk's slack holds its previous block's words: stale pointers that made
// lost blocks reachable (gcc's ld.bfd: 2 indirectly lost blocks of 32 KiB
// "possibly lost"), and memcheck's heuristics, which test exact sizes,
// could only be given a range. A glibc arena chunk's usable size U is at
// most 24 bytes more than the size n asked for (RequestedSize), so U and
// n mod 32 give n back exactly. The price is the owner's width: a thread
// of index 31 or more is one of the "many", and its events at an address
// carry an order value even where the previous event was its own (about
// a byte an event more in the trace of a program with more than 30
// threads; the pairing is the same). Glibc's blocks are 16-byte
// aligned on x86-64, so a block starts in a granule of its own; a pointer
// that is not 16-byte aligned never has a cell (Set/Clear return
// kNoCell).
//
// Memory: 1/8 of the heap's address span, mapped lazily: a directory of
// 64 MiB spans (address >> 26), each span's 4 MiB of cells mapped on its
// first event (MAP_NORESERVE; pages the heap never touches are never
// touched here either). python's 1,000,000-entry dict (a 240 MB heap):
// about 30 MB.
//
// Constraints: no malloc (cells come from mmap), no locks: every update is
// one compare-and-swap on the cell (a span's first mapping is installed
// by a compare-and-swap too; the loser unmaps its copy). Async-signal-safe
// except for the first event of a span (mmap). Never re-enters malloc.
#ifndef HEAPSIGHT_PRELOAD_LIVE_CELLS_H_
#define HEAPSIGHT_PRELOAD_LIVE_CELLS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "format/trace_format.h"

namespace heapsight::preload {

class LiveCells {
 public:
  using Cell = uint16_t;
  static constexpr int kGranuleShift = 4;  // 16-byte granules
  static constexpr int kSpanShift = 26;    // 64 MiB of heap per directory entry
  static constexpr int kCountShift = 12;
  static constexpr Cell kCountOne = 1 << kCountShift;  // count 1; also the live bit
  static constexpr Cell kCountMask = 0xf << kCountShift;
  static constexpr int kFamilyShift = 10;
  static constexpr Cell kFamilyMask = 0x3 << kFamilyShift;
  static constexpr int kSizeShift = 5;
  static constexpr uint32_t kSizeModulo = 32;
  static constexpr Cell kSizeMask = (kSizeModulo - 1) << kSizeShift;
  static constexpr Cell kOwnerMask = 0x1f;
  static constexpr uint32_t kManyOwners = 31;
  static_assert(format::kAddressCountModulo == (kCountMask >> kCountShift) + 1);
  static_assert(sizeof(Cell) * 8 == kCountShift + format::kAddressCountBits);
  static_assert((kCountMask | kFamilyMask | kSizeMask | kOwnerMask) == 0xffff);
  static_assert((kFamilyMask & kSizeMask) == 0 && (kSizeMask & kOwnerMask) == 0);

  // The owner a thread writes into the cells: its index if 1..30,
  // kManyOwners otherwise.
  static constexpr uint32_t OwnerOf(uint32_t thread_index) {
    return thread_index >= 1 && thread_index < kManyOwners ? thread_index : kManyOwners;
  }

  // A live cell's fields, for ForEachLive's callers.
  static constexpr format::ApiFamily FamilyOf(Cell c) {
    return static_cast<format::ApiFamily>((c & kFamilyMask) >> kFamilyShift);
  }
  static constexpr uint32_t SizeLowOf(Cell c) { return (c & kSizeMask) >> kSizeShift; }
  // The size a block was asked with, from its usable size (the allocator's
  // malloc_usable_size) and its cell: the largest n <= usable with n mod 32
  // equal to the cell's. Exact for a glibc arena chunk, whose usable size is
  // at most 24 bytes more than any size it serves (16-byte steps, and 24
  // usable bytes for every request up to 24). A memalign'ed chunk may keep
  // up to 55 bytes more, and an mmap'ed one up to a page: for those it is
  // an upper bound (within 31 bytes of the usable size). `usable` itself
  // when it is smaller than the cell's low bits (not the chunk the cell was
  // set for).
  static constexpr uint64_t RequestedSize(uint64_t usable, Cell c) {
    const uint64_t below = (usable - SizeLowOf(c)) & (kSizeModulo - 1);
    return below <= usable ? usable - below : usable;
  }

  enum class Result : uint8_t {
    kDone,     // the cell changed; *order is the event's order value
    kNotLive,  // Clear: the granule does not start a live block (cell unchanged)
    kNoCell,   // unaligned pointer, or the span's cells could not be mapped
  };

  // An allocation at `p` (family `family`, thread `owner` from OwnerOf,
  // asked for `size` bytes: the cell keeps size mod 32): marks it live. *order: format::AddressOrder(count after) for a
  // hand-off (the cell's previous event had another owner, or kManyOwners),
  // kAddressOrderNone otherwise (and for a cell never used). A cell found
  // live already (its free was never seen: a block freed by a path
  // heapsight does not hook) counts as freed and allocated again: the count
  // goes up by 2 and the event is a hand-off, so the analyzer sees the gap.
  Result Set(uintptr_t p, format::ApiFamily family, uint32_t owner, uint64_t* order,
             uint64_t size = 0);

  // A free (or a realloc's old block) at `p`: if it starts a live block,
  // clears it and returns kDone with *order and *family (the allocation's);
  // kNotLive otherwise, with *double_free true when the cell was used
  // before (a block started there and was freed: most likely a double
  // free) and false when never. `before`, if given, gets the cell Clear
  // found (0 without a cell): what Restore puts back if the real call fails,
  // taken from Clear's own compare-and-swap instead of a second lookup.
  Result Clear(uintptr_t p, uint32_t owner, uint64_t* order, format::ApiFamily* family,
               bool* double_free, Cell* before = nullptr);

  // Undoes a Clear whose real call failed (realloc returned NULL; the block
  // is untouched and still live): puts back the cell Clear found, if the
  // cell is still as Clear left it. No event, no order.
  void Restore(uintptr_t p, Cell before);
  // Starts loading the cell of `p` into the cache (a hint: no fault, no
  // change to any cell). For the free hook's first instructions: a program
  // that frees in an order unrelated to addresses (python's dict at exit)
  // finds each cell in memory, not in the cache, and the hook has the
  // clock, the thread state and its checks to do before Clear reads it.
  // Measured (docs/performance.md, py23): with dense cells in huge pages it
  // takes 8% more off the free hook's samples; in 4 KiB pages it did not
  // pay (the prefetch itself waited for the page walk).
  __attribute__((always_inline)) void Prefetch(uintptr_t p) const {
    SpanSlot* dir = dir_.load(std::memory_order_relaxed);
    if (__builtin_expect(dir == nullptr, 0)) return;
    // Masked, not tested: an address above user space reads some slot, and
    // a prefetch of a wrong line costs nothing but the line.
    Span* span = dir[(p >> kSpanShift) & (kDirEntries - 1)].load(std::memory_order_relaxed);
    if (span != nullptr) __builtin_prefetch(CellIn(span, p), 1, 3);
  }
  // The cell at `p` (0 if none).
  Cell Peek(uintptr_t p) const;

  // Whether `p` starts a live block.
  bool IsLive(uintptr_t p) const;

  // Calls fn(address, cell, ctx) for every live block, in address order
  // (FamilyOf and RequestedSize read the cell). Not synchronized with other
  // threads' events: for a stopped world (leak scan) or a fork child.
  void ForEachLive(void (*fn)(uintptr_t, Cell, void*), void* ctx) const;

  // Bytes mapped for the directory and the cells (HEAPSIGHT_STATS).
  size_t MappedBytes() const;
  // Of those, the pages ever written (cell pages some allocation used, and
  // the directory's pages that hold a span): about what they keep resident.
  size_t TouchedBytes() const;
  // 2 MiB regions of cells asked to become huge pages (half their 4 KiB
  // pages in use), and of those the ones the kernel collapsed
  // (HEAPSIGHT_STATS).
  size_t HugeAttempts() const { return huge_attempts_.load(std::memory_order_relaxed); }
  size_t HugeRegions() const { return huge_regions_.load(std::memory_order_relaxed); }

  // The layout (live_cells.cc has the why).
  static constexpr int kAddressBits = 47;  // x86-64 user space
  static constexpr size_t kDirEntries = size_t{1} << (kAddressBits - kSpanShift);
  static constexpr size_t kCellsPerSpan = size_t{1} << (kSpanShift - kGranuleShift);
  static constexpr size_t kCellPageBytes = 4096;
  static constexpr size_t kCellsPerPage = kCellPageBytes / sizeof(Cell);
  static constexpr size_t kPagesPerSpan = kCellsPerSpan / kCellsPerPage;  // 2,048
  static constexpr size_t kDirEntriesPerPage = kCellPageBytes / sizeof(void*);
  static constexpr size_t kDirPages = kDirEntries / kDirEntriesPerPage;  // 4,096

 private:
  using AtomicCell = std::atomic<Cell>;
  // Dense cells go into huge pages (live_cells.cc, "Huge pages"): a 2 MiB
  // region of a span's cells is collapsed once half of its 4 KiB pages are
  // in use.
  static constexpr int kHugeShift = 21;
  static constexpr uint32_t kCollapseAtPages = (uint32_t{1} << (kHugeShift - 12)) / 2;
  // 2 MiB regions a span's cells touch (not aligned: one more).
  static constexpr size_t kRegionsPerSpan = (kCellsPerSpan * sizeof(Cell) >> kHugeShift) + 1;

  // One span's mapping: its cells, then one bit per page of cells that
  // some allocation wrote (ForEachLive reads only those pages), then the
  // count of such pages in each 2 MiB region of the cells' addresses.
  struct Span {
    AtomicCell cells[kCellsPerSpan];
    std::atomic<uint64_t> used_pages[kPagesPerSpan / 64];
    std::atomic<uint32_t> region_pages[kRegionsPerSpan];
  };
  using SpanSlot = std::atomic<Span*>;

  // Whether `p` is off the granule grid or above user space (one test).
  static bool OffGrid(uintptr_t p) {
    return ((p & ((uintptr_t{1} << kGranuleShift) - 1)) | (p >> kAddressBits)) != 0;
  }
  // The span of `p` (on the grid), or nullptr if it is not mapped yet.
  __attribute__((always_inline)) Span* SpanOf(uintptr_t p) const {
    SpanSlot* dir = dir_.load(std::memory_order_acquire);
    return dir != nullptr ? dir[p >> kSpanShift].load(std::memory_order_acquire) : nullptr;
  }
  static AtomicCell* CellIn(Span* span, uintptr_t p) {
    return &span->cells[(p >> kGranuleShift) & (kCellsPerSpan - 1)];
  }
  // Maps the directory (first call) and p's span; nullptr if mmap failed.
  Span* MapSpan(uintptr_t p);
  // Notes that the page of cells holding p's cell has been written to.
  __attribute__((always_inline)) void MarkPage(Span* span, uintptr_t p) {
    const size_t page = ((p >> kGranuleShift) & (kCellsPerSpan - 1)) / kCellsPerPage;
    const uint64_t bit = uint64_t{1} << (page % 64);
    if (__builtin_expect((span->used_pages[page / 64].load(std::memory_order_relaxed) & bit) == 0,
                         0)) {
      MarkPageSlow(span, page);
    }
  }
  void MarkPageSlow(Span* span, size_t page);
  // Backs the 2 MiB of cells at `start` (aligned, inside a span) with a
  // huge page, where the kernel can (MADV_COLLAPSE).
  void CollapseRegion(uintptr_t start);

  std::atomic<SpanSlot*> dir_{nullptr};
  std::atomic<size_t> spans_{0};
  std::atomic<size_t> used_cell_pages_{0};
  std::atomic<size_t> huge_attempts_{0};  // regions CollapseRegion was called for
  std::atomic<size_t> huge_regions_{0};   // regions collapsed
  // One bit per page of the directory that holds a span pointer.
  std::atomic<uint64_t> used_dir_pages_[kDirPages / 64] = {};
};

extern LiveCells g_live_cells;

// Out here so the hooks inline them (they replace the live table's Insert
// and Remove on every event: a load of the directory and of the span, one
// compare-and-swap).
inline LiveCells::Result LiveCells::Set(uintptr_t p, format::ApiFamily family, uint32_t owner,
                                        uint64_t* order, uint64_t size) {
  if (__builtin_expect(OffGrid(p), 0)) return Result::kNoCell;
  Span* span = SpanOf(p);
  if (__builtin_expect(span == nullptr, 0)) {
    span = MapSpan(p);
    if (span == nullptr) return Result::kNoCell;
  }
  AtomicCell* c = CellIn(span, p);
  Cell old = c->load(std::memory_order_relaxed);
  // A granule's first allocation: its page of cells is in use from now on
  // (before the cell is, so a stopped world never has a live cell in a page
  // not marked). Once per granule ever used, not per event.
  if (__builtin_expect(old == 0, 0)) MarkPage(span, p);
  const uint32_t rest = (static_cast<uint32_t>(family) << kFamilyShift) |
                        ((static_cast<uint32_t>(size) << kSizeShift) & kSizeMask) | owner;
  uint32_t next;
  for (;;) {
    // Count + 1, made odd: a cell found live already (its free went by
    // unhooked) counts as freed and allocated again (+2). The carry out of
    // bit 15 is what the 16-bit cell drops.
    next = (((old + kCountOne) | kCountOne) & kCountMask) | rest;
    // Relaxed: the cell's own modification order is what counts, and a
    // free's Clear happens before the real free, which happens before the
    // allocator hands the address to another thread (its locks).
    if (__builtin_expect(c->compare_exchange_weak(old, static_cast<Cell>(next),
                                                  std::memory_order_relaxed),
                         1)) {
      break;
    }
  }
  // The same thread's own previous event (not live: a free it made): no
  // order. Masked with the live bit, so a live cell never matches.
  const bool same_owner =
      (old & (kOwnerMask | kCountOne)) == owner && owner != kManyOwners;
  *order = old == 0 || same_owner ? format::kAddressOrderNone
                                  : format::AddressOrder(next >> kCountShift);
  return Result::kDone;
}

inline LiveCells::Result LiveCells::Clear(uintptr_t p, uint32_t owner, uint64_t* order,
                                          format::ApiFamily* family, bool* double_free,
                                          Cell* before) {
  if (before != nullptr) *before = 0;
  if (__builtin_expect(OffGrid(p), 0)) {
    *double_free = false;
    return Result::kNoCell;
  }
  Span* span = SpanOf(p);
  if (__builtin_expect(span == nullptr, 0)) {
    *double_free = false;  // no block ever started in this span
    return Result::kNotLive;
  }
  AtomicCell* c = CellIn(span, p);
  Cell old = c->load(std::memory_order_relaxed);
  uint32_t next;
  for (;;) {
    if (__builtin_expect((old & kCountOne) == 0, 0)) {
      *double_free = old != 0;
      if (before != nullptr) *before = old;
      return Result::kNotLive;
    }
    // Count + 1 (even: not live); the family stays (a double free's report
    // could name it), the size's bits go, the owner is this thread.
    next = ((old + kCountOne) & (kCountMask | kFamilyMask)) | owner;
    if (__builtin_expect(c->compare_exchange_weak(old, static_cast<Cell>(next),
                                                  std::memory_order_relaxed),
                         1)) {
      break;
    }
  }
  if (before != nullptr) *before = old;
  *family = FamilyOf(old);
  const bool same_owner = (old & kOwnerMask) == owner && owner != kManyOwners;
  *order = same_owner ? format::kAddressOrderNone : format::AddressOrder(next >> kCountShift);
  return Result::kDone;
}

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_LIVE_CELLS_H_
