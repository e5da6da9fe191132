// preload/internal_alloc.cc: see internal_alloc.h.
//
// Constraints: no malloc; one spin lock around the bump arena only.
#include "preload/internal_alloc.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdint>

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

}  // namespace

void* PageAlloc(size_t bytes) {
  void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return nullptr;
  g_page_bytes.fetch_add(RoundToPages(bytes), std::memory_order_relaxed);
  return p;
}

void PageFree(void* p, size_t bytes) {
  if (p == nullptr || munmap(p, bytes) != 0) return;
  g_page_bytes.fetch_sub(RoundToPages(bytes), std::memory_order_relaxed);
}

size_t PageBytesMapped() { return g_page_bytes.load(std::memory_order_relaxed); }

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
