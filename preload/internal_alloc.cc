// preload/internal_alloc.cc: see internal_alloc.h.
//
// Constraints: no malloc; one spin lock around the bump arena only; the
// registry of own mappings is lock-free (atomic slots).
#include "preload/internal_alloc.h"

#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>

#include "preload/raw_syscall.h"
#include "preload/spin_lock.h"

namespace heapsight::preload {
namespace {

constexpr size_t kArenaChunk = 1 << 20;

SpinLock g_arena_lock;
char* g_arena_pos = nullptr;
char* g_arena_end = nullptr;
// Bytes mapped by PageAlloc and not yet freed (HEAPSIGHT_STATS), in whole
// 4 KiB pages. Touched only when memory is mapped or unmapped.
std::atomic<size_t> g_page_bytes{0};

size_t RoundToPages(size_t bytes) { return (bytes + 4095) & ~size_t{4095}; }

// The registry of own mappings: slot i is claimed by a CAS of its start
// from 0, then its end is published; a reader skips a slot whose end is
// still 0. 64 Ki slots (1 MiB of bss, touched only as far as used) cover
// the live table's shards, per-thread buffers and caches of thousands of
// threads.
constexpr size_t kMaxRegions = size_t{1} << 16;
struct RegionSlot {
  std::atomic<uintptr_t> start{0};
  std::atomic<uintptr_t> end{0};
};
RegionSlot g_regions[kMaxRegions];
std::atomic<size_t> g_region_high{0};  // slots [0, high) may be in use
std::atomic<size_t> g_region_hint{0};  // a slot likely free
std::atomic<bool> g_region_overflow{false};

void RegisterRegion(uintptr_t start, size_t bytes) {
  size_t first = g_region_hint.load(std::memory_order_relaxed);
  for (size_t k = 0; k < kMaxRegions; ++k) {
    size_t i = (first + k) & (kMaxRegions - 1);
    uintptr_t expected = 0;
    if (g_regions[i].start.load(std::memory_order_relaxed) != 0 ||
        !g_regions[i].start.compare_exchange_strong(expected, start,
                                                    std::memory_order_acq_rel)) {
      continue;
    }
    g_regions[i].end.store(start + bytes, std::memory_order_release);
    size_t high = g_region_high.load(std::memory_order_relaxed);
    while (high < i + 1 &&
           !g_region_high.compare_exchange_weak(high, i + 1, std::memory_order_acq_rel)) {
    }
    g_region_hint.store(i + 1, std::memory_order_relaxed);
    return;
  }
  g_region_overflow.store(true, std::memory_order_relaxed);
}

// Forgets [start, start + bytes) of a registered region. The live table
// returns a grown shard's old table in pieces from its front
// (live_table.cc), so a region may shrink from its start; the rest of it
// stays registered (and out of the leak scan's roots) until it is freed.
// False if no registered region starts at `start`.
bool UnregisterRegion(uintptr_t start, size_t bytes) {
  size_t high = g_region_high.load(std::memory_order_acquire);
  for (size_t i = 0; i < high; ++i) {
    if (g_regions[i].start.load(std::memory_order_relaxed) != start) continue;
    uintptr_t end = g_regions[i].end.load(std::memory_order_relaxed);
    if (start + bytes < end) {
      // A reader that still sees the old start excludes a range that is
      // partly unmapped already: harmless.
      g_regions[i].start.store(start + bytes, std::memory_order_release);
      return true;
    }
    // Unpublish the end first: a reader never sees a slot with a new
    // owner's start and the old owner's end.
    g_regions[i].end.store(0, std::memory_order_release);
    g_regions[i].start.store(0, std::memory_order_release);
    size_t hint = g_region_hint.load(std::memory_order_relaxed);
    if (i < hint) g_region_hint.store(i, std::memory_order_relaxed);
    return true;
  }
  return false;
}

}  // namespace

void* PageAlloc(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  // Registered after the mmap: the leak scan's map may then show a mapping
  // not yet registered, for an instant, which it scans (harmless: fresh
  // zero pages hold no pointers).
  RegisterRegion(reinterpret_cast<uintptr_t>(p), bytes);
  g_page_bytes.fetch_add(RoundToPages(bytes), std::memory_order_relaxed);
  return p;
}

void* PageReserve(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  RegisterRegion(reinterpret_cast<uintptr_t>(p), bytes);
  return p;
}

void PageUnreserve(void* p, size_t bytes) {
  if (p == nullptr) return;
  UnregisterRegion(reinterpret_cast<uintptr_t>(p), bytes);
  munmap(p, bytes);
}

void PagePopulate(void* p, size_t bytes) {
  // Straight to the kernel: it runs inside the program's malloc, whose
  // errno must not change. An error (EINVAL on a kernel before 5.14,
  // ENOMEM) leaves the pages to fault in on touch, as without the call.
  constexpr long kPopulateWrite = 23;  // MADV_POPULATE_WRITE (Linux 5.14)
  RawSyscall(SYS_madvise, reinterpret_cast<long>(p), static_cast<long>(bytes), kPopulateWrite);
}

void PageFree(void* p, size_t bytes) {
  if (p == nullptr) return;
  // Unregistered before the munmap: the address may be reused by the
  // program's next mmap as soon as it is unmapped.
  UnregisterRegion(reinterpret_cast<uintptr_t>(p), bytes);
  if (munmap(p, bytes) != 0) return;
  g_page_bytes.fetch_sub(RoundToPages(bytes), std::memory_order_relaxed);
}

bool PageFreeIfOwn(void* p, size_t bytes) {
  if (p == nullptr || !UnregisterRegion(reinterpret_cast<uintptr_t>(p), bytes)) return false;
  if (munmap(p, bytes) == 0) g_page_bytes.fetch_sub(RoundToPages(bytes), std::memory_order_relaxed);
  return true;
}

size_t PageFreeMany(const PageRange* ranges, size_t n) {
  // Set once the kernel refused a batched release: then every range is
  // unmapped on its own.
  static std::atomic<bool> refused{false};
  constexpr size_t kMaxBatch = 64;  // iovecs on this stack frame: 1 KiB
  constexpr long kProcessMadvise = 440;  // SYS_process_madvise (Linux 5.10)
  constexpr long kPidfdSelf = -10000;    // PIDFD_SELF_THREAD (Linux 6.14): our own mm
  constexpr long kDontNeed = 4;          // MADV_DONTNEED
  size_t calls = 0;
  if (n > 1 && n <= kMaxBatch && !refused.load(std::memory_order_relaxed)) {
    iovec iov[kMaxBatch];
    long total = 0;
    for (size_t i = 0; i < n; ++i) {
      iov[i] = iovec{ranges[i].p, ranges[i].bytes};
      total += static_cast<long>(ranges[i].bytes);
    }
    // Raw: this runs inside the program's malloc or free, whose errno must
    // not change. A partial or failed release is harmless: the munmaps
    // below drop whatever is left (and flush it, as without the batch).
    long done = RawSyscall(kProcessMadvise, kPidfdSelf, reinterpret_cast<long>(iov),
                           static_cast<long>(n), kDontNeed, 0);
    if (done < 0) refused.store(true, std::memory_order_relaxed);
    if (done == total) calls = 1;
  }
  for (size_t i = 0; i < n; ++i) PageFree(ranges[i].p, ranges[i].bytes);
  return calls == 1 ? 1 : n;
}

size_t PageBytesMapped() { return g_page_bytes.load(std::memory_order_relaxed); }

size_t CopyOwnRegions(OwnRegion* out, size_t max) {
  size_t high = g_region_high.load(std::memory_order_acquire);
  size_t n = 0;
  for (size_t i = 0; i < high; ++i) {
    uintptr_t end = g_regions[i].end.load(std::memory_order_acquire);
    uintptr_t start = g_regions[i].start.load(std::memory_order_acquire);
    if (start == 0 || end <= start) continue;
    if (n < max) out[n] = OwnRegion{start, end};
    ++n;
  }
  return n;
}

bool OwnRegionsOverflowed() { return g_region_overflow.load(std::memory_order_relaxed); }

void* ArenaAlloc(size_t bytes) {
  bytes = (bytes + 15) & ~size_t{15};
  if (bytes > kArenaChunk / 4) return PageAlloc(bytes);
  SpinLockHolder hold(&g_arena_lock);
  if (g_arena_pos == nullptr || static_cast<size_t>(g_arena_end - g_arena_pos) < bytes) {
    char* chunk = static_cast<char*>(PageAlloc(kArenaChunk));
    if (chunk == nullptr) return nullptr;
    g_arena_pos = chunk;
    g_arena_end = chunk + kArenaChunk;
  }
  void* p = g_arena_pos;
  g_arena_pos += bytes;
  return p;
}

void LockArena() { g_arena_lock.Lock(); }
void UnlockArena() { g_arena_lock.Unlock(); }
void ResetArenaLockInChild() { g_arena_lock.ResetInChild(); }

}  // namespace heapsight::preload
