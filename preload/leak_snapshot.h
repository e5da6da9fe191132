// preload/leak_snapshot.h: the live blocks a leak scan classifies
// (leak_check.h), taken while the other threads are stopped.
//
// Table mode (the default, trace format 4/5): every entry of the live table
// (g_live_blocks), with the size, id and stack the trace recorded.
//
// Address frees (HEAPSIGHT_PAIRING=address, format 6): the preload keeps no
// table of the program's blocks, only a cell per 16-byte granule
// (live_cells.h). The program's blocks are the cells' live addresses; a
// block's extent is the size it was asked with, from the allocator's usable
// size (malloc_usable_size) and the size's low bits its cell keeps
// (LiveCells::RequestedSize): exact for an arena chunk, as the table's
// recorded size is; for an mmap'ed chunk an upper bound, within 31 bytes
// of its usable size (kMmapped: the heuristics accept any size down to
// LeastRequestFor). Heapsight's own ("internal") blocks are
// still in g_live_blocks in this mode and are taken from there, as in table
// mode, with the rare program block that has no cell (recorded with its
// address, its size known). A block whose allocation hook is stopped between its cell's Set and
// its record's append (ThreadState::cell_pending) is left out, as table
// mode leaves out a block not yet inserted: the scan never lists an address
// whose allocation record is not written yet.
//
// Either way the result is sorted by start and disjoint (a stale entry,
// freed around us, that overlaps the next block is cut back to it).
//
// Constraints: no malloc (PageAlloc), no locks, no loader calls: runs while
// the other threads are stopped and may hold any lock. Reads chunk headers
// only where the memory map says they are readable. Not
// async-signal-safe (mmap).
#ifndef HEAPSIGHT_PRELOAD_LEAK_SNAPSHOT_H_
#define HEAPSIGHT_PRELOAD_LEAK_SNAPSHOT_H_

#include <cstddef>
#include <cstdint>

#include "preload/live_cells.h"
#include "preload/root_regions.h"

namespace heapsight::preload {

// Table mode: one live-table entry as recorded.
struct SnapshotEntry {
  uintptr_t start;
  uint64_t size;  // the extent scanned (recorded size, or cut back)
  uint64_t id;
  bool internal;
  // As recorded: a compact trace's kBlockClasses names each block by
  // these too.
  uint64_t stack;
  uint64_t recorded_size;
};

struct LeakSnapshot {
  static constexpr uint8_t kInternal = 1;  // heapsight's own: in the graph, never listed
  static constexpr uint8_t kMmapped = 2;   // address mode: an mmap'ed chunk (size not exact)

  // Per block, ascending by start.
  uintptr_t* starts = nullptr;
  uint64_t* sizes = nullptr;  // the extent the scan reads
  uint8_t* flags = nullptr;
  // Table mode: the entries, in the same order; nullptr in address mode
  // (a block's address is its name there).
  SnapshotEntry* entries = nullptr;
  size_t count = 0;

  // Address mode: blocks left out because their allocation hook was
  // stopped before its record was appended.
  size_t pending_skipped = 0;
  // Bytes of PageAlloc memory behind the arrays.
  size_t bytes = 0;

  bool internal(size_t i) const { return (flags[i] & kInternal) != 0; }
  // The name kBlockClasses gives the block: its id, or with address frees
  // its address.
  uint64_t name(size_t i) const { return entries != nullptr ? entries[i].id : starts[i]; }

  // Mapped, never written to.
  size_t capacity_ = 0;
  size_t entries_bytes_ = 0;
  size_t arrays_bytes_ = 0;
};

// Fills `out` from the live table (address_frees false) or from the cells
// and the table's internal entries (true). `map` is the process's memory
// map, read after the threads were stopped. False if memory ran out (out
// is then empty, nothing to free).
bool TakeLeakSnapshot(bool address_frees, const MemoryMap& map, LeakSnapshot* out);
void FreeLeakSnapshot(LeakSnapshot* s);

// Address frees: the extent of the program block at `p` (live in the
// cells): malloc_usable_size, once its chunk header and the next chunk's
// header are known to lie in p's readable mapping (a stale cell's memory
// may hold anything); 0 if they do not, or if glibc says the chunk is not
// in use. `*vma` caches the mapping between calls in address order
// (nullptr to start); *mmapped is set for an mmap'ed chunk.
uint64_t CellBlockExtent(uintptr_t p, const MemoryMap& map, const Vma** vma, bool* mmapped);

// Address frees: the size the live block at `p` was asked with, from its
// extent (CellBlockExtent; 0 stays 0) and its cell's low bits
// (LiveCells::RequestedSize: exact for an arena chunk, an upper bound for
// an mmap'ed one). What the leak scan reads of the block, and what a fork
// child's kInherited records.
uint64_t CellBlockSize(uintptr_t p, LiveCells::Cell cell, const MemoryMap& map, const Vma** vma,
                       bool* mmapped);

// Address frees: the smallest size a block of this extent may have been
// asked for from glibc's malloc (LeakClassifier::Hooks::min_request: an
// mmap'ed chunk's, whose size the cell does not give exactly).
// A chunk from an arena: usable sizes step by 16 (24 for every request up
// to 24 bytes); an mmap'ed chunk's by the page.
uint64_t LeastRequestFor(uint64_t extent, bool mmapped);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_LEAK_SNAPSHOT_H_
