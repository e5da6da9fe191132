// preload/nested_hooks.h: hooks nested inside the defer zone of their own
// thread (defer_zone.h), i.e. a signal handler that allocates or frees,
// landing while the interrupted frame is inside a live-table operation or
// a hook's real allocator call.
//
// Such a hook must not touch the table (it could spin forever on the shard
// lock its own thread holds) nor wait for any heapsight lock, so it does
// only what needs neither and queues the rest in a small per-thread queue:
// - an allocation: the real allocator already served it; its address,
//   size, alignment and api are queued, and the drain records it as an
//   allocation with an empty stack (RecordNestedAlloc; sig23: before, it
//   became an internal block, absent from the trace);
// - a free: performed at once where that needs no wait (hang24,
//   FreeNestedAtOnce in nested_hooks.cc): with the thread-state lock and
//   the block's shard lock only tried, the block is forgotten (the cells'
//   lock-free Clear, or the table's TryRemoveNested), its free appended to
//   the thread's stream, and the real free called. Otherwise (a lock taken,
//   a mismatched or bad free, a full chunk) the pointer is queued and NOT
//   freed yet. Record-before-free: once the real free runs, another thread
//   may get the address, and the table must have forgotten the old block
//   by then. A block a nested hook allocated that is still queued (no
//   table has it) is freed at once too, its entry taken back (see
//   DeferNestedFree);
// - a realloc: a new block from the real allocator (queued as above), the
//   old block's bytes copied, the old block queued as a free.
// The outer hook drains the queue at its end, when its thread holds no
// heapsight lock and is not inside heapsight (DrainNestedHooks): queued
// allocations are entered, queued frees go through the normal free path
// (recorded if they are the program's traced blocks), in the order they
// were queued. A hook running inside heapsight's own call leaves the queue
// to the hook whose guard that is.
//
// A block a nested hook allocated and a nested hook freed before the drain
// (the handler's malloc/free pair inside one outer hook) is in neither the
// trace nor the table: counted ("pairs untraced").
//
// Overflow (more than kNestedQueue nested events before a drain): an extra
// free is never performed (its block leaks; the trace shows it live) and an
// extra allocation is not entered (its later free is then an unknown
// block's); both are counted for HEAPSIGHT_STATS. Never a hang, never a
// crash.
//
// Constraints: no locks, no malloc except the real allocator's in a nested
// realloc (the handler asked for one); initial-exec TLS only. The nested
// paths are async-signal-safe with respect to the interrupted frame (they
// touch only this thread's queue, with single-instruction updates of its
// count); the drain runs only outside the defer zone and the guard.
#ifndef HEAPSIGHT_PRELOAD_NESTED_HOOKS_H_
#define HEAPSIGHT_PRELOAD_NESTED_HOOKS_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "format/trace_format.h"
#include "preload/defer_zone.h"
#include "preload/live_table.h"

namespace heapsight::preload {

inline constexpr uint32_t kNestedQueue = 64;

// This thread's queued nested events (the drain's one inline test).
extern constinit thread_local std::atomic<uint32_t> t_nested_count
    __attribute__((tls_model("initial-exec")));

// A nested allocation's block `p` of `size` bytes (may be NULL: nothing
// queued).
void DeferNestedAlloc(void* p, size_t size, size_t alignment, format::Api api);
// A nested free of `p` (NULL and bootstrap blocks: nothing to do).
void DeferNestedFree(void* p, format::Api api);
// A traced block of the program freed (or moved by realloc) by a hook
// nested under the reentry guard but outside the zone (a signal handler
// landing while the outer hook unwinds or records, holding the thread-state
// lock maybe): the table forgot it and the allocator has it back, only its
// free record waits for the drain (RecordLateFree, by id: no address can
// be misattributed). Table mode; before sig23 such a free was dropped from
// the trace, and the block looked leaked.
void DeferFreeRecord(const LiveEntry& e, format::Api api);

// A free (or realloc) of `address` that no table knows: if a nested hook
// of this thread queued it as an allocation and the drain has not run yet
// (the handler frees its block from outside the zone before the outer hook
// ends), its entry is taken back (counted as an untraced pair) and true is
// returned: the caller frees it as heapsight's own block. Before this, such
// a free was a bad free and the drain then recorded a freed block.
bool TakeBackNestedAllocSlow(uintptr_t address);
inline bool TakeBackNestedAlloc(uintptr_t address) {
  return __builtin_expect(t_nested_count.load(std::memory_order_relaxed) != 0, 0) &&
         TakeBackNestedAllocSlow(address);
}

// A nested realloc of `p` to `size` bytes; `call(nullptr, ctx)` is the
// real realloc(NULL, size), i.e. a malloc with the hook's errno handling.
void* NestedRealloc(void* p, size_t size, format::Api api, void* (*call)(void*, void*),
                    void* ctx);

void DrainNestedHooksSlow();
// At the end of every top-level hook: one TLS load and a branch when the
// queue is empty (the common case by far).
inline void DrainNestedHooks() {
  if (__builtin_expect(t_nested_count.load(std::memory_order_relaxed) != 0, 0)) {
    DrainNestedHooksSlow();
  }
}

// HEAPSIGHT_STATS: what became of the nested events (process-wide).
struct NestedHookStats {
  uint64_t allocs_recorded = 0;  // recorded at the drain, empty stack
  uint64_t allocs_untraced = 0;  // not recorded (tracing off, sampled out...)
  uint64_t pairs_untraced = 0;   // allocated and freed before the drain
  uint64_t frees_deferred = 0;   // performed (and recorded) by the drain
  uint64_t frees_at_once = 0;    // performed and recorded in the handler (hang24)
  uint64_t free_records = 0;     // freed under the guard, recorded by the drain
  uint64_t allocs_dropped = 0;   // queue full: not entered anywhere
  uint64_t frees_dropped = 0;    // queue full: never performed (leaked)
};
NestedHookStats NestedHookCounts();
// A fork child reports its own counts (ForkChildTrace).
void ResetNestedHookCountsInChild();

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_NESTED_HOOKS_H_
