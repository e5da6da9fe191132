// preload/internal_alloc.h: memory for the preload's own data, from mmap.
//
// Constraints: never calls malloc (directly or through libc); usable before
// the real malloc is known, from any thread, and in a fork child. PageAlloc
// is a raw mmap; PageFreeMany a raw process_madvise (errno untouched) and
// munmaps, no lock; ArenaAlloc is a bump allocator for small never-freed
// data (module paths, thread states) under a spin lock.
#ifndef HEAPSIGHT_PRELOAD_INTERNAL_ALLOC_H_
#define HEAPSIGHT_PRELOAD_INTERNAL_ALLOC_H_

#include <cstddef>
#include <cstdint>

namespace heapsight::preload {

// Zeroed, page-aligned memory; nullptr on failure.
void* PageAlloc(size_t bytes);
// Address space for large sparse structures (the live cells, live_cells.h):
// mapped MAP_NORESERVE, zeroed, its pages touched only as they are written;
// registered as heapsight's own memory (CopyOwnRegions: never a leak-scan
// root) but not counted in PageBytesMapped (its owner reports it). Release
// with PageUnreserve. nullptr on failure.
void* PageReserve(size_t bytes);
void PageUnreserve(void* p, size_t bytes);
// Makes the pages of [p, p + bytes) (page-aligned, from PageAlloc) resident
// and writable now, in one system call, instead of one page fault each on
// first touch (and two for a page read before it is written: the read
// maps the kernel's zero page, the write replaces it). For memory about to
// be written in full (live_table.cc's new tables). Best effort: on a
// kernel without MADV_POPULATE_WRITE (before 5.14) the pages fault in as
// they are touched.
void PagePopulate(void* p, size_t bytes);
void PageFree(void* p, size_t bytes);
// PageFree if a PageAlloc region starts at `p`; else nothing, false (for
// memory that may or may not be ours: the private libunwind's munmap).
bool PageFreeIfOwn(void* p, size_t bytes);
// Several PageAlloc ranges returned at once, with one TLB flush for all of
// them where the kernel allows it: their pages are dropped by one
// process_madvise(MADV_DONTNEED) over the whole list (Linux 6.16 and later
// flush once per call; the pid is PIDFD_SELF, Linux 6.14, so no fd is
// opened), then each is unmapped, which with no page left flushes nothing.
// Why: a munmap of a few pages flushes them one by one, and in this
// project's VM each such flush cost 30-50 us (a 16 KiB munmap 85-240 us,
// the same 16 KiB in a list of 16 or more ranges 5-33 us: a list spanning
// more than 33 pages gets one full flush instead). Where process_madvise
// is refused (older kernels, seccomp) every range is simply unmapped, as
// PageFree does, and later calls go straight to that. Returns the number
// of system calls that dropped pages (1 batched, else n).
struct PageRange {
  void* p;
  size_t bytes;
};
size_t PageFreeMany(const PageRange* ranges, size_t n);
// Bytes currently mapped by PageAlloc (page-rounded), for HEAPSIGHT_STATS:
// live table, stack table, thread buffers, arena, everything but the trace
// writer's own compression buffers.
size_t PageBytesMapped();

// Every mapping PageAlloc returned and PageFree has not released yet (so
// ArenaAlloc's chunks too), for the leak scan: heapsight's own memory is
// never a root. Copies up to `max` [start, end) pairs into out (unsorted)
// and returns how many regions are registered (may exceed max). Lock-free,
// no allocation; regions registered or released concurrently may or may not
// be included. A mapping made while the registry is full is not recorded
// (OwnRegionsOverflowed() turns true).
struct OwnRegion {
  uintptr_t start;
  uintptr_t end;
};
size_t CopyOwnRegions(OwnRegion* out, size_t max);
bool OwnRegionsOverflowed();

// Small, 16-byte aligned, zeroed, never freed; nullptr on failure.
void* ArenaAlloc(size_t bytes);

// Fork support: hold the arena lock across fork().
void LockArena();
void UnlockArena();
void ResetArenaLockInChild();

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_INTERNAL_ALLOC_H_
