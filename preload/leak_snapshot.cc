// preload/leak_snapshot.cc: see leak_snapshot.h.
//
// Constraints: no malloc (PageAlloc), no locks (the live table is read with
// ForEachUnlocked, the cells with ForEachLive: the world is stopped), no
// loader calls. malloc_usable_size takes no lock in glibc; it is called
// only on a chunk whose header and next header the memory map says are
// readable.
#include "preload/leak_snapshot.h"

#include <malloc.h>

#include <algorithm>
#include <cstring>

#include "preload/internal_alloc.h"
#include "preload/live_cells.h"
#include "preload/live_table.h"
#include "preload/thread_state.h"
#include "preload/tracer_state.h"

namespace heapsight::preload {
namespace {

constexpr uintptr_t kHeader = 2 * sizeof(uintptr_t);  // glibc's chunk header
constexpr uintptr_t kMmappedBit = 2;                    // IS_MMAPPED in the size field
constexpr uintptr_t kPrevInUseBit = 1;
constexpr size_t kSlack = 1024;  // threads the stop missed may still allocate

void CountEntry(uintptr_t, const LiveEntry&, void* ctx) { ++*static_cast<size_t*>(ctx); }

void CountCell(uintptr_t, LiveCells::Cell, void* ctx) { ++*static_cast<size_t*>(ctx); }

// The usable size of an internal block (allocated inside heapsight or before
// tracing), which has no recorded size: only if its chunk header is mapped,
// since a stale entry (freed around us, its memory unmapped) must not fault.
uint64_t InternalExtent(uintptr_t address, const MemoryMap& map) {
  bool mapped = address >= 16 && map.Readable(address - 16, address + 1);
  if (!mapped) return 0;
  // glibc's malloc_usable_size also reads the next chunk's header (its
  // in-use bit) at the address plus this chunk's size, unless the chunk
  // is mmapped. A stale entry's size field is whatever the allocator left
  // there (a free chunk merged into the top: the top's size), and the
  // next header may lie in a trimmed, unmapped part of the heap (sig23: a
  // leak scan in address mode with a signal handler that allocates
  // faulted there, 1 run in 20). So that header must be mapped too.
  uint64_t header = *reinterpret_cast<const uint64_t*>(address - 8);
  uint64_t chunk = header & ~uint64_t{7};
  const bool mmapped = (header & 2) != 0;
  if (chunk < 16 || address - 16 + chunk < address) return 0;
  if (!mmapped && !map.Readable(address - 16 + chunk, address - 16 + chunk + 16)) return 0;
  // An mmapped chunk is a whole mapping of its own: its size must stay in
  // readable memory. A stale entry's header can claim one: hang24 saw
  // MALLOC_PERTURB_'s 0xaf fill (IS_MMAPPED set) read as an mmapped chunk
  // of 12 EiB, whose "usable size" made the root scan read a thread's
  // stack as part of that block and on into [vvar] (SIGBUS).
  if (mmapped && !map.Readable(address - 16, address - 16 + chunk)) return 0;
  return malloc_usable_size(reinterpret_cast<void*>(address));
}

// Cuts back every block that overlaps the next one and copies the columns
// the classifier reads.
void TrimOverlaps(LeakSnapshot* s) {
  for (size_t i = 0; i + 1 < s->count; ++i) {
    if (s->starts[i] + s->sizes[i] > s->starts[i + 1]) {
      s->sizes[i] = s->starts[i + 1] - s->starts[i];
    }
  }
}

// --- table mode -----------------------------------------------------------

struct TableFill {
  LeakSnapshot* s;
  const MemoryMap* map;
  size_t capacity;
};

void CopyEntry(uintptr_t address, const LiveEntry& e, void* ctx) {
  auto* f = static_cast<TableFill*>(ctx);
  LeakSnapshot* s = f->s;
  if (s->count >= f->capacity) return;
  uint64_t size = e.size;
  // Internal blocks are part of the heap graph (a library's registry may
  // hold the program's blocks), never reported.
  if (e.internal) size = InternalExtent(address, *f->map);
  s->entries[s->count++] = SnapshotEntry{address, size, e.id, e.internal, e.stack, e.size};
}

bool TakeFromTable(const MemoryMap& map, LeakSnapshot* s) {
  LiveTable& live = g_live_blocks;
  size_t estimate = 0;
  live.ForEachUnlocked(CountEntry, &estimate);
  size_t capacity = estimate + kSlack;
  s->entries_bytes_ = capacity * sizeof(SnapshotEntry);
  s->arrays_bytes_ = capacity * (sizeof(uintptr_t) + sizeof(uint64_t) + 1);
  s->entries = static_cast<SnapshotEntry*>(PageAlloc(s->entries_bytes_));
  auto* arrays = static_cast<uint8_t*>(PageAlloc(s->arrays_bytes_));
  s->capacity_ = capacity;
  if (s->entries == nullptr || arrays == nullptr) {
    if (arrays != nullptr) PageFree(arrays, s->arrays_bytes_);
    return false;
  }
  s->starts = reinterpret_cast<uintptr_t*>(arrays);
  s->sizes = reinterpret_cast<uint64_t*>(arrays + capacity * sizeof(uintptr_t));
  s->flags = arrays + capacity * (sizeof(uintptr_t) + sizeof(uint64_t));
  TableFill fill{s, &map, capacity};
  live.ForEachUnlocked(CopyEntry, &fill);
  std::sort(s->entries, s->entries + s->count,
            [](const SnapshotEntry& a, const SnapshotEntry& b) { return a.start < b.start; });
  for (size_t i = 0; i < s->count; ++i) {
    s->starts[i] = s->entries[i].start;
    s->sizes[i] = s->entries[i].size;
    s->flags[i] = s->entries[i].internal ? LeakSnapshot::kInternal : 0;
  }
  TrimOverlaps(s);
  // The entries keep the cut-back size too (the scan's byte totals).
  for (size_t i = 0; i < s->count; ++i) s->entries[i].size = s->sizes[i];
  return true;
}

// --- address frees ----------------------------------------------------------

// A live-table entry in address mode: an internal block, or a program
// block that has no cell (live_cells.h: the rare pointer the cells cannot
// hold), recorded with its address.
struct TableBlock {
  uintptr_t start;
  uint64_t size;
  bool internal;
};

struct TableList {
  TableBlock* blocks;
  size_t count;
  size_t capacity;
  const MemoryMap* map;
};

void CollectTableBlock(uintptr_t address, const LiveEntry& e, void* ctx) {
  auto* a = static_cast<TableList*>(ctx);
  if (a->count >= a->capacity) return;
  uint64_t size = e.internal ? InternalExtent(address, *a->map) : e.size;
  a->blocks[a->count++] = TableBlock{address, size, e.internal};
}

struct CellFill {
  LeakSnapshot* s;
  const MemoryMap* map;
  size_t capacity;
  // The table's entries, ascending; the next one to merge.
  const TableBlock* table;
  size_t table_count;
  size_t next_table;
  // Addresses whose allocation record is not written yet, ascending.
  const uintptr_t* pending;
  size_t pending_count;
  // The mapping of the last block (blocks come in address order).
  const Vma* vma;
};

bool IsPending(const CellFill* f, uintptr_t p) {
  return std::binary_search(f->pending, f->pending + f->pending_count, p);
}

void Push(CellFill* f, uintptr_t start, uint64_t size, uint8_t flags) {
  LeakSnapshot* s = f->s;
  if (s->count >= f->capacity) return;
  s->starts[s->count] = start;
  s->sizes[s->count] = size;
  s->flags[s->count] = flags;
  ++s->count;
}

// Table entries below `limit`; one at `limit` itself is dropped (a stale
// entry: the cells say a program block starts there now).
void PushTableBelow(CellFill* f, uintptr_t limit) {
  while (f->next_table < f->table_count && f->table[f->next_table].start <= limit) {
    const TableBlock& b = f->table[f->next_table++];
    if (b.start == limit) continue;
    // A program block without a cell is inserted where its cell would have
    // been Set: the same window before its record.
    if (!b.internal && f->pending_count != 0 && IsPending(f, b.start)) {
      ++f->s->pending_skipped;
      continue;
    }
    Push(f, b.start, b.size, b.internal ? LeakSnapshot::kInternal : 0);
  }
}

void CopyCell(uintptr_t p, LiveCells::Cell cell, void* ctx) {
  auto* f = static_cast<CellFill*>(ctx);
  PushTableBelow(f, p);
  if (f->pending_count != 0 && IsPending(f, p)) {
    ++f->s->pending_skipped;
    return;
  }
  // The size asked for, as table mode reads the recorded size (for an
  // mmap'ed chunk an upper bound: the rest of its pages is mmap's zeros).
  bool mmapped = false;
  uint64_t size = CellBlockSize(p, cell, *f->map, &f->vma, &mmapped);
  Push(f, p, size, mmapped ? LeakSnapshot::kMmapped : 0);
}

bool TakeFromCells(const MemoryMap& map, LeakSnapshot* s) {
  size_t cells = 0, table = 0;
  g_live_cells.ForEachLive(CountCell, &cells);
  g_live_blocks.ForEachUnlocked(CountEntry, &table);
  // Stopped threads whose allocation hook is between Set and the append;
  // few (one per such thread).
  uintptr_t pending_local[64];
  uintptr_t* pending = pending_local;
  size_t pending_bytes = 0;
  size_t pending_count = CollectPendingCellSets(pending_local, 64);
  if (pending_count > 64) {
    pending_bytes = (pending_count + 64) * sizeof(uintptr_t);
    pending = static_cast<uintptr_t*>(PageAlloc(pending_bytes));
    if (pending == nullptr) return false;
    pending_count = CollectPendingCellSets(pending, pending_count + 64);
    pending_count = std::min(pending_count, pending_bytes / sizeof(uintptr_t));
  }
  std::sort(pending, pending + pending_count);

  size_t capacity = cells + table + kSlack;
  s->arrays_bytes_ = capacity * (sizeof(uintptr_t) + sizeof(uint64_t) + 1);
  auto* arrays = static_cast<uint8_t*>(PageAlloc(s->arrays_bytes_));
  // The table's entries, sorted, merged in address order below.
  size_t table_bytes = (table + kSlack) * sizeof(TableBlock);
  auto* table_blocks = static_cast<TableBlock*>(PageAlloc(table_bytes));
  bool ok = arrays != nullptr && table_blocks != nullptr;
  if (ok) {
    s->capacity_ = capacity;
    s->starts = reinterpret_cast<uintptr_t*>(arrays);
    s->sizes = reinterpret_cast<uint64_t*>(arrays + capacity * sizeof(uintptr_t));
    s->flags = arrays + capacity * (sizeof(uintptr_t) + sizeof(uint64_t));
    TableList list{table_blocks, 0, table + kSlack, &map};
    g_live_blocks.ForEachUnlocked(CollectTableBlock, &list);
    std::sort(table_blocks, table_blocks + list.count,
              [](const TableBlock& a, const TableBlock& b) { return a.start < b.start; });
    CellFill fill{s, &map, capacity, table_blocks, list.count, 0,
                  pending, pending_count, nullptr};
    g_live_cells.ForEachLive(CopyCell, &fill);
    PushTableBelow(&fill, UINTPTR_MAX);
    TrimOverlaps(s);
  } else if (arrays != nullptr) {
    PageFree(arrays, s->arrays_bytes_);
  }
  if (table_blocks != nullptr) PageFree(table_blocks, table_bytes);
  if (pending_bytes != 0) PageFree(pending, pending_bytes);
  return ok;
}

}  // namespace

uint64_t CellBlockExtent(uintptr_t p, const MemoryMap& map, const Vma** vma, bool* mmapped) {
  const Vma* v = *vma;
  if (v == nullptr || p < v->start + kHeader || p >= v->end) {
    v = map.Find(p);
    *vma = v;
    if (v == nullptr || p < v->start + kHeader) return 0;
  }
  if (!v->readable) return 0;
  uintptr_t size_field;
  std::memcpy(&size_field, reinterpret_cast<const void*>(p - sizeof(uintptr_t)), sizeof size_field);
  uintptr_t chunk = p - kHeader;
  uintptr_t chunk_size = size_field & ~uintptr_t{7};
  if (chunk_size < 2 * kHeader || chunk_size > v->end - chunk) return 0;
  if ((size_field & kMmappedBit) != 0) {
    *mmapped = true;
  } else {
    // glibc reads the next chunk's size field (its PREV_INUSE bit).
    if (chunk_size + kHeader > v->end - chunk) return 0;
    uintptr_t next_field;
    std::memcpy(&next_field, reinterpret_cast<const void*>(chunk + chunk_size + sizeof(uintptr_t)),
                sizeof next_field);
    if ((next_field & kPrevInUseBit) == 0) return 0;
  }
  return malloc_usable_size(reinterpret_cast<void*>(p));
}

uint64_t CellBlockSize(uintptr_t p, LiveCells::Cell cell, const MemoryMap& map, const Vma** vma,
                       bool* mmapped) {
  return LiveCells::RequestedSize(CellBlockExtent(p, map, vma, mmapped), cell);
}

uint64_t LeastRequestFor(uint64_t extent, bool mmapped) {
  // An arena chunk of size c (a multiple of 16, at least 32) serves every
  // request n with max(32, (n + 8 + 15) & ~15) == c; its usable size is
  // c - 8. An mmap'ed chunk is (that + 8) rounded up to the page, usable
  // c - 16.
  uint64_t below = mmapped ? 4096 + 14 : 15;
  if (!mmapped && extent <= 24) return 0;
  return extent > below ? extent - below : 0;
}

bool TakeLeakSnapshot(bool address_frees, const MemoryMap& map, LeakSnapshot* out) {
  *out = LeakSnapshot();
  bool ok = address_frees ? TakeFromCells(map, out) : TakeFromTable(map, out);
  if (!ok) {
    FreeLeakSnapshot(out);
    return false;
  }
  out->bytes = out->entries_bytes_ + out->arrays_bytes_;
  return true;
}

void FreeLeakSnapshot(LeakSnapshot* s) {
  if (s->entries != nullptr) PageFree(s->entries, s->entries_bytes_);
  if (s->starts != nullptr) PageFree(s->starts, s->arrays_bytes_);
  *s = LeakSnapshot();
}

}  // namespace heapsight::preload
