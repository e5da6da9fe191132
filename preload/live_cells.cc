// preload/live_cells.cc: see live_cells.h.
//
// Constraints: no malloc, no locks. Memory comes from mmap (MAP_NORESERVE:
// the cells' address space is reserved, not charged, and only the pages
// written become resident). Set maps a span on its first event there; the
// rest only reads and compare-and-swaps. Async-signal-safe except where a
// span is mapped. ForEachLive is for a stopped world (or a fork child).
//
// Layout and why:
// - The directory has one slot per 64 MiB of the 47-bit user address space
//   (2^21 slots, 16 MiB), mapped on the first Set with MAP_NORESERVE: a
//   program touches a few of its 4 KiB pages (one per 32 GiB of address
//   space it allocates in), so it costs a few pages, and a hook finds a
//   span with two dependent loads and no test of a level between.
// - A span holds the cells of one directory slot's 64 MiB: 4 Mi cells of
//   2 bytes (8 MiB, MAP_NORESERVE), then a bit per 4 KiB page of cells that
//   some allocation wrote to. glibc's heaps are compact: its main arena
//   grows with brk, its thread arenas are 64 MiB-aligned heaps of 64 MiB
//   (one span each), and only the pages of cells under pages of heap that
//   held a block get touched: 1/8 of the heap that was ever used.
// - The page bits let ForEachLive (the leak scan, a fork child's inherited
//   blocks) read only pages that may hold a live cell; reading the other
//   pages of a span would fault in (zero) pages by the thousand. They are
//   written once per page, on the first allocation at one of its granules
//   (the cell's old value is 0; Set tests that anyway for the order).
// - Huge pages (py23): a program that frees in an order unrelated to
//   addresses (python's dict at exit, a sort's temporaries) reads a random
//   cell per free, in 4 KiB pages: python's 1,000,000-entry dict has
//   42 MB of cells, 10,000 pages, far more than the TLB holds, so each such
//   free paid a page walk besides the cache miss (perf: half of the free
//   hook's samples on the cell's load). Once half of the 4 KiB pages of a
//   2 MiB region of cells are in use, the region is collapsed into one huge
//   page (MADV_HUGEPAGE, then MADV_COLLAPSE, Linux 6.1; where the kernel
//   refuses, the region stays in small pages). At most the region's other
//   half becomes resident early: a dense heap's cells fill their regions
//   anyway, and a sparse one (scattered mmap'ed blocks, one cell a region)
//   never reaches half.
// - Span and directory are installed by compare-and-swap on their slot; a
//   thread that loses the race unmaps its copy. Nothing is ever unmapped
//   otherwise (a span's cells hold counts that must survive a free).
// - fork: the child gets a copy of every mapping (private, copy-on-write),
//   so its cells say what its copy of the heap holds; a fork between
//   another thread's Clear and its record leaves that block not live in the
//   child, which is right (that thread does not exist there, the block's
//   memory is nobody's). A child that never maps a span of its own reads
//   the parent's copies only.
#include "preload/live_cells.h"

#include <sys/mman.h>
#include <sys/syscall.h>

#include "preload/raw_syscall.h"

#include "preload/internal_alloc.h"

namespace heapsight::preload {

constinit LiveCells g_live_cells;

namespace {

constexpr size_t kDirBytes = LiveCells::kDirEntries * sizeof(void*);

// Registered as heapsight's own memory (PageReserve), so the leak scan
// never reads the cells as the program's roots: unregistered, the
// directory and every span (16 MiB + 8 MiB each) were scanned word by word.
void* MapZeroed(size_t bytes) { return PageReserve(bytes); }

// ForEachLive reads a 64-bit word of cells at a time.
constexpr size_t kCellsPerWord = sizeof(uint64_t) / sizeof(LiveCells::Cell);
constexpr uint64_t kLiveBitsOfWord = 0x0001000100010001ull * LiveCells::kCountOne;
static_assert(sizeof(std::atomic<LiveCells::Cell>) == sizeof(LiveCells::Cell));

size_t RoundToPage(size_t bytes) {
  return (bytes + LiveCells::kCellPageBytes - 1) & ~(LiveCells::kCellPageBytes - 1);
}

}  // namespace

LiveCells::Span* LiveCells::MapSpan(uintptr_t p) {
  SpanSlot* dir = dir_.load(std::memory_order_acquire);
  if (dir == nullptr) {
    auto* fresh = static_cast<SpanSlot*>(MapZeroed(kDirBytes));
    if (fresh == nullptr) return nullptr;
    // Zeroed pages are null slots (std::atomic<Span*> of all-zero bytes).
    if (dir_.compare_exchange_strong(dir, fresh, std::memory_order_acq_rel)) {
      dir = fresh;
    } else {
      PageUnreserve(fresh, kDirBytes);  // another thread's directory won; `dir` is it
    }
  }
  const size_t slot = p >> kSpanShift;
  Span* span = dir[slot].load(std::memory_order_acquire);
  if (span != nullptr) return span;
  auto* fresh = static_cast<Span*>(MapZeroed(RoundToPage(sizeof(Span))));
  if (fresh == nullptr) return nullptr;
  // The directory page's bit before the span is installed: a stopped world
  // (ForEachLive) must not meet a span that other threads already use in a
  // directory page it skips. A bit with no span behind it costs a look.
  const size_t dir_page = slot / kDirEntriesPerPage;
  used_dir_pages_[dir_page / 64].fetch_or(uint64_t{1} << (dir_page % 64),
                                          std::memory_order_relaxed);
  if (!dir[slot].compare_exchange_strong(span, fresh, std::memory_order_acq_rel)) {
    PageUnreserve(fresh, RoundToPage(sizeof(Span)));
    return span;
  }
  spans_.fetch_add(1, std::memory_order_relaxed);
  return fresh;
}

void LiveCells::MarkPageSlow(Span* span, size_t page) {
  std::atomic<uint64_t>* word = &span->used_pages[page / 64];
  const uint64_t bit = uint64_t{1} << (page % 64);
  if ((word->fetch_or(bit, std::memory_order_relaxed) & bit) != 0) return;
  used_cell_pages_.fetch_add(1, std::memory_order_relaxed);
  // The page's 2 MiB region of address space (the span is not aligned to
  // 2 MiB: its first and last regions are partly outside it and never
  // collapse). fetch_add hands each count to one caller, so exactly one
  // thread collapses a region.
  const auto cells = reinterpret_cast<uintptr_t>(&span->cells[0]);
  const uintptr_t at = cells + page * kCellPageBytes;
  const size_t region = (at >> kHugeShift) - (cells >> kHugeShift);
  const uint32_t used = span->region_pages[region].fetch_add(1, std::memory_order_relaxed) + 1;
  if (used != kCollapseAtPages) return;
  const uintptr_t start = at & ~((uintptr_t{1} << kHugeShift) - 1);
  if (start < cells || start + (uintptr_t{1} << kHugeShift) > cells + sizeof(span->cells)) return;
  CollapseRegion(start);
}

void LiveCells::CollapseRegion(uintptr_t start) {
  // Raw: the hook's errno stays the program's, and a kernel that does not
  // know an advice (EINVAL) just leaves the region in 4 KiB pages.
  constexpr long kHugePage = 14;  // MADV_HUGEPAGE
  constexpr long kCollapse = 25;  // MADV_COLLAPSE (Linux 6.1)
  huge_attempts_.fetch_add(1, std::memory_order_relaxed);
  const long len = long{1} << kHugeShift;
  RawSyscall(SYS_madvise, static_cast<long>(start), len, kHugePage);
  if (RawSyscall(SYS_madvise, static_cast<long>(start), len, kCollapse) == 0) {
    huge_regions_.fetch_add(1, std::memory_order_relaxed);
  }
}

void LiveCells::Restore(uintptr_t p, Cell before) {
  if (OffGrid(p)) return;
  Span* span = SpanOf(p);
  if (span == nullptr) return;
  AtomicCell* c = CellIn(span, p);
  Cell now = c->load(std::memory_order_relaxed);
  // Clear left the count one past `before`'s and the cell not live. If any
  // other event came since (none should: the block stayed live), leave it.
  const uint32_t cleared_count = (before + kCountOne) & kCountMask;
  while ((now & kCountMask) == cleared_count && (now & kCountOne) == 0) {
    if (c->compare_exchange_weak(now, before, std::memory_order_relaxed)) return;
  }
}

LiveCells::Cell LiveCells::Peek(uintptr_t p) const {
  if (OffGrid(p)) return 0;
  Span* span = SpanOf(p);
  return span == nullptr ? 0 : CellIn(span, p)->load(std::memory_order_relaxed);
}

bool LiveCells::IsLive(uintptr_t p) const { return (Peek(p) & kCountOne) != 0; }

void LiveCells::ForEachLive(void (*fn)(uintptr_t, Cell, void*), void* ctx) const {
  SpanSlot* dir = dir_.load(std::memory_order_acquire);
  if (dir == nullptr) return;
  for (size_t dir_page = 0; dir_page < kDirPages; ++dir_page) {
    uint64_t dir_bits = used_dir_pages_[dir_page / 64].load(std::memory_order_relaxed);
    if ((dir_bits & (uint64_t{1} << (dir_page % 64))) == 0) continue;
    for (size_t i = 0; i < kDirEntriesPerPage; ++i) {
      const size_t slot = dir_page * kDirEntriesPerPage + i;
      Span* span = dir[slot].load(std::memory_order_acquire);
      if (span == nullptr) continue;
      for (size_t page = 0; page < kPagesPerSpan; ++page) {
        uint64_t bits = span->used_pages[page / 64].load(std::memory_order_relaxed);
        if ((bits & (uint64_t{1} << (page % 64))) == 0) continue;
        const AtomicCell* cells = &span->cells[page * kCellsPerPage];
        for (size_t k = 0; k < kCellsPerPage; k += kCellsPerWord) {
          // Four cells at a time: most words of a heap's cells hold no
          // live bit (python's 1M-entry dict: 6 million live blocks in 15
          // million granules). Relaxed loads one by one where one is set:
          // for a stopped world, as ForEachLive is.
          uint64_t word;
          __builtin_memcpy(&word, &cells[k], sizeof word);
          if ((word & kLiveBitsOfWord) == 0) continue;
          for (size_t j = k; j < k + kCellsPerWord; ++j) {
            Cell c = cells[j].load(std::memory_order_relaxed);
            if ((c & kCountOne) == 0) continue;
            uintptr_t address = (uintptr_t{slot} << kSpanShift) |
                                ((page * kCellsPerPage + j) << kGranuleShift);
            fn(address, c, ctx);
          }
        }
      }
    }
  }
}

size_t LiveCells::MappedBytes() const {
  size_t bytes = spans_.load(std::memory_order_relaxed) * RoundToPage(sizeof(Span));
  if (dir_.load(std::memory_order_relaxed) != nullptr) bytes += kDirBytes;
  return bytes;
}

size_t LiveCells::TouchedBytes() const {
  size_t pages = used_cell_pages_.load(std::memory_order_relaxed);
  // Each span's page bits sit in one more page; the directory's pages that
  // hold a span slot.
  pages += spans_.load(std::memory_order_relaxed);
  for (const auto& word : used_dir_pages_) {
    pages += static_cast<size_t>(__builtin_popcountll(word.load(std::memory_order_relaxed)));
  }
  return pages * kCellPageBytes;
}

}  // namespace heapsight::preload
