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
// A cell (Cell below): bits 0-3 the event count mod 16 (odd = live), bits
// 4-5 the ApiFamily of the block's allocation, bits 6-15 the owner: the
// thread index of the cell's last event when it is 1..1022, kManyOwners
// for any other. A cell of 0 was never used. Glibc's blocks are 16-byte
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

#include <cstddef>
#include <cstdint>

#include "format/trace_format.h"

namespace heapsight::preload {

class LiveCells {
 public:
  using Cell = uint16_t;
  static constexpr int kGranuleShift = 4;  // 16-byte granules
  static constexpr int kSpanShift = 26;    // 64 MiB of heap per directory entry
  static constexpr Cell kCountMask = 0xf;
  static constexpr int kFamilyShift = 4;
  static constexpr Cell kFamilyMask = 0x3 << kFamilyShift;
  static constexpr int kOwnerShift = 6;
  static constexpr uint32_t kManyOwners = 1023;
  static_assert(format::kAddressCountModulo == kCountMask + 1);

  // The owner a thread writes into the cells: its index if 1..1022,
  // kManyOwners otherwise.
  static constexpr uint32_t OwnerOf(uint32_t thread_index) {
    return thread_index >= 1 && thread_index < kManyOwners ? thread_index : kManyOwners;
  }

  enum class Result : uint8_t {
    kDone,     // the cell changed; *order is the event's order value
    kNotLive,  // Clear: the granule does not start a live block (cell unchanged)
    kNoCell,   // unaligned pointer, or the span's cells could not be mapped
  };

  // An allocation at `p` (family `family`, thread `owner` from OwnerOf):
  // marks it live. *order: format::AddressOrder(count after) for a
  // hand-off (the cell's previous event had another owner, or kManyOwners),
  // kAddressOrderNone otherwise (and for a cell never used). A cell found
  // live already (its free was never seen: a block freed by a path
  // heapsight does not hook) counts as freed and allocated again: the count
  // goes up by 2 and the event is a hand-off, so the analyzer sees the gap.
  Result Set(uintptr_t p, format::ApiFamily family, uint32_t owner, uint64_t* order);

  // A free (or a realloc's old block) at `p`: if it starts a live block,
  // clears it and returns kDone with *order and *family (the allocation's);
  // kNotLive otherwise, with *double_free true when the cell was used
  // before (a block started there and was freed: most likely a double
  // free) and false when never.
  Result Clear(uintptr_t p, uint32_t owner, uint64_t* order, format::ApiFamily* family,
               bool* double_free);

  // Undoes a Clear whose real call failed (realloc returned NULL; the block
  // is untouched and still live): puts back the cell Clear found, if the
  // cell is still as Clear left it. No event, no order.
  void Restore(uintptr_t p, Cell before);
  // The cell at `p` (0 if none): for Restore.
  Cell Peek(uintptr_t p) const;

  // Whether `p` starts a live block.
  bool IsLive(uintptr_t p) const;

  // Calls fn(address, family, ctx) for every live block, in address order.
  // Not synchronized with other threads' events: for a stopped world (leak
  // scan) or a fork child.
  void ForEachLive(void (*fn)(uintptr_t, format::ApiFamily, void*), void* ctx) const;

  // Bytes mapped for the directory and the cells (HEAPSIGHT_STATS).
  size_t MappedBytes() const;
};

extern LiveCells g_live_cells;

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_LIVE_CELLS_H_
