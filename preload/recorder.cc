// preload/recorder.cc: see recorder.h.
//
// Constraints: no malloc on any path (memory from PageAlloc/ArenaAlloc), no
// stdio, no text formatting except the raw line before an abort on a bad
// free (HEAPSIGHT_ON_BAD_FREE=abort). Per event: the calling thread's state
// lock (uncontended) and one live-table shard lock; the stack-table lock
// only when a new stack appears. A hook nested in this thread's own table
// operation (a signal handler) takes no lock at all (nested_hooks.h).
#include "preload/recorder.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "preload/clock.h"
#include "preload/defer_zone.h"
#include "preload/heap_limit.h"
#include "preload/host_guards.h"
#include "preload/internal_alloc.h"
#include "preload/live_cells.h"
#include "preload/live_table.h"
#include "preload/module_map.h"
#include "preload/nested_hooks.h"
#include "preload/options.h"
#include "preload/raw_log.h"
#include "preload/real_functions.h"
#include "preload/reentry_guard.h"
#include "preload/sampler.h"
#include "preload/stack_table.h"
#include "preload/thread_state.h"
#include "preload/tracer_state.h"
#include "preload/unwinder.h"

namespace heapsight::preload {

constinit thread_local int t_reentry_depth __attribute__((tls_model("initial-exec"))) = 0;
// The exit point (BeginExit): set once; t_exit_thread marks the thread that
// set it.
std::atomic<bool> g_exiting{false};
std::atomic<const std::atomic<uint8_t>*> g_fast_filter{nullptr};

namespace {

using format::Api;
using format::ChunkEncoder;

std::atomic<bool> g_write_through{false};
thread_local bool t_exit_thread __attribute__((tls_model("initial-exec"))) = false;

// True for an event of a thread other than the exiting one, after the exit
// point.
inline bool AfterExitPoint() {
  return __builtin_expect(g_exiting.load(std::memory_order_relaxed), 0) && !t_exit_thread;
}
UnwindMode g_unwind = UnwindMode::kLibunwind;
size_t g_max_depth = 256;  // HEAPSIGHT_MAX_DEPTH's default
bool g_record_addresses = false;
uint32_t g_page_size = 4096;
std::atomic<uint64_t> g_next_rss_us{0};
uint64_t g_rss_interval_us = 10000;

// EndEvent's work, when EndEventDue says there is some.
void EndEventSlow(ThreadState* ts, uint64_t now);
// Whether EndEvent has anything to do (an RSS sample due, or write-through
// mode): two loads and compares, inline in the hooks, which otherwise
// called EndEvent for nothing at each event.
__attribute__((always_inline)) inline bool EndEventDue(uint64_t now) {
  return (g_rss_interval_us != 0 && now >= g_next_rss_us.load(std::memory_order_relaxed)) ||
         g_write_through.load(std::memory_order_relaxed);
}
// EndEvent for the hooks.
__attribute__((always_inline)) inline void EndEventInline(ThreadState* ts, uint64_t now) {
  if (__builtin_expect(EndEventDue(now), 0)) EndEventSlow(ts, now);
}

// Set by the dlopen/dlclose hooks of this thread: while set, every event of
// the thread checks whether the module list changed (and rescans if so).
// It is cleared by the first event whose hook frame is not below the
// dlopen hook's frame (t_dl_frame), i.e. once dlopen/dlclose has returned. Events inside the
// call (the loader's own allocations, the new module's constructors) keep
// checking, so a module is recorded as soon as it is in the list.
thread_local bool t_modules_dirty __attribute__((tls_model("initial-exec"))) = false;
thread_local uintptr_t t_dl_frame __attribute__((tls_model("initial-exec"))) = 0;
std::atomic<bool> g_modules_dirty{false};  // any thread; checked at exit

format::FreeAction g_bad_free_action = format::FreeAction::kSkipped;  // HEAPSIGHT_ON_BAD_FREE
// HEAPSIGHT_COMPACT_FREES: frees name the block's stack and size, not its
// id (trace_format.h, "Compact frees"). The live table still knows the
// exact block, so free errors are judged exactly here either way.
bool g_compact_frees = false;

// The free record of block `e`: its id, or with compact frees its stack
// and size. Caller holds ts->lock.
// Inline: one call and prologue less per free (~15 instructions).
__attribute__((always_inline)) inline void AppendFree(ThreadState* ts, uint64_t now, Api api,
                                                      const LiveEntry& e) {
  if (g_compact_frees) {
    AppendRecord(ts, now, &ChunkEncoder::PutFreeCompact, now, api, e.stack, e.size);
  } else {
    AppendRecord(ts, now, &ChunkEncoder::PutFree, now, api, e.id, ts->index, ts->counter);
  }
}

struct StackRef {
  uint64_t leaf = 0;
  uint64_t first_new = 1;
  uint64_t last_new = 0;
  // HEAPSIGHT_VERIFY_UNWIND: nodes the full unwind made after a mismatch.
  uint64_t first_new2 = 1;
  uint64_t last_new2 = 0;
};

bool g_verify_unwind = false;  // HEAPSIGHT_VERIFY_UNWIND

// HEAPSIGHT_VERIFY_UNWIND: unwinds in full what the unwind cache gave and
// keeps the full unwind's stack. Out of line (the test mode's cost stays
// off the hook path); CaptureStack skips this frame like the hook's.
__attribute__((noinline, cold)) void VerifyUnwind(StackRef* s) {
  uintptr_t buf[kMaxStackDepth + kCaptureSlack];
  const uintptr_t* frames;
  size_t n = CaptureStack(UnwindMode::kLibunwind, buf, g_max_depth, &frames);
  uint64_t first, last;
  uint64_t leaf = g_stack_table.Intern(frames, n, &first, &last);
  CountUnwindVerification(leaf == s->leaf);
  if (leaf != s->leaf) {
    s->leaf = leaf;
    s->first_new2 = first;
    s->last_new2 = last;
  }
}

// Unwinds and interns the current stack. The thread's unwind cache is asked
// first: it walks only the frames that changed since the thread's recent
// stacks and splices on the rest (unwind_cache.h). When it cannot vouch
// for the stack, the stack is unwound with libunwind; the thread's stack
// cache (exact match on the frames, no new nodes possible on a hit) and
// then the process-wide table intern it. Always inlined, like
// CaptureStack: no frame of its own for libunwind to step through.
__attribute__((always_inline)) inline StackRef GetStack(ThreadState* ts) {
  StackRef s;
  UnwindCache* unwind_cache = ts->unwind_cache;
  UnwindKey key;
  // From this frame (GetStack is inlined into a function of ours).
  if (unwind_cache != nullptr &&
      UnwindKeyFromOwnFrame(reinterpret_cast<uintptr_t>(__builtin_frame_address(0)), &key) &&
      unwind_cache->Capture(key, g_max_depth, &g_stack_table, &s.leaf, &s.first_new,
                            &s.last_new)) {
    if (__builtin_expect(g_verify_unwind, 0)) VerifyUnwind(&s);
    return s;
  }
  uintptr_t buf[kMaxStackDepth + kCaptureSlack];
  const uintptr_t* frames;
  size_t n = CaptureStack(g_unwind, buf, g_max_depth, &frames);
  StackCache* cache = ts->stack_cache;
  if (cache != nullptr && !cache->Active()) cache = nullptr;
  if (cache != nullptr) s.leaf = cache->Find(frames, n);
  if (s.leaf == 0) {
    s.leaf = g_stack_table.Intern(frames, n, &s.first_new, &s.last_new);
    if (cache != nullptr) cache->Insert(frames, n, s.leaf);
  }
  return s;
}

// New stack nodes go into the creating thread's chunk before the record
// that uses them. Caller holds ts->lock.
__attribute__((noinline)) void EmitNewNodes(ThreadState* ts, const StackRef& s, uint64_t now) {
  for (uint64_t node = s.first_new; node <= s.last_new; ++node) {
    uint64_t parent, ip;
    g_stack_table.Node(node, &parent, &ip);
    AppendRecord(ts, now, &ChunkEncoder::PutStackNode, node, parent, ip);
  }
  for (uint64_t node = s.first_new2; node <= s.last_new2; ++node) {
    uint64_t parent, ip;
    g_stack_table.Node(node, &parent, &ip);
    AppendRecord(ts, now, &ChunkEncoder::PutStackNode, node, parent, ip);
  }
}

// Most events make no node: two compares inline, and the out-of-line
// call (whose prologue saves the registers its loops need, ~30
// instructions) only when there are nodes to write.
__attribute__((always_inline)) inline void EmitNodes(ThreadState* ts, const StackRef& s,
                                                     uint64_t now) {
  if (__builtin_expect(s.first_new <= s.last_new || s.first_new2 <= s.last_new2, 0)) {
    EmitNewNodes(ts, s, now);
  }
}

uint64_t ReadRss() {
  NoCancel no_cancel;  // under the state lock; open/read/close are cancellation points
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char* p = buf;
  while (*p != '\0' && *p != ' ') ++p;  // skip total size
  while (*p == ' ') ++p;
  uint64_t pages = 0;
  for (; *p >= '0' && *p <= '9'; ++p) pages = pages * 10 + static_cast<uint64_t>(*p - '0');
  return pages * g_page_size;
}

uint64_t AddressField(const void* p) {
  return g_record_addresses ? reinterpret_cast<uintptr_t>(p) : 0;
}

void InsertInternal(void* p) {
  // Sampled mode keeps no internal entries (live_table.h): nothing to do
  // when the table surely does not hold the address (the common case).
  if (g_live_blocks.SurelyAbsent(reinterpret_cast<uintptr_t>(p))) return;
  LiveEntry e;
  e.internal = true;
  g_live_blocks.Insert(reinterpret_cast<uintptr_t>(p), e);
}

void EmitModuleLoaded(const Module& m, void* ctx) {
  auto* ts = static_cast<ThreadState*>(ctx);
  uint64_t now = NowUs();
  SpinLockHolder hold(&ts->lock);
  AppendRecord(ts, now, &ChunkEncoder::PutModule, now, m.id, m.load_address, m.path, m.path_len,
               m.build_id, m.build_id_len, m.segments, m.segment_count);
  if (g_write_through.load(std::memory_order_relaxed)) FlushLocked(ts, now);
}

void EmitModuleUnloaded(uint64_t id, void* ctx) {
  auto* ts = static_cast<ThreadState*>(ctx);
  uint64_t now = NowUs();
  SpinLockHolder hold(&ts->lock);
  AppendRecord(ts, now, &ChunkEncoder::PutModuleUnload, now, id);
  if (g_write_through.load(std::memory_order_relaxed)) FlushLocked(ts, now);
}

}  // namespace

void RescanModulesAndRecord(ThreadState* ts);

namespace {

// RecordBadFree's work, once the error is known: kDoubleFree or
// kInvalidFree, with the freed block's id when known (0 otherwise).
format::FreeAction RecordFreeError(ThreadState* ts, void* p, Api api, uint64_t now,
                                   format::FreeError error, uint64_t alloc_id);

// A free (or realloc) of a pointer the live table does not know. Not ours
// to judge yet (issue 5 sets the policy): it is recorded and the caller
// still hands it to the allocator, as without heapsight. The chunk goes out
// at once, because glibc usually aborts the process on such a free. Call
// under the reentry guard.
//
// Issue 5: recorded as kFreeError (with the block's allocation id when the
// pointer is in the recently-freed ring: a double free), and the returned
// action (HEAPSIGHT_ON_BAD_FREE) says what the caller does: kSkipped (do
// not call the allocator), kPassed, or kAborted (the process aborts here).
format::FreeAction RecordBadFree(void* p, Api api, uint64_t now) {
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) return format::FreeAction::kPassed;
  uint64_t alloc_id = 0;
  auto error = g_live_blocks.RecentlyRemoved(reinterpret_cast<uintptr_t>(p), &alloc_id)
                   ? format::FreeError::kDoubleFree
                   : format::FreeError::kInvalidFree;
  return RecordFreeError(ts, p, api, now, error, alloc_id);
}

// The same with address frees: the cells told double from invalid
// (LiveCells::Clear's double_free); the record has no id (the analyzer's
// pairing knows the block).
format::FreeAction RecordBadFreeAddress(void* p, Api api, uint64_t now, bool double_free) {
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) return format::FreeAction::kPassed;
  return RecordFreeError(ts, p, api, now,
                         double_free ? format::FreeError::kDoubleFree
                                     : format::FreeError::kInvalidFree,
                         0);
}

format::FreeAction RecordFreeError(ThreadState* ts, void* p, Api api, uint64_t now,
                                   format::FreeError error, uint64_t alloc_id) {
  StackRef s = GetStack(ts);
  format::FreeAction action = g_bad_free_action;
  {
    SpinLockHolder hold(&ts->lock);
    EmitNodes(ts, s, now);
    AppendRecord(ts, now, &ChunkEncoder::PutFreeError, now, api, error, action,
                 reinterpret_cast<uintptr_t>(p), s.leaf, alloc_id);
    // Written here, not handed to the writer thread: glibc usually aborts
    // the process right after such a free.
    FlushNowLocked(ts, now);
  }
  if (action == format::FreeAction::kAborted) {
    FlushAllThreads(now);
    if (!g_options.QUIET) {
      RawBuffer b;
      b.Str(error == format::FreeError::kDoubleFree ? "double free" : "invalid free")
          .Str(": aborting (HEAPSIGHT_ON_BAD_FREE=abort)");
      RawLog(b);
    }
    abort();
  }
  return action;
}

// A block released by another API family than the one that allocated it
// (malloc/free, new/delete, new[]/delete[]). Recorded with the releasing
// call's stack; the block is still released (as memcheck does). Call under
// the reentry guard, before the kFree/kRealloc record of the block.
//
// The families come from a table of FamilyOf over every byte (two loads
// instead of two switches: ~8 instructions less on every free).
struct ApiFamilies {
  format::ApiFamily of[256];
};
constexpr ApiFamilies kApiFamilies = [] {
  ApiFamilies t{};
  for (int a = 0; a < 256; ++a) t.of[a] = format::FamilyOf(static_cast<Api>(a));
  return t;
}();
bool IsMismatched(Api alloc_api, Api free_api) {
  return format::FamiliesMismatch(kApiFamilies.of[static_cast<uint8_t>(alloc_api)],
                                  kApiFamilies.of[static_cast<uint8_t>(free_api)]);
}

// With address frees the cell knows the allocation's family, not its api.
// The common case (the same family) is one load and one compare.
__attribute__((always_inline)) inline bool IsMismatchedFamily(format::ApiFamily alloc_family,
                                                              Api free_api) {
  format::ApiFamily f = kApiFamilies.of[static_cast<uint8_t>(free_api)];
  if (__builtin_expect(alloc_family == f, 1)) return false;
  return format::FamiliesMismatch(alloc_family, f);
}

void RecordMismatch(ThreadState* ts, void* p, Api api, uint64_t alloc_id, uint64_t now) {
  StackRef s = GetStack(ts);
  SpinLockHolder hold(&ts->lock);
  EmitNodes(ts, s, now);
  AppendRecord(ts, now, &ChunkEncoder::PutFreeError, now, api, format::FreeError::kMismatchedFree,
               format::FreeAction::kPassed, reinterpret_cast<uintptr_t>(p), s.leaf, alloc_id);
}

}  // namespace

namespace {

// Address frees: an allocation at `p` (the real call returned it) becomes
// live in the cells; returns the order value its record carries. A block
// without a cell (the cells' span could not be mapped) goes to the live
// table as a program block instead, so its free is still paired (order 0:
// the table, not the cell, orders its events). Call before the record and
// before ++ts->counter; caller holds ts->lock, and ends the window with
// EndCellPending once the record is appended.
__attribute__((always_inline)) inline uint64_t SetCell(ThreadState* ts, uintptr_t address,
                                                       size_t size, uint64_t stack, Api api) {
  // From here to the record's append the block is live in the cells but not
  // in the trace: a leak scan that stops this thread in between leaves it
  // out (thread_state.h, cell_pending), as table mode's scan never sees a
  // block whose record is not appended yet.
  ts->cell_pending.store(address, std::memory_order_relaxed);
  uint64_t order = format::kAddressOrderNone;
  LiveCells::Result r =
      g_live_cells.Set(address, kApiFamilies.of[static_cast<uint8_t>(api)], ts->cell_owner, &order,
                       size);
  if (__builtin_expect(r != LiveCells::Result::kDone, 0)) {
    g_live_blocks.Insert(address, format::MakeAllocId(ts->index, ts->counter), size, stack, api,
                         false);
  }
  return order;
}
__attribute__((always_inline)) inline void EndCellPending(ThreadState* ts) {
  ts->cell_pending.store(0, std::memory_order_release);
}

// SetCell and the allocation's kAlloc. Caller holds ts->lock.
__attribute__((always_inline)) inline void SetCellAndAppendAlloc(ThreadState* ts, uint64_t now,
                                                                 void* p, size_t size,
                                                                 size_t alignment, Api api,
                                                                 uint64_t stack) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  uint64_t order = SetCell(ts, address, size, stack, api);
  AppendRecord(ts, now, &ChunkEncoder::PutAllocAddress, now, api, size, stack, alignment, address,
               order);
  EndCellPending(ts);
  ++ts->counter;
}

// RecordAlloc once the allocation is known to be recorded (sampled, or
// failed: failures are always recorded). Always inlined, like GetStack: no
// frame of its own for the unwinder to step through.
__attribute__((always_inline)) inline void RecordSampledAlloc(void* p, size_t size,
                                                              size_t alignment, Api api) {
  ReentryGuard guard;
  uint64_t now = NowUs();
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) {
    if (p != nullptr) InsertInternal(p);
    return;
  }
  if (__builtin_expect(t_modules_dirty, 0)) RescanModulesAndRecord(ts);
  StackRef s = GetStack(ts);
  SpinLockHolder hold(&ts->lock);
  EmitNodes(ts, s, now);
  if (p != nullptr && g_address_frees) {
    // Marked live before the block is returned to the program, so no other
    // thread can free it before its cell says so.
    SetCellAndAppendAlloc(ts, now, p, size, alignment, api, s.leaf);
  } else if (p != nullptr) {
    uint64_t id = format::MakeAllocId(ts->index, ts->counter);
    AppendRecord(ts, now, &ChunkEncoder::PutAlloc, now, api, size, s.leaf, alignment,
                 AddressField(p));
    ++ts->counter;
    // Inserted before the block is returned to the program, so no other
    // thread can free it before it is in the table.
    g_live_blocks.Insert(reinterpret_cast<uintptr_t>(p), id, size, s.leaf, api, false);
  } else {
    AppendRecord(ts, now, &ChunkEncoder::PutAllocFailed, now, api, size, s.leaf, alignment);
  }
  EndEventInline(ts, now);
}

}  // namespace

namespace {

__attribute__((always_inline)) inline void RecordAllocUnnested(void* p, size_t size,
                                                              size_t alignment, Api api,
                                                              bool counted) {
  // Called after the real function: the errno it left is what the program
  // gets back (unwinding, flushing and /proc reads may change errno).
  ErrnoKeeper keep_errno;
  if (counted) {
    RecordSampledAlloc(p, size, alignment, api);
    return;
  }
  int status = TracingStatusRelaxed();
  if (status == kDisabled || status == kPaused) return;
  if (status != kActive || InHeapsight()) {
    // Allocated by libc inside one of our own calls, or before tracing
    // started: remember it so its free is neither recorded nor "bad".
    if (p != nullptr) InsertInternal(p);
    return;
  }
  // After the exit point another thread's allocation is not recorded (nor
  // entered in the table: its free passes straight through).
  if (AfterExitPoint()) return;
  // HEAPSIGHT_SAMPLE_BYTES: an allocation between two sampling points is
  // not recorded at all (and not entered in the live table, so its free
  // passes straight through).
  if (p != nullptr && !ShouldSample(size)) return;
  RecordSampledAlloc(p, size, alignment, api);
}

}  // namespace

// Nested hooks (nested_hooks.h): the three entry points below (allocation,
// free, realloc) test the table-op marker first, before any table
// operation, and drain the nested queue last, once the hook holds nothing.
__attribute__((noinline)) void RecordAllocSlow(void* p, size_t size, size_t alignment, Api api,
                                               bool counted) {
  if (InDeferZone()) {  // a signal handler's allocation nested in the defer zone
    DeferNestedAlloc(p, size, alignment, api);
    return;
  }
  RecordAllocUnnested(p, size, alignment, api, counted);
  DrainNestedHooks();
}

void RecordAlloc(void* p, size_t size, size_t alignment, Api api) {
  RecordAllocInline(p, size, alignment, api);
}

bool RecordNestedAlloc(void* p, size_t size, size_t alignment, Api api) {
  // The drain runs outside the zone and the guard (DrainNestedHooksSlow):
  // the same decisions as RecordAllocUnnested, with no stack to unwind.
  ErrnoKeeper keep_errno;
  int status = TracingStatusRelaxed();
  if (status == kDisabled || status == kPaused) return false;
  if (status != kActive || InHeapsight()) {
    InsertInternal(p);
    return false;
  }
  if (AfterExitPoint() || !ShouldSample(size)) return false;
  ReentryGuard guard;
  uint64_t now = NowUs();
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) {
    InsertInternal(p);
    return false;
  }
  if (__builtin_expect(t_modules_dirty, 0)) RescanModulesAndRecord(ts);
  SpinLockHolder hold(&ts->lock);
  if (g_address_frees) {
    SetCellAndAppendAlloc(ts, now, p, size, alignment, api, 0);
  } else {
    uint64_t id = format::MakeAllocId(ts->index, ts->counter);
    AppendRecord(ts, now, &ChunkEncoder::PutAlloc, now, api, size, uint64_t{0}, alignment,
                 AddressField(p));
    ++ts->counter;
    g_live_blocks.Insert(reinterpret_cast<uintptr_t>(p), id, size, 0, api, false);
  }
  EndEventInline(ts, now);
  return true;
}

namespace {

// Address frees: a program block's cell cleared with no record (a free
// heapsight does not record: its own call, or tracing not active), as the
// table's entry would be removed. As kManyOwners, so the address's next
// event is a hand-off whose count shows the reader the free it missed.
// Returns the cell it found (for Restore).
LiveCells::Cell ClearSilently(uintptr_t address) {
  uint64_t order;
  format::ApiFamily family;
  bool double_free;
  LiveCells::Cell before;
  g_live_cells.Clear(address, LiveCells::kManyOwners, &order, &family, &double_free, &before);
  return before;
}

// The same for any block: an internal one leaves the side table.
void ForgetBlock(uintptr_t address) {
  LiveEntry e;
  if (!g_live_blocks.Remove(address, &e) && !TakeBackNestedAlloc(address)) {
    ClearSilently(address);
  }
}

// Table mode, a free the hook does not record (tracing not active, or under
// the reentry guard) of a block that is not internal. Out of line: the
// free path's shape stays as before nested hooks.
__attribute__((noinline, cold)) void UnrecordedFree(void* p, bool found, const LiveEntry& e,
                                                    Api api, int status) {
  if (found) {
    // A traced block freed under the guard: a signal handler's free (the
    // preload's own code frees no block of the program). Its record waits
    // for the drain (nested_hooks.h).
    if (status == kActive) DeferFreeRecord(e, api);
  } else {
    // A nested hook's block not drained yet is taken back (nested_hooks.h).
    TakeBackNestedAlloc(reinterpret_cast<uintptr_t>(p));
  }
}

// TracedFreeSlow with address frees (g_address_frees), once `p` is neither
// NULL nor a bootstrap block and tracing is not off (disabled, paused).
__attribute__((always_inline)) inline void TracedFreeAddress(void* p, Api api, int status) {
  if (status != kActive || InHeapsight()) {
    ForgetBlock(reinterpret_cast<uintptr_t>(p));
    CallRealFree(g_real.free, p);
    return;
  }
  const auto address = reinterpret_cast<uintptr_t>(p);
  format::FreeAction action = format::FreeAction::kPassed;
  {
    ErrnoKeeper keep_errno;  // the real free below leaves errno as it decides
    ReentryGuard guard;
    uint64_t now = NowUs();
    ThreadState* ts = CurrentThreadState(now);
    // Record-before-free: the cell is cleared (and the free recorded)
    // BEFORE the real free. Once the real free runs, another thread's malloc
    // may get the same address and set its cell; that Set must find this
    // Clear done, so the two events' order values say which came first.
    uint64_t order;
    format::ApiFamily family;
    bool double_free;
    LiveCells::Result r =
        g_live_cells.Clear(address, ts != nullptr ? ts->cell_owner : LiveCells::kManyOwners,
                           &order, &family, &double_free);
    if (__builtin_expect(r == LiveCells::Result::kDone, 1)) {
      if (ts != nullptr) {
        if (__builtin_expect(t_modules_dirty, 0)) RescanModulesAndRecord(ts);
        if (__builtin_expect(IsMismatchedFamily(family, api), 0)) {
          RecordMismatch(ts, p, api, 0, now);
        }
        SpinLockHolder hold(&ts->lock);
        AppendRecord(ts, now, &ChunkEncoder::PutFreeAddress, now, api, address, order);
        EndEventInline(ts, now);
      }
    } else {
      // Not a live cell: heapsight's own block, a block without a cell, or
      // a bad free (and after the exit point, maybe another thread's
      // untraced block: passed on, as in table mode).
      LiveEntry e;
      bool found = g_live_blocks.Remove(address, &e);
      if ((found && e.internal) || (!found && TakeBackNestedAlloc(address))) {
        // heapsight's block (or a nested hook's, not drained yet): not the
        // program's event.
      } else if (found) {
        if (ts != nullptr) {
          if (__builtin_expect(t_modules_dirty, 0)) RescanModulesAndRecord(ts);
          if (__builtin_expect(IsMismatched(e.api, api), 0)) RecordMismatch(ts, p, api, 0, now);
          SpinLockHolder hold(&ts->lock);
          AppendRecord(ts, now, &ChunkEncoder::PutFreeAddress, now, api, address,
                       format::kAddressOrderNone);
          EndEventInline(ts, now);
        }
      } else if (!g_exiting.load(std::memory_order_relaxed) && ts != nullptr) {
        if (__builtin_expect(t_modules_dirty, 0)) RescanModulesAndRecord(ts);
        action = RecordBadFreeAddress(p, api, now, double_free);
      }
    }
  }
  if (action == format::FreeAction::kSkipped) return;  // reported, not performed
  CallRealFree(g_real.free, p);
}

__attribute__((always_inline)) inline void TracedFreeUnnested(void* p, Api api) {
  if (p == nullptr) return;  // free(NULL) does nothing; nothing to record
  // First, so the cell's line is on its way while the hook does the rest.
  if (g_address_frees) g_live_cells.Prefetch(reinterpret_cast<uintptr_t>(p));
  if (InBootstrapArena(p)) return;  // dlsym's early calloc: never freed for real
  int status = TracingStatusRelaxed();
  if (status == kDisabled || status == kPaused) {
    CallRealFree(g_real.free, p);
    return;
  }
  if (g_address_frees) {
    TracedFreeAddress(p, api, status);
    return;
  }
  // Record-before-free: the entry is removed (and the free recorded) BEFORE
  // the real free. Once the real free runs, another thread's malloc may get
  // the same address and insert it; had we not removed ours yet, we would
  // remove theirs and pair this free with the wrong allocation.
  LiveEntry e;
  bool found = g_live_blocks.Remove(reinterpret_cast<uintptr_t>(p), &e);
  if (status != kActive || InHeapsight() || (found && e.internal)) {
    if (!(found && e.internal)) UnrecordedFree(p, found, e, api, status);
    CallRealFree(g_real.free, p);
    return;
  }
  if (!found && (TakeBackNestedAlloc(reinterpret_cast<uintptr_t>(p)) || g_sample_period != 0 ||
                 g_exiting.load(std::memory_order_relaxed) ||
                 g_partial_window.load(std::memory_order_relaxed))) {
    // (First: a nested hook's block, not drained yet, nested_hooks.h: in
    // no table, heapsight's own.)
    // Sampling: an unknown block was most likely just not sampled. Bad
    // frees cannot be told from those, so none is reported. Likewise after
    // the exit point: the block may be another thread's untraced one; and
    // in an attached window (issue 19): the block was allocated before the
    // attach, unknown, neither an error nor an event.
    CallRealFree(g_real.free, p);
    return;
  }
  format::FreeAction action = format::FreeAction::kPassed;
  {
    ErrnoKeeper keep_errno;  // the real free below leaves errno as it decides
    ReentryGuard guard;
    uint64_t now = NowUs();
    if (ThreadState* ts = CurrentThreadState(now); ts != nullptr) {
      if (__builtin_expect(t_modules_dirty, 0)) RescanModulesAndRecord(ts);
      if (!found) {
        action = RecordBadFree(p, api, now);
      } else {
        if (__builtin_expect(IsMismatched(e.api, api), 0)) RecordMismatch(ts, p, api, e.id, now);
        SpinLockHolder hold(&ts->lock);
        AppendFree(ts, now, api, e);
        EndEventInline(ts, now);
      }
    }
  }
  if (action == format::FreeAction::kSkipped) return;  // reported, not performed
  CallRealFree(g_real.free, p);
}

}  // namespace

__attribute__((noinline)) void TracedFreeSlow(void* p, Api api) {
  if (InDeferZone()) {  // a signal handler's free nested in the defer zone
    DeferNestedFree(p, api);
    return;
  }
  TracedFreeUnnested(p, api);
  DrainNestedHooks();
}

void TracedFree(void* p, Api api) { TracedFreeInline(p, api); }

void EnableSampledFastPaths() {
  const std::atomic<uint8_t>* filter = g_live_blocks.Filter();
  if (g_sample_period == 0 || filter == nullptr) return;
  // Our constructor reads the limit only after it started the trace; the
  // fast paths must know now whether there is one.
  ReadHeapLimitOnce();
  if (g_heap_limit_bytes != 0) return;
  // The free fast path has no bootstrap-arena test: the filter never
  // clears a block of the arena (dlsym's early calloc, never the
  // allocator's; usually none at all).
  auto arena = reinterpret_cast<uintptr_t>(g_bootstrap);
  g_live_blocks.StickFilterRange(arena, arena + BootstrapBytesUsed());
  // Before any countdown (sampler.h): the allocation fast paths' counter.
  UseFastCountdown();
  // Release: a hook that sees the pointer sees the filter's counts.
  g_fast_filter.store(filter, std::memory_order_release);
}

__attribute__((noinline, cold)) void* FastAllocFailed(size_t size, size_t alignment, Api api) {
  t_sample_bytes_left += static_cast<int64_t>(size);
  RecordAlloc(nullptr, size, alignment, api);  // keeps errno (RecordAllocSlow)
  return nullptr;
}

__attribute__((noinline, cold)) void* FastReallocFailed(size_t size, Api api) {
  RecordAlloc(nullptr, size, 0, api);  // keeps errno
  return nullptr;
}

namespace {

// TracedRealloc with address frees, once `p` is not NULL and tracing is not
// off (disabled, paused). The same decisions as the table's path below, in
// the same order, with the cells in the table's place.
void* TracedReallocAddress(void* p, size_t size, Api api, void* (*call)(void*, void*), void* ctx,
                           int status) {
  const auto address = reinterpret_cast<uintptr_t>(p);
  if (status != kActive || InHeapsight()) {
    // Not recorded (ForgetBlock); the new block is internal.
    LiveEntry internal;
    bool found = g_live_blocks.Remove(address, &internal);
    LiveCells::Cell before = 0;
    if (!found && !TakeBackNestedAlloc(address)) before = ClearSilently(address);
    void* q = call(p, ctx);
    if (q != nullptr) {
      InsertInternal(q);
    } else if (size != 0) {
      // Failed: the old block is untouched and as live as it was.
      if (found) {
        g_live_blocks.Insert(address, internal);
      } else if ((before & LiveCells::kCountOne) != 0) {
        g_live_cells.Restore(address, before);
      }
    }
    return q;
  }
  uint64_t free_time = NowUs();
  ThreadState* ts;
  {
    ReentryGuard guard;
    ts = CurrentThreadState(free_time);
  }
  // Cleared before the real call, for the same reason as in TracedFree: if
  // the block moves, its old address may be handed out to another thread as
  // soon as realloc frees it. Clear hands back the cell it found: a failed
  // realloc puts it back.
  LiveCells::Cell before = 0;
  uint64_t old_order = format::kAddressOrderNone;
  format::ApiFamily family = format::ApiFamily::kNone;
  bool double_free = false;
  const bool found =
      g_live_cells.Clear(address, ts != nullptr ? ts->cell_owner : LiveCells::kManyOwners,
                         &old_order, &family, &double_free, &before) == LiveCells::Result::kDone;
  LiveEntry old;
  bool in_table = false;  // a block without a cell, in the live table
  if (!found) {
    in_table = g_live_blocks.Remove(address, &old);
    if ((in_table && old.internal) || (!in_table && TakeBackNestedAlloc(address))) {
      // heapsight's block, or a nested hook's not drained yet.
      void* q = call(p, ctx);
      if (q != nullptr) {
        RecordAlloc(q, size, 0, api);  // an internal block became the program's
      } else if (size != 0) {
        old.internal = true;  // (a taken-back nested block stays heapsight's)
        g_live_blocks.Insert(address, old);
      }
      return q;
    }
    if (!in_table && g_exiting.load(std::memory_order_relaxed)) {
      // After the exit point: an unknown block may be another thread's
      // untraced one; the new side is an allocation (RecordAlloc decides).
      void* q = call(p, ctx);
      if (q != nullptr) RecordAlloc(q, size, 0, api);
      return q;
    }
  }
  // Another thread after the exit point: only the old side (a free) is
  // recorded.
  const bool record_new = !AfterExitPoint();
  if (!found && !in_table) {
    // realloc of a pointer we never handed out: recorded (and flushed)
    // before the real call, which usually aborts the process.
    ReentryGuard guard;
    // Skipped (the default): like memcheck, realloc of a pointer that is
    // not a live block fails and leaves everything as it was.
    if (RecordBadFreeAddress(p, api, free_time, double_free) == format::FreeAction::kSkipped) {
      return nullptr;
    }
  } else if (__builtin_expect(found ? IsMismatchedFamily(family, api) : IsMismatched(old.api, api),
                              0)) {
    ReentryGuard guard;
    if (ts != nullptr) RecordMismatch(ts, p, api, 0, free_time);
  }
  void* q = call(p, ctx);
  uint64_t alloc_time = NowUs();
  if (q == nullptr && size != 0) {
    // Failed: the old block is untouched and still live, as Clear found it
    // (no event: the trace never saw this Clear).
    if (found) g_live_cells.Restore(address, before);
    if (in_table) g_live_blocks.Insert(address, old);
    if (!AfterExitPoint()) RecordSampledAlloc(nullptr, size, 0, api);
    return q;
  }
  ReentryGuard guard;
  if (ts == nullptr) return q;
  if (__builtin_expect(t_modules_dirty, 0)) RescanModulesAndRecord(ts);
  StackRef s;
  if (q != nullptr && record_new) s = GetStack(ts);
  SpinLockHolder hold(&ts->lock);
  EmitNodes(ts, s, alloc_time);
  if (q == nullptr || !record_new) {
    // realloc(p, 0) freed the block and returned NULL (glibc): a free. So
    // is a move to a new block another thread made after the exit point.
    if (found || in_table) {
      AppendRecord(ts, free_time, &ChunkEncoder::PutFreeAddress, free_time, api, address,
                   old_order);
    }
  } else if (found || in_table) {
    const auto new_address = reinterpret_cast<uintptr_t>(q);
    uint64_t order = SetCell(ts, new_address, size, s.leaf, api);
    AppendRecord(ts, free_time, &ChunkEncoder::PutReallocAddress, free_time, alloc_time, api,
                 address, old_order, size, s.leaf, new_address, order);
    EndCellPending(ts);
    ++ts->counter;
  } else {
    // A bad realloc the policy passed on: its new block is an allocation.
    SetCellAndAppendAlloc(ts, alloc_time, q, size, 0, api, s.leaf);
  }
  EndEventInline(ts, alloc_time);
  return q;
}

}  // namespace

namespace {

__attribute__((always_inline)) inline void* TracedReallocUnnested(void* p, size_t size, Api api,
                                                                  void* (*call)(void*, void*),
                                                                  void* ctx) {
  if (p == nullptr) {  // realloc(NULL, n) is malloc(n)
    void* q = call(nullptr, ctx);
    RecordAlloc(q, size, 0, api);
    return q;
  }
  int status = TracingStatusRelaxed();
  if (status == kDisabled || status == kPaused) return call(p, ctx);
  if (g_address_frees) return TracedReallocAddress(p, size, api, call, ctx, status);
  LiveEntry old;
  // Remove before the real call, for the same reason as in TracedFree: if
  // the block moves, its old address may be handed out to another thread
  // as soon as realloc frees it.
  bool found = g_live_blocks.Remove(reinterpret_cast<uintptr_t>(p), &old);
  // A nested hook's block not drained yet (nested_hooks.h) is heapsight's.
  const bool queued = !found && TakeBackNestedAlloc(reinterpret_cast<uintptr_t>(p));
  if (status != kActive || InHeapsight() || (found && old.internal) || queued) {
    void* q = call(p, ctx);
    // A signal handler's realloc of a traced block under the guard: the
    // old block's free is recorded at the drain, the new block is
    // heapsight's (as before).
    if (found && !old.internal && status == kActive && (q != nullptr || size == 0)) {
      DeferFreeRecord(old, api);
    }
    if (q != nullptr) {
      if (status == kActive && !InHeapsight()) {
        RecordAlloc(q, size, 0, api);  // an internal block became the program's
      } else {
        InsertInternal(q);
      }
    } else if (size != 0 && (found || queued)) {
      if (queued) old.internal = true;
      g_live_blocks.Insert(reinterpret_cast<uintptr_t>(p), old);
    }
    return q;
  }
  if (!found && (g_exiting.load(std::memory_order_relaxed) ||
                 g_partial_window.load(std::memory_order_relaxed))) {
    // After the exit point: an unknown block may be another thread's
    // untraced one; the new side is an allocation (RecordAlloc decides).
    // In an attached window: a block from before the attach, likewise.
    void* q = call(p, ctx);
    if (q != nullptr) RecordAlloc(q, size, 0, api);
    return q;
  }
  // Sampling: the new block is sampled on its own (its size counts down the
  // thread's interval, as an allocation would). An old block the table does
  // not know was not sampled, so only the new side can be recorded.
  // Another thread after the exit point: only the old side (a free) is.
  bool sample_new = true;
  if (AfterExitPoint()) {
    sample_new = false;
  } else if (g_sample_period != 0) {
    sample_new = ShouldSample(size);
    if (!found) {
      void* q = call(p, ctx);
      if (q != nullptr ? sample_new : size != 0) RecordSampledAlloc(q, size, 0, api);
      return q;
    }
  }
  uint64_t free_time = NowUs();
  if (!found) {
    // realloc of a pointer we never handed out: recorded (and flushed)
    // before the real call, which usually aborts the process.
    ReentryGuard guard;
    // Skipped (the default): like memcheck, realloc of a pointer that is
    // not a live block fails and leaves everything as it was.
    if (RecordBadFree(p, api, free_time) == format::FreeAction::kSkipped) return nullptr;
  } else if (__builtin_expect(IsMismatched(old.api, api), 0)) {
    ReentryGuard guard;
    if (ThreadState* ts = CurrentThreadState(free_time); ts != nullptr) {
      RecordMismatch(ts, p, api, old.id, free_time);
    }
  }
  void* q = call(p, ctx);
  uint64_t alloc_time = NowUs();
  if (q == nullptr && size != 0) {
    // Failed: the old block is untouched and still live under its old id.
    if (found) g_live_blocks.Insert(reinterpret_cast<uintptr_t>(p), old);
    if (!AfterExitPoint()) RecordSampledAlloc(nullptr, size, 0, api);
    return q;
  }
  ReentryGuard guard;
  ThreadState* ts = CurrentThreadState(alloc_time);
  if (ts == nullptr) return q;
  if (__builtin_expect(t_modules_dirty, 0)) RescanModulesAndRecord(ts);
  StackRef s;
  if (q != nullptr && sample_new) s = GetStack(ts);
  SpinLockHolder hold(&ts->lock);
  EmitNodes(ts, s, alloc_time);
  if (q == nullptr || !sample_new) {
    // realloc(p, 0) freed the block and returned NULL (glibc): a free. So
    // is a move to a new block that sampling left out.
    if (found) AppendFree(ts, free_time, api, old);
  } else {
    uint64_t id = format::MakeAllocId(ts->index, ts->counter);
    if (found && g_compact_frees) {
      AppendRecord(ts, free_time, &ChunkEncoder::PutReallocCompact, free_time, alloc_time, api,
                   old.stack, old.size, size, s.leaf, AddressField(q));
    } else if (found) {
      AppendRecord(ts, free_time, &ChunkEncoder::PutRealloc, free_time, alloc_time, api, old.id,
                   ts->index, ts->counter, size, s.leaf, AddressField(q));
    } else {
      AppendRecord(ts, alloc_time, &ChunkEncoder::PutAlloc, alloc_time, api, size, s.leaf, 0,
                   AddressField(q));
    }
    ++ts->counter;
    g_live_blocks.Insert(reinterpret_cast<uintptr_t>(q), id, size, s.leaf, api, false);
  }
  EndEventInline(ts, alloc_time);
  return q;
}

}  // namespace

void* TracedRealloc(void* p, size_t size, Api api, void* (*call)(void*, void*), void* ctx) {
  if (InDeferZone()) {  // a signal handler's realloc nested in the defer zone
    return NestedRealloc(p, size, api, call, ctx);
  }
  void* q = TracedReallocUnnested(p, size, api, call, ctx);
  DrainNestedHooks();
  return q;
}

// Out of line and cold: the hooks test t_modules_dirty inline, and an
// inlined copy had them build the ModuleSink in every event's prologue.
__attribute__((noinline, cold)) void RescanModulesAndRecord(ThreadState* ts) {
  // Inside dlopen, the hook the loader called sits far below the dlopen
  // hook's frame; once dlopen has returned, the program's next hook frame
  // is at or above it.
  if (OutermostOwnFrame() >= t_dl_frame) t_modules_dirty = false;
  if (ModulesChanged()) RescanModules(ModuleRecords(ts));
}

void MarkModulesDirty(uintptr_t hook_frame) {
  InvalidateUnwindCaches();  // code may come or go at any address
  t_dl_frame = hook_frame;
  t_modules_dirty = true;
  g_modules_dirty.store(true, std::memory_order_relaxed);
}

void EnableWriteThrough() { g_write_through.store(true); }

void BeginExit() {
  if (g_exiting.load()) return;
  // Marked before it is published, so this thread never sees itself as
  // "another thread after the exit point".
  t_exit_thread = true;
  if (g_exiting.exchange(true)) t_exit_thread = false;  // another thread won
}

void ResetExitPointInChild() {
  g_exiting.store(false);
  t_exit_thread = false;
}

void FallBackToFramePointers() { g_unwind = UnwindMode::kFramePointer; }

void ConfigureRecorder(const Options& options, uint32_t page_size) {
  g_unwind = ParseUnwindMode(options.UNWIND);
  g_max_depth = static_cast<size_t>(options.MAX_DEPTH);
  g_verify_unwind = options.VERIFY_UNWIND;
  g_record_addresses = options.RECORD_ADDRESSES;
  g_compact_frees = options.COMPACT_FREES;
  // Address frees only for exact traces: sampling leaves most blocks out of
  // the cells (their frees could not be told from bad ones), compact frees
  // are the other answer to the same question, and a paused start's windows
  // begin with live blocks the cells never saw. The lifecycle says so on
  // stderr when it is asked for and not used.
  g_address_frees = std::strcmp(options.PAIRING, "address") == 0 && options.SAMPLE_BYTES == 0 &&
                    !options.COMPACT_FREES && std::strcmp(options.START, "paused") != 0;
  g_page_size = page_size;
  g_rss_interval_us = static_cast<uint64_t>(options.RSS_INTERVAL_MS) * 1000;
  g_bad_free_action = std::strcmp(options.ON_BAD_FREE, "abort") == 0 ? format::FreeAction::kAborted
                      : std::strcmp(options.ON_BAD_FREE, "pass") == 0
                          ? format::FreeAction::kPassed
                          : format::FreeAction::kSkipped;
}

void ScheduleFirstRssSample() { g_next_rss_us.store(g_rss_interval_us); }

void ResetRssSamplesInChild() { g_next_rss_us.store(0); }

__attribute__((noinline, cold)) void RecordRss(ThreadState* ts, uint64_t now) {
  AppendRecord(ts, now, &ChunkEncoder::PutRss, now, ReadRss());
}

// Ends an event: maybe an RSS sample, and in write-through mode (after our
// exit handler) the chunk goes out at once. Caller holds ts->lock.
void EndEvent(ThreadState* ts, uint64_t now) { EndEventInline(ts, now); }

namespace {

__attribute__((noinline)) void EndEventSlow(ThreadState* ts, uint64_t now) {
  if (g_rss_interval_us != 0) {
    uint64_t next = g_next_rss_us.load(std::memory_order_relaxed);
    if (now >= next && g_next_rss_us.compare_exchange_strong(next, now + g_rss_interval_us,
                                                               std::memory_order_relaxed)) {
      RecordRss(ts, now);  // out of line: the event path stays short
      // Keep the TSC-to-time conversion anchored (clock.h); one thread at a
      // time gets here, having won the CAS above.
      RecalibrateClock();
    }
  }
  if (g_write_through.load(std::memory_order_relaxed)) FlushLocked(ts, now);
}

}  // namespace

ModuleSink ModuleRecords(ThreadState* ts) {
  return ModuleSink{EmitModuleLoaded, EmitModuleUnloaded, ts};
}

void RecordPendingModuleChanges(ThreadState* ts) {
  if (g_modules_dirty.load(std::memory_order_relaxed) && ModulesChanged()) {
    RescanModules(ModuleRecords(ts));
  }
}

}  // namespace heapsight::preload
