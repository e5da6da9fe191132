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

#include "preload/clock.h"
#include "preload/host_guards.h"
#include "preload/live_cells.h"
#include "preload/options.h"
#include "preload/real_functions.h"
#include "preload/recorder.h"
#include "preload/reentry_guard.h"
#include "preload/sampler.h"
#include "preload/thread_state.h"
#include "preload/tracer_state.h"

namespace heapsight::preload {

constinit thread_local std::atomic<uint32_t> t_nested_count
    __attribute__((tls_model("initial-exec"))){0};

namespace {

// An entry's kind; an entry taken back (its block freed at once) or being
// drained is void.
constexpr uint8_t kFreeTag = 0;
constexpr uint8_t kAllocTag = 1;
constexpr uint8_t kVoidTag = 2;
constexpr uint8_t kFreeRecordTag = 3;  // performed already; only its record waits

// One entry: the block, its kind and api; for an allocation its size and
// alignment too (recorded at the drain, RecordNestedAlloc); for a free
// record, the freed block's id and stack (and size). 2.5 KiB of static
// TLS per thread.
struct NestedEntry {
  uintptr_t address;
  uint64_t size;
  uint64_t id;
  uint64_t stack;
  uint32_t alignment;
  uint8_t tag;
  format::Api api;
};
constinit thread_local NestedEntry t_nested[kNestedQueue]
    __attribute__((tls_model("initial-exec"))) = {};
// Set while this thread drains: a handler's hook that ends meanwhile (not
// nested in the defer zone, so it ran normally) leaves the queue to the
// drain it interrupted, which sees its entries (it rereads the count).
constinit thread_local bool t_draining __attribute__((tls_model("initial-exec"))) = false;

std::atomic<uint64_t> g_allocs_recorded{0};
std::atomic<uint64_t> g_allocs_untraced{0};
std::atomic<uint64_t> g_pairs_untraced{0};
std::atomic<uint64_t> g_frees_deferred{0};
std::atomic<uint64_t> g_frees_at_once{0};
std::atomic<uint64_t> g_free_records{0};
std::atomic<uint64_t> g_allocs_dropped{0};
std::atomic<uint64_t> g_frees_dropped{0};

void Push(uintptr_t address, uint64_t size, uint32_t alignment, uint8_t tag, format::Api api,
          uint64_t id = 0, uint64_t stack = 0) {
  // The slot is reserved first (one atomic add): a handler nested in this
  // one (another signal) gets the next slot, not this one. The drain never
  // runs before this handler returns (it runs only outside the defer
  // zone, and this thread is inside it), so it never reads a slot
  // reserved but not yet written.
  uint32_t i = t_nested_count.fetch_add(1, std::memory_order_relaxed);
  if (i >= kNestedQueue) {
    t_nested_count.fetch_sub(1, std::memory_order_relaxed);
    (tag == kAllocTag ? g_allocs_dropped : g_frees_dropped).fetch_add(1, std::memory_order_relaxed);
    return;
  }
  t_nested[i] = NestedEntry{address, size, id, stack, alignment, tag, api};
  if (tag == kFreeTag) g_frees_deferred.fetch_add(1, std::memory_order_relaxed);
  if (tag == kFreeRecordTag) g_free_records.fetch_add(1, std::memory_order_relaxed);
}

// Takes back slot `i`, a queued allocation freed before the drain (the
// caller frees the block at once, or has it freed as heapsight's own):
// the entry becomes void, and if it is the newest one its slot is given
// back (the count goes down by one, by compare-and-swap from i + 1: a
// handler nested in this one that pushed meanwhile keeps its slot, and
// this one stays void). Only this slot: it is at or above the index a
// drain this thread is in the middle of has reached (the drain voids each
// entry before it processes it, so a kAllocTag entry is one it has not
// read), so the drain, which rereads the count, never skips an entry
// pushed after the pop.
//
// Why (hang24): before, a taken-back entry kept its slot until the drain.
// A handler that mallocs and frees, run over and over inside one long
// defer zone (a worker blocked in the real malloc on the arena lock that a
// forking thread holds, or waiting at the fork gate, for milliseconds on
// a loaded machine), used up the 64 slots with void entries; from then on
// its allocations were not queued and its frees were dropped, i.e. never
// performed: each leaked a block out of glibc's tcache bin, and once the
// bin was empty, the handler's next malloc inside a real free of a
// non-tcache block (arena locked) took that lock again: glibc deadlocked
// (lock_stress_program malloc-in-handler in address mode, seen in CI).
void TakeBack(uint32_t i) {
  t_nested[i].tag = kVoidTag;
  g_pairs_untraced.fetch_add(1, std::memory_order_relaxed);
  uint32_t newest = i + 1;
  t_nested_count.compare_exchange_strong(newest, i, std::memory_order_relaxed);
}

// The free record of block `e` (by id, or stack and size with compact
// frees), freed earlier under the reentry guard (DeferFreeRecord). Here,
// not in recorder.cc: another call of PutFree there made the compiler
// stop inlining it into the free hook (+11 instructions per event).
void RecordLateFree(const LiveEntry& e, format::Api api) {
  ErrnoKeeper keep_errno;
  ReentryGuard guard;
  uint64_t now = NowUs();
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) return;
  SpinLockHolder hold(&ts->lock);
  if (g_options.COMPACT_FREES) {
    AppendRecord(ts, now, &format::ChunkEncoder::PutFreeCompact, now, api, e.stack, e.size);
  } else {
    AppendRecord(ts, now, &format::ChunkEncoder::PutFree, now, api, e.id, ts->index,
                 ts->counter);
  }
  EndEvent(ts, now);
}

// A nested free performed at once, its record appended now (hang24): see
// FreeNestedAtOnce. Caller holds ts->lock. False if the records do not fit
// the chunk (a flush hands the chunk over or writes it: not from a
// handler): nothing was appended then.
bool AppendNestedFree(ThreadState* ts, uint64_t now, format::Api api, const LiveEntry& e) {
  if (g_options.COMPACT_FREES) {
    return ts->encoder.PutFreeCompact(now, api, e.stack, e.size);
  }
  return ts->encoder.PutFree(now, api, e.id, ts->index, ts->counter);
}

// A nested free (signal handler inside this thread's defer zone) that
// forgets its block without waiting, records it, and frees it at once,
// as the program would have without heapsight (hang24). Deferring the free
// of a traced block to the drain left glibc's tcache bin one block short
// for every such handler run: a handler that frees and allocates, run
// several times inside one real free of a non-tcache block (the arena
// locked), emptied the bin, and its next malloc took the arena lock its
// own thread held (lock_stress_program keep-in-handler: 2 hangs in 100
// runs under load).
//
// Nothing here waits: the thread-state lock and the table's shard lock
// are only tried (the interrupted frame may hold either), and the cells'
// Clear is a compare-and-swap. Table mode: the shard's entry is removed
// (LiveTable::TryRemoveNested) and the free recorded by id, now if
// ts->lock is free and the chunk has room, else at the drain
// (DeferFreeRecord): by id, the record's place in the stream does not
// matter. Address mode: the record must be appended now, under ts->lock,
// so it sits in the thread's stream where the free happened, before any
// record of a later allocation at the same address (the interrupted
// malloc itself may get the block back from the tcache): a thread's own
// events at one address are ordered by its stream (address_pairing.h).
// The cell's Clear (order value, owner) comes before the real free, as in
// TracedFreeAddress, so another thread that gets the address next is a
// hand-off after this free. With ts->lock taken or the chunk full, the
// free is deferred as before. NowUs is read under ts->lock, where it is
// safe in a handler: the TSC calibration's seqlock is written on this
// thread only by RecalibrateClock, which holds ts->lock.
//
// Returns false, with nothing changed, where the drain's path must decide
// (the free is then deferred as before): tracing not active or past the
// exit point, no thread state, a lock taken (a shard's; in address mode
// ts->lock too), a mismatched free (reported with a stack by the drain), a
// block the table and cells do not know (a bad free), or an address-mode
// record that does not fit the chunk.
bool FreeNestedAtOnce(void* p, format::Api api) {
  if (TracingStatusRelaxed() != kActive || g_exiting.load(std::memory_order_relaxed)) {
    return false;
  }
  ThreadState* ts = t_state;
  if (ts == nullptr) return false;
  const auto address = reinterpret_cast<uintptr_t>(p);
  bool done = false;
  if (!g_address_frees) {
    LiveEntry e;
    LiveTable::NestedRemove r =
        g_live_blocks.TryRemoveNested(address, api, /*internal_only=*/false, &e);
    if (r == LiveTable::NestedRemove::kRemoved) {
      // By id: a record appended later (the drain's, DeferFreeRecord) pairs
      // the same, so the lock taken (a table operation under it, e.g. an
      // allocation hook's insert) or a full chunk only delays the record.
      bool appended = false;
      if (!e.internal && ts->lock.TryLock()) {
        appended = AppendNestedFree(ts, NowUs(), api, e);
        ts->lock.Unlock();
      }
      if (!e.internal && !appended) DeferFreeRecord(e, api);
      done = true;
    } else if (r == LiveTable::NestedRemove::kAbsent && g_sample_period != 0) {
      done = true;  // sampled mode: an unsampled block, as TracedFreeUnnested passes it
    }
  } else if (ts->lock.TryLock()) {
    uint64_t order;
    format::ApiFamily family;
    bool double_free;
    LiveCells::Cell before;
    if (g_live_cells.Clear(address, ts->cell_owner, &order, &family, &double_free, &before) ==
        LiveCells::Result::kDone) {
      const bool mismatched = format::FamiliesMismatch(family, format::FamilyOf(api));
      if (!mismatched && ts->encoder.PutFreeAddress(NowUs(), api, address, order)) {
        done = true;
      } else {
        g_live_cells.Restore(address, before);  // live again, as the drain will find it
      }
    } else {
      // No live cell: heapsight's own block (internal entries stay in the
      // table) is forgotten and freed; anything else (a program block
      // without a cell, a bad free) is the drain's to judge.
      LiveEntry e;
      done = g_live_blocks.TryRemoveNested(address, api, /*internal_only=*/true, &e) ==
             LiveTable::NestedRemove::kRemoved;
    }
    ts->lock.Unlock();
  }
  if (!done) return false;
  g_frees_at_once.fetch_add(1, std::memory_order_relaxed);
  g_real.free(p);  // inside the zone still: a handler nested in it defers
  return true;
}

}  // namespace

void DeferNestedAlloc(void* p, size_t size, size_t alignment, format::Api api) {
  if (p != nullptr) {
    Push(reinterpret_cast<uintptr_t>(p), size, static_cast<uint32_t>(alignment), kAllocTag, api);
  }
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
    if (i < kNestedQueue && t_nested[i].address == address && t_nested[i].tag == kAllocTag) {
      TakeBack(i);
      g_real.free(p);
      return;
    }
  }
  if (FreeNestedAtOnce(p, api)) return;
  Push(address, 0, 0, kFreeTag, api);
}

bool TakeBackNestedAllocSlow(uintptr_t address) {
  for (uint32_t i = t_nested_count.load(std::memory_order_relaxed); i-- > 0;) {
    if (i < kNestedQueue && t_nested[i].address == address && t_nested[i].tag == kAllocTag) {
      TakeBack(i);
      return true;
    }
  }
  return false;
}

void DeferFreeRecord(const LiveEntry& e, format::Api api) {
  Push(0, e.size, 0, kFreeRecordTag, api, e.id, e.stack);
}

void* NestedRealloc(void* p, size_t size, format::Api api, void* (*call)(void*, void*),
                    void* ctx) {
  if (p == nullptr) {
    void* q = call(nullptr, ctx);
    DeferNestedAlloc(q, size, 0, api);
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
  DeferNestedAlloc(q, size, 0, api);
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
    const NestedEntry e = t_nested[i];
    // Void while it is processed: a handler nested in the record below
    // that frees this block queues its free (the table is about to have
    // it) instead of freeing it at once.
    t_nested[i].tag = kVoidTag;
    ++i;
    if (e.tag == kVoidTag) {
      // Taken back by DeferNestedFree.
    } else if (e.tag == kAllocTag) {
      // Recorded now, with an empty stack (recorder.h); not recorded only
      // where an unnested allocation would not be either.
      bool recorded =
          RecordNestedAlloc(reinterpret_cast<void*>(e.address), e.size, e.alignment, e.api);
      (recorded ? g_allocs_recorded : g_allocs_untraced).fetch_add(1, std::memory_order_relaxed);
    } else if (e.tag == kFreeRecordTag) {
      LiveEntry freed;
      freed.id = e.id;
      freed.size = e.size;
      freed.stack = e.stack;
      RecordLateFree(freed, e.api);
    } else {
      // The normal free path: recorded if it is a traced block of the
      // program, and freed after the table forgot it.
      TracedFreeSlow(reinterpret_cast<void*>(e.address), e.api);
    }
  }
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_draining = false;
}

NestedHookStats NestedHookCounts() {
  NestedHookStats s;
  s.allocs_recorded = g_allocs_recorded.load(std::memory_order_relaxed);
  s.allocs_untraced = g_allocs_untraced.load(std::memory_order_relaxed);
  s.pairs_untraced = g_pairs_untraced.load(std::memory_order_relaxed);
  s.frees_deferred = g_frees_deferred.load(std::memory_order_relaxed);
  s.frees_at_once = g_frees_at_once.load(std::memory_order_relaxed);
  s.free_records = g_free_records.load(std::memory_order_relaxed);
  s.allocs_dropped = g_allocs_dropped.load(std::memory_order_relaxed);
  s.frees_dropped = g_frees_dropped.load(std::memory_order_relaxed);
  return s;
}

void ResetNestedHookCountsInChild() {
  for (auto* c : {&g_allocs_recorded, &g_allocs_untraced, &g_pairs_untraced, &g_frees_deferred,
                  &g_frees_at_once, &g_free_records, &g_allocs_dropped, &g_frees_dropped}) {
    c->store(0, std::memory_order_relaxed);
  }
}

}  // namespace heapsight::preload
