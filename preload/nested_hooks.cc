// preload/nested_hooks.cc: see nested_hooks.h.
//
// Constraints: no locks; no malloc but the real allocator's for a nested
// realloc's new block; initial-exec TLS only. Defer* and NestedRealloc run
// in a signal handler nested in the defer zone: they touch only this
// thread's queue (count updated by single atomic instructions, so a second
// handler nested in the first reserves its own slot). The drain takes
// shard locks and may record (TracedFreeSlow), so it runs only outside
// the defer zone and the reentry guard.
#include "preload/nested_hooks.h"

#include <malloc.h>

#include <cstring>

#include "preload/host_guards.h"
#include "preload/live_table.h"
#include "preload/real_functions.h"
#include "preload/recorder.h"
#include "preload/reentry_guard.h"
#include "preload/tracer_state.h"

namespace heapsight::preload {

constinit thread_local std::atomic<uint32_t> t_nested_count
    __attribute__((tls_model("initial-exec"))){0};

namespace {

// A queued allocation's tag; a queued free's is its Api (all below 254);
// an entry taken back (its block freed at once) or being drained is void.
constexpr uint8_t kAllocTag = 0xff;
constexpr uint8_t kVoidTag = 0xfe;

constinit thread_local uintptr_t t_nested_address[kNestedQueue]
    __attribute__((tls_model("initial-exec"))) = {};
constinit thread_local uint8_t t_nested_tag[kNestedQueue]
    __attribute__((tls_model("initial-exec"))) = {};
// Set while this thread drains: a handler's hook that ends meanwhile (not
// nested in the defer zone, so it ran normally) leaves the queue to the
// drain it interrupted, which sees its entries (it rereads the count).
constinit thread_local bool t_draining __attribute__((tls_model("initial-exec"))) = false;

std::atomic<uint64_t> g_deferred{0};
std::atomic<uint64_t> g_dropped{0};

void Push(uintptr_t address, uint8_t tag) {
  // The slot is reserved first (one atomic add): a handler nested in this
  // one (another signal) gets the next slot, not this one. The drain never
  // runs before this handler returns (it runs only outside the defer
  // zone, and this thread is inside it), so it never reads a slot
  // reserved but not yet written.
  uint32_t i = t_nested_count.fetch_add(1, std::memory_order_relaxed);
  if (i >= kNestedQueue) {
    t_nested_count.fetch_sub(1, std::memory_order_relaxed);
    g_dropped.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  t_nested_address[i] = address;
  t_nested_tag[i] = tag;
  g_deferred.fetch_add(1, std::memory_order_relaxed);
}

// InsertInternal's work (recorder.cc), for a queued allocation.
void EnterInternal(uintptr_t address) {
  // Sampled mode keeps no internal entries (live_table.h).
  if (g_live_blocks.SurelyAbsent(address)) return;
  LiveEntry e;
  e.internal = true;
  g_live_blocks.Insert(address, e);
}

}  // namespace

void DeferNestedAlloc(void* p) {
  if (p != nullptr) Push(reinterpret_cast<uintptr_t>(p), kAllocTag);
}

void DeferNestedFree(void* p, format::Api api) {
  if (p == nullptr || InBootstrapArena(p)) return;  // nothing to free, as TracedFreeSlow
  const auto address = reinterpret_cast<uintptr_t>(p);
  // A block a nested hook allocated and that is still queued (the table
  // never had it): its entry is taken back and the block freed at once, as
  // without heapsight. Deferring that free would leave the allocator's
  // per-thread cache empty until the drain, and a handler's next malloc
  // would then take the arena lock, which the interrupted malloc may hold:
  // glibc itself would deadlock (seen with lock_stress_program). Newest
  // first; no drain runs meanwhile (it runs outside the zone only).
  for (uint32_t i = t_nested_count.load(std::memory_order_relaxed); i-- > 0;) {
    if (i < kNestedQueue && t_nested_address[i] == address && t_nested_tag[i] == kAllocTag) {
      t_nested_tag[i] = kVoidTag;
      g_real.free(p);
      return;
    }
  }
  Push(address, static_cast<uint8_t>(api));
}

void* NestedRealloc(void* p, size_t size, format::Api api, void* (*call)(void*, void*),
                    void* ctx) {
  if (p == nullptr) {
    void* q = call(nullptr, ctx);
    DeferNestedAlloc(q);
    return q;
  }
  if (size == 0) {  // glibc's realloc(p, 0): the block is freed, NULL returned
    DeferNestedFree(p, api);
    return nullptr;
  }
  // Always a move, never the real realloc: that may free `p` at once
  // (a move), before the table forgot it.
  void* q = call(nullptr, ctx);
  if (q == nullptr) return nullptr;  // failed (errno set by `call`): `p` untouched
  size_t old = malloc_usable_size(p);
  std::memcpy(q, p, old < size ? old : size);
  DeferNestedAlloc(q);
  DeferNestedFree(p, api);
  return q;
}

__attribute__((noinline, cold)) void DrainNestedHooksSlow() {
  // Inside heapsight's own call (the guard may cover a thread-state lock),
  // inside the defer zone, or inside a drain: the outer frame drains.
  if (InHeapsight() || InDeferZone() || t_draining) return;
  ErrnoKeeper keep_errno;  // the hook's caller sees the errno the hook left
  t_draining = true;
  std::atomic_signal_fence(std::memory_order_seq_cst);
  // In queue order: a nested allocation comes before the nested free of the
  // same block. Entries queued meanwhile (a handler nested in one of the
  // drain's own table operations) are appended and read by this loop; the
  // count goes back to 0 only by a compare-and-swap from the count read,
  // so none is lost.
  uint32_t i = 0;
  for (;;) {
    uint32_t n = t_nested_count.load(std::memory_order_relaxed);
    if (i >= n) {
      if (t_nested_count.compare_exchange_strong(n, 0, std::memory_order_relaxed)) break;
      continue;
    }
    uintptr_t address = t_nested_address[i];
    uint8_t tag = t_nested_tag[i];
    // Void while it is processed: a handler nested in the insert below
    // that frees this block queues its free (the table is about to have
    // it) instead of freeing it at once.
    t_nested_tag[i] = kVoidTag;
    ++i;
    if (tag == kVoidTag) {
      // Taken back by DeferNestedFree.
    } else if (tag == kAllocTag) {
      EnterInternal(address);
    } else {
      // The normal free path: recorded if it is a traced block of the
      // program, and freed after the table forgot it.
      TracedFreeSlow(reinterpret_cast<void*>(address), static_cast<format::Api>(tag));
    }
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_draining = false;
}

void NestedHookCounts(uint64_t* deferred, uint64_t* dropped) {
  *deferred = g_deferred.load(std::memory_order_relaxed);
  *dropped = g_dropped.load(std::memory_order_relaxed);
}

}  // namespace heapsight::preload
