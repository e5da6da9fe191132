// preload/heap_limit.h: HEAPSIGHT_HEAP_LIMIT, an artificial out-of-memory
// point for testing a program's OOM handling.
//
// With a limit set (e.g. HEAPSIGHT_HEAP_LIMIT=64M), the allocation hooks ask
// HeapLimitDenies(size) before calling the real allocator; past the limit
// the hook fails like a real out-of-memory condition (malloc & co. return
// NULL with errno ENOMEM, posix_memalign returns ENOMEM, operator new runs
// the new-handler loop and throws std::bad_alloc, nothrow new returns NULL).
// The live heap is counted in malloc_usable_size() bytes, added after every
// successful allocation and subtracted before every free, with one relaxed
// atomic add per event on a process-wide counter (no per-thread state).
// Usable sizes are what the allocator really hands out, and they are the
// same at allocation and at free, so the count needs no table. The first
// denial writes a "heap-limit" marker into the trace (and flushes it), so
// `heapsight pprof --at=marker:heap-limit` shows the live heap at that moment.
//
// Without a limit every function here is one relaxed load and a branch.
// Allocations made inside heapsight itself are never denied.
//
// Constraints: no malloc, no locks on the event path. The limit is parsed
// once (getenv, no allocation): when the trace starts, at the program's
// first allocation (lifecycle.h), or else in our library constructor. Not
// async-signal-safe (neither are the hooks that call it).
#ifndef HEAPSIGHT_PRELOAD_HEAP_LIMIT_H_
#define HEAPSIGHT_PRELOAD_HEAP_LIMIT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "format/trace_format.h"

namespace heapsight::preload {

// 0 = no limit. Set once before main.
extern uint64_t g_heap_limit_bytes;
// Bytes live (usable sizes). Signed: blocks allocated before the limit was
// read may be freed later and make it dip below zero.
extern std::atomic<int64_t> g_heap_limit_live;

// Reads HEAPSIGHT_HEAP_LIMIT; the first call only (before any program
// thread: the trace's start or our constructor).
void ReadHeapLimitOnce();

// Parses "64M", "512K", "2G", "1048576" (suffixes K/M/G/T, powers of 1024,
// optional trailing "B" or "iB"). Returns false for anything else.
bool ParseByteSize(const char* text, uint64_t* out);

// Slow path of HeapLimitDenies: true (and the first time a marker) when
// `size` more bytes would pass the limit.
bool HeapLimitCheck(size_t size);
void HeapLimitAddSlow(void* p);
void HeapLimitSubSlow(void* p);

// True if an allocation of `size` bytes must fail now.
inline bool HeapLimitDenies(size_t size) {
  return __builtin_expect(g_heap_limit_bytes != 0, 0) && HeapLimitCheck(size);
}
// After a successful allocation of `p` (nullptr is ignored).
inline void HeapLimitAdd(void* p) {
  if (__builtin_expect(g_heap_limit_bytes != 0, 0) && p != nullptr) HeapLimitAddSlow(p);
}
// Before `p` is freed (nullptr and bootstrap blocks are ignored).
inline void HeapLimitSub(void* p) {
  if (__builtin_expect(g_heap_limit_bytes != 0, 0) && p != nullptr) HeapLimitSubSlow(p);
}
// realloc/reallocarray: Begin (before the real call) returns false if the
// growth from `p`'s usable size to `size` must be denied, and stores the old
// usable size in *old; End (after the call) moves the count from *old to `q`
// (q == nullptr with size == 0: the block was freed).
bool HeapLimitReallocBegin(void* p, size_t size, size_t* old);
void HeapLimitReallocEnd(size_t old, void* q, size_t size);

// A denied C allocation: records the failure (kAllocFailed), sets errno to
// ENOMEM and returns nullptr.
void* HeapLimitFail(size_t size, size_t alignment, format::Api api);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_HEAP_LIMIT_H_
