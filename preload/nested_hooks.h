// preload/nested_hooks.h: hooks nested inside the defer zone of their own
// thread (defer_zone.h), i.e. a signal handler that allocates or frees,
// landing while the interrupted frame is inside a live-table operation or
// a hook's real allocator call.
//
// Such a hook must not touch the table (it could spin forever on the shard
// lock its own thread holds) nor wait for any heapsight lock, so it does
// only what needs neither and queues the rest in a small per-thread queue:
// - an allocation: the real allocator already served it; its address is
//   queued, to be entered as an internal block (not in the trace, like
//   heapsight's own blocks: its free is then not recorded either);
// - a free: the pointer is queued and NOT freed yet. Record-before-free:
//   once the real free runs, another thread may get the address, and the
//   table must have forgotten the old block by then. Except a block a
//   nested hook allocated that is still queued (no table has it): freed at
//   once, its entry taken back (see DeferNestedFree);
// - a realloc: a new block from the real allocator (queued as above), the
//   old block's bytes copied, the old block queued as a free.
// The outer hook drains the queue at its end, when its thread holds no
// heapsight lock and is not inside heapsight (DrainNestedHooks): queued
// allocations are entered, queued frees go through the normal free path
// (recorded if they are the program's traced blocks), in the order they
// were queued. A hook running inside heapsight's own call leaves the queue
// to the hook whose guard that is.
//
// Overflow (more than kNestedQueue nested events before a drain): an extra free is never performed (its block leaks; the trace
// shows it live) and an extra allocation is not entered (its later free
// is then an unknown block's); both are counted for HEAPSIGHT_STATS. Never
// a hang, never a crash.
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

namespace heapsight::preload {

inline constexpr uint32_t kNestedQueue = 64;

// This thread's queued nested events (the drain's one inline test).
extern constinit thread_local std::atomic<uint32_t> t_nested_count
    __attribute__((tls_model("initial-exec")));

// A nested allocation's block `p` (may be NULL: nothing queued).
void DeferNestedAlloc(void* p);
// A nested free of `p` (NULL and bootstrap blocks: nothing to do).
void DeferNestedFree(void* p, format::Api api);
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

// HEAPSIGHT_STATS: nested events queued, and those dropped (overflow).
void NestedHookCounts(uint64_t* deferred, uint64_t* dropped);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_NESTED_HOOKS_H_
