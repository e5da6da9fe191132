// preload/recorder.h: turns intercepted calls into trace records.
//
// The hooks (malloc_hooks.cc, new_delete_hooks.cc, process_hooks.cc) call
// the real function and hand the outcome to these functions, which keep the
// live-block table, capture and intern the stack, and append records to the
// calling thread's chunk. Starting and ending the trace (init, exit, fork,
// exec) is the lifecycle's (lifecycle.h), which configures the recorder and
// uses the few event helpers below.
//
// Constraints: no malloc, no text formatting, no stdio, no global lock per
// event (a per-thread lock and one live-table shard lock). Every entry point
// is a no-op pass-through when tracing is off (disabled, failed, or not yet
// started) except for keeping pre-start blocks in the live table as
// internal, so freeing them later is not a bad free.
#ifndef HEAPSIGHT_PRELOAD_RECORDER_H_
#define HEAPSIGHT_PRELOAD_RECORDER_H_

#include <cstddef>
#include <cstdint>

#include <atomic>

#include "format/trace_format.h"
#include "preload/live_table.h"
#include "preload/module_map.h"
#include "preload/real_functions.h"
#include "preload/reentry_guard.h"
#include "preload/sampler.h"
#include "preload/tracer_state.h"

namespace heapsight::format {
struct Options;  // format/options.h (preload::Options)
}  // namespace heapsight::format

namespace heapsight::preload {

using format::Options;
struct ThreadState;

// After the real allocation function returned `p` (nullptr = failed).
void RecordAlloc(void* p, size_t size, size_t alignment, format::Api api);

// Records the free of `p` and then calls the real free. Handles nullptr
// (nothing recorded) and bootstrap-arena pointers (ignored).
void TracedFree(void* p, format::Api api);

// --- The same two, with sampled mode's common case inlined (issue 15
// target 4), for the hooks -----------------------------------------------

// Set once at the exit point (BeginExit).
extern std::atomic<bool> g_exiting;
// Everything past the inlined fast paths. `counted`: the fast path already
// took `size` off the sampling interval and found the allocation sampled.
void RecordAllocSlow(void* p, size_t size, size_t alignment, format::Api api, bool counted);
void TracedFreeSlow(void* p, format::Api api);
// A signal handler's allocation that a nested hook queued (nested_hooks.h),
// recorded by the outer hook's drain, outside every lock: as an allocation
// with an empty stack (stack 0; the handler's stack could not be unwound
// without locks), entered in the live table or the cells like any other.
// Returns false when it was not recorded (tracing not active, sampled out,
// after the exit point): then it is entered as heapsight's own block where
// an unrecorded allocation would be.
bool RecordNestedAlloc(void* p, size_t size, size_t alignment, format::Api api);

inline void RecordAllocInline(void* p, size_t size, size_t alignment, format::Api api) {
  // Paused (HEAPSIGHT_START=paused, no window attached): the one branch a
  // dormant process pays per allocation. First, so nothing else is read.
  if (__builtin_expect(TracingStatusRelaxed() == kPaused, 0)) return;
  // Sampled mode: tracing, not inside heapsight, before the exit point, a
  // block: the allocation only counts down the thread's interval. The
  // same tests as RecordAllocSlow's, in its order, so the same allocations
  // are sampled; no errno is touched (SampleSlowPath is arithmetic only).
  if (__builtin_expect(g_sample_period != 0, 0) && p != nullptr &&
      TracingStatusRelaxed() == kActive && !InHeapsight() &&
      !g_exiting.load(std::memory_order_relaxed)) {
    int64_t& left = SampleCountdown();
    left -= static_cast<int64_t>(size);
    if (__builtin_expect(left > 0, 1)) return;
    if (!SampleSlowPath()) return;
    RecordAllocSlow(p, size, alignment, api, true);
    return;
  }
  RecordAllocSlow(p, size, alignment, api, false);
}

inline void TracedFreeInline(void* p, format::Api api) {
  // Paused: no table, no record; the free goes on (a bootstrap block is
  // never the allocator's). The paused process's one branch per free.
  if (__builtin_expect(TracingStatusRelaxed() == kPaused, 0)) {
    if (p != nullptr && !InBootstrapArena(p)) g_real.free(p);
    return;
  }
  // Sampled mode: the filter says the table does not hold `p` (an
  // unsampled block), so TracedFreeSlow would find nothing and pass the
  // free on, whatever the tracing status: no table probe, no lock. Not for
  // a bootstrap block (never ours to free) or NULL. With sampling off the
  // filter is off and every free goes on.
  if (g_live_blocks.SurelyAbsent(reinterpret_cast<uintptr_t>(p))) {
    if (p != nullptr && !InBootstrapArena(p)) g_real.free(p);
    return;
  }
  TracedFreeSlow(p, api);
}

// --- Sampled mode's fast paths (issue 15 target 4), for the hooks ---------
//
// In sampled mode nearly every allocation is not sampled and nearly every
// free is of a block the live table does not hold. Every allocation and
// free hook tests for these two cases first, before anything else it does
// (real-function check, lazy start, heap limit, tracing status, reentry,
// exit point, errno), so that such a call costs the real function plus a
// handful of instructions. The tests they skip cannot change the outcome:
// the fast paths are on only once the real functions are resolved and the
// trace has started (EnableSampledFastPaths), never with a heap limit (its
// count needs every call), and in every tracing status an unsampled
// allocation records nothing and enters no table, and a free the filter
// clears goes straight to the allocator (TracedFreeInline, whose own
// filter test this is). Each fast path returns false, having changed
// nothing, whenever the generic path has work to do, so a sampled
// allocation is decided by the generic path exactly as before.
//
// One difference: the fast path counts down allocations the generic path
// does not count (made while paused or disabled, inside heapsight, or by
// another thread after the exit point). Sampling points are a memoryless
// process over bytes, so the recorded allocations are still sampled with
// probability 1 - exp(-size/P) each; only which ones changes.

// The live table's filter once the fast paths are on; nullptr before (and
// for good without sampling, with a heap limit, or without a filter). Set
// once, never reset (a fork child keeps it).
// Hidden: read PC-relative (real_functions.h's g_real).
extern __attribute__((visibility("hidden"))) std::atomic<const std::atomic<uint8_t>*> g_fast_filter;

// Turns the fast paths on if the trace is sampled, the filter is on and
// there is no heap limit (read here if not yet). Called once by the
// lifecycle, after EnableFilter, before the program's first traced event.
void EnableSampledFastPaths();

// Allocation hooks: true if the fast path is on and an allocation of
// `size` bytes stays short of the thread's next sampling point; its bytes
// are then taken off the interval, and the hook only calls the real
// function (and FastAllocFailed if that fails). False, with nothing
// changed: the generic path, which counts the allocation itself. The
// mode costs no test: with the fast paths off, t_sample_bytes_left is 0
// (sampler.h), and so is it on a thread's first allocation.
inline bool UnsampledFast(size_t size) {
  // Unsigned: a size of 2^63 or more (which no allocator serves) is never
  // below the bytes left, and the counter is never negative at a hook's
  // entry (the generic path redraws before it returns).
  const auto left = static_cast<uint64_t>(t_sample_bytes_left);
  if (__builtin_expect(left <= size, 0)) return false;
  // Stored only when short of the point: at the point the generic path
  // starts from the same interval the generic path alone would have.
  t_sample_bytes_left = static_cast<int64_t>(left - size);
  return true;
}

// The real function failed after UnsampledFast said "not sampled": the
// countdown is taken back (the generic path does not count a failure) and
// the failure is recorded as the generic path records it (failures are
// always recorded). Keeps errno. Out of line; returns nullptr, so a hook
// returns its result with a tail call and needs no frame of its own.
void* FastAllocFailed(size_t size, size_t alignment, format::Api api);

// The same after a realloc's fast path: the generic path counts a realloc
// before its call, so here the count stays.
void* FastReallocFailed(size_t size, format::Api api);

// For the hooks whose fast path calls only the real function and tail-calls
// the rest (FastAllocFailed, the generic path): no frame pointer, so the
// fast path saves no register it does not use. Our frame-pointer walks
// (unwinder.h) never meet such a frame: by the time any code of ours runs
// from it, the frame is gone (tail call), and the real function never
// calls back into us.
#define HEAPSIGHT_FAST_HOOK __attribute__((optimize("omit-frame-pointer")))

// Free hooks: true if the fast path is on and the filter says the live
// table surely does not hold `p` (an unsampled block, or NULL): the hook
// passes `p` straight to the real free. One load of the filter pointer,
// one of its byte. A bootstrap block (never the allocator's) never passes:
// EnableSampledFastPaths made the arena's slots stuck.
inline bool UnsampledFreeFast(const void* p) {
  // Acquire: the filter's counts as EnableFilter published them.
  const std::atomic<uint8_t>* filter = g_fast_filter.load(std::memory_order_acquire);
  return filter != nullptr &&
         filter[LiveTable::FilterSlot(reinterpret_cast<uintptr_t>(p))].load(
             std::memory_order_relaxed) == 0;
}

// realloc/reallocarray with all corner cases. `size` is the byte size asked
// for (saturated on overflow); `call` performs the real call.
void* TracedRealloc(void* p, size_t size, format::Api api, void* (*call)(void*, void*),
                    void* call_ctx);

// dlopen/dlclose hooks, with their own frame address.
void MarkModulesDirty(uintptr_t hook_frame);

// Every later event is written at once (after our exit handler ran).
void EnableWriteThrough();

// The exit point (docs/trace-format.md, section 9): the calling thread has
// started the process's exit. From now on only its events are recorded;
// other threads' allocations pass through untraced, and of their frees only
// those of blocks traced before this point are recorded (at most one each),
// so exit costs what it costs without heapsight and the trace stops growing
// with busy threads. The first caller wins; idempotent. Not for a vfork
// child (it shares our memory): the caller checks.
void BeginExit();
// A fork child is not exiting, whichever thread forked (its only thread).
void ResetExitPointInChild();

// --- For the lifecycle (lifecycle.cc) ---------------------------------------

// Takes the recording settings from the parsed options (unwinder, depth,
// addresses, RSS interval, bad-free policy); `page_size` scales RSS samples.
// Called once, before tracing starts.
void ConfigureRecorder(const Options& options, uint32_t page_size);

// Walks frame pointers from now on (libunwind could not be loaded: see
// private_libunwind.h). Called once, before the first stack is taken.
void FallBackToFramePointers();

// The first RSS sample is due one interval after the start; a fork child's
// samples start over at its first event.
void ScheduleFirstRssSample();
void ResetRssSamplesInChild();

// A kRss record of the current resident size. Caller holds ts->lock.
void RecordRss(ThreadState* ts, uint64_t now);

// Ends an event: maybe an RSS sample, and in write-through mode the chunk
// goes out at once. Caller holds ts->lock.
void EndEvent(ThreadState* ts, uint64_t now);

// Module records for RescanModules/ForEachLiveModule, into ts's chunk (each
// takes ts->lock; the caller must not hold it).
ModuleSink ModuleRecords(ThreadState* ts);

// Records the modules dlopen/dlclose changed since the last event that
// looked (any thread marked them dirty). For the end of the trace.
void RecordPendingModuleChanges(ThreadState* ts);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_RECORDER_H_
