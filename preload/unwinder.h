// preload/unwinder.h: captures the current call stack as return addresses.
//
// Two unwinders: libunwind (default; DWARF-based, works without frame
// pointers: a cursor stepped with unw_step for a thread's first
// kSteppedUnwinds stacks, unw_backtrace after) and an opt-in frame-pointer walk
// (HEAPSIGHT_UNWIND=fp) that checks every frame pointer against the
// thread's stack bounds before reading it, so it can never fault. Leading
// frames inside libheapsight.so itself are dropped. Return addresses are
// stored as given (the analyzer subtracts 1 to land inside the call).
//
// Constraints: no malloc (libunwind's local unwinding uses its own mmap'ed
// pools); no locks of ours (libunwind may take the loader lock through
// dl_iterate_phdr). Must be called with the reentry guard set.
#ifndef HEAPSIGHT_PRELOAD_UNWINDER_H_
#define HEAPSIGHT_PRELOAD_UNWINDER_H_

#include <cstddef>
#include <cstdint>

#include "format/trace_format.h"
#include "preload/fork_gate.h"
#include "preload/options.h"

// unw_backtrace, for the inline CaptureStack. UNW_LOCAL_ONLY selects the
// local-unwinding entry points (the _UL* symbols).
#ifndef UNW_LOCAL_ONLY
#define UNW_LOCAL_ONLY
#endif
#include <libunwind.h>

namespace heapsight::preload {

// Address range of our own code, set once at init from the module map.
void SetSelfRange(uintptr_t begin, uintptr_t end);

// Frame address of the outermost libheapsight.so frame of the current call
// chain, i.e. the frame of the hook the program called (walks our own frame
// pointers only: every function of ours keeps one, but for the hooks'
// sampled fast paths, above which no code of ours ever runs: recorder.h).
uintptr_t OutermostOwnFrame();

// Sets the calling thread's stack bounds (t_stack_low/high) for the
// frame-pointer unwinder and the unwind cache: once per thread (later
// calls return at once, even if the first failed), from
// /proc/self/maps (the mapping holding the thread's descriptor, or
// [stack] for the main thread).
void InitThreadStackBounds();

// The main thread's stack grows down as it deepens: if `sp` lies below
// t_stack_low in the same stack mapping (one that ends at t_stack_high),
// lowers t_stack_low and returns true. A /proc/self/maps read; at most 16
// per thread, none on other threads.
bool GrowThreadStackBounds(uintptr_t sp);

// Room CaptureStack needs beyond max_depth (for our own frames, dropped; one
// more frame, which tells a cut stack; the cut marker).
inline constexpr size_t kCaptureSlack = 10;

// Internals of CaptureStack, which is inline (below).
extern uintptr_t g_self_begin;  // our own code, [begin, end)
extern uintptr_t g_self_end;
// True if `ip` is in libheapsight.so's own code.
inline bool IsOwnCode(uintptr_t ip) { return ip >= g_self_begin && ip < g_self_end; }
// This thread's stack (0, 0 until InitThreadStackBounds).
extern constinit thread_local uintptr_t t_stack_low __attribute__((tls_model("initial-exec")));
extern constinit thread_local uintptr_t t_stack_high __attribute__((tls_model("initial-exec")));
// Walks the rbp chain from its caller's frame. Every frame pointer must lie
// in [current sp, stack top), be 8-aligned and grow strictly upwards, so
// each read is inside the live part of this thread's stack.
size_t FramePointerWalk(uintptr_t* ips, size_t max);

// Ends a stack cut after `kept` frames with the cut marker (frames not
// recorded: unknown) and returns the entries, marker included.
inline size_t CutAt(uintptr_t* frames, size_t kept) {
  frames[kept] = static_cast<uintptr_t>(format::kStackCutMarker);
  return kept + 1;
}

// A thread's first kSteppedUnwinds libunwind unwinds step a cursor
// (SteppedBacktrace) instead of calling unw_backtrace. unw_backtrace keeps a
// trace cache per thread, which it maps (256 KiB) and fills (all 16,384
// entries: its empty value is not zero) at the thread's first call: 64 page
// faults and 256 KiB resident in every thread that ever unwinds, though the
// unwind cache leaves libunwind only a thread's first few events (its
// warm-up) and the stacks it refuses. A thread that keeps coming back
// (signal frames, code without CFI, stacks off its own) is worth the trace
// cache, whose hits step a frame in a few nanoseconds where unw_step takes
// tens: after kSteppedUnwinds it switches to unw_backtrace. Both give the
// same frames (tests/scenarios/unwind_cache_test: every stack checked by
// name with the cache off, and one stack node across the switch).
inline constexpr uint32_t kSteppedUnwinds = 64;
extern constinit thread_local uint32_t t_stepped_unwinds __attribute__((tls_model("initial-exec")));
// unw_backtrace's frames by unw_step: the return address into its caller
// first (its own frame is not reported, as unw_backtrace's is not), at most
// `want`. Out of line, like unw_backtrace, so both start one frame out of
// the function that called them. Call inside the fork gate.
size_t SteppedBacktrace(uintptr_t* buf, size_t want);

// Unwinds into `buf` (max_depth + kCaptureSlack entries) and points *frames
// at the program's frames (innermost first) inside it; returns how many (at
// most max_depth, plus one: when the stack had more than max_depth frames,
// the last entry is a cut marker (format::IsStackCutMarker), not a frame).
//
// Always inlined into the recorder's hook bodies: every frame of ours
// between the program and unw_backtrace costs a libunwind step (about 5 ns
// each, bench/alloc_bench) and is then dropped, so the hook's unwinding
// starts from the recorder function the hook called, not from two helper
// frames below it.
__attribute__((always_inline)) inline size_t CaptureStack(UnwindMode mode, uintptr_t* buf,
                                                          size_t max_depth,
                                                          const uintptr_t** frames) {
  // Room for max_depth frames, our own ones, and one more, which tells a
  // cut stack from one of exactly max_depth frames; the marker goes in the
  // slot after the kept frames.
  size_t want = max_depth + kCaptureSlack - 1;
  size_t n;
  auto sp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  if (mode == UnwindMode::kFramePointer && sp >= t_stack_low && sp < t_stack_high) {
    // Only on the stack whose bounds we know: on another one (a signal
    // stack, a coroutine) the walk could leave mapped memory, so libunwind
    // takes over for that event.
    n = FramePointerWalk(buf, want);
  } else {
    // Inside the fork gate: libunwind's cache lock and the loader's lock
    // (dl_iterate_phdr) must not be held by us at a fork (fork_gate.h).
    EnterForkGate();
    if (t_stepped_unwinds < kSteppedUnwinds) {
      ++t_stepped_unwinds;
      n = SteppedBacktrace(buf, want);
    } else {
      int got = unw_backtrace(reinterpret_cast<void**>(buf), static_cast<int>(want));
      n = got > 0 ? static_cast<size_t>(got) : 0;
    }
    LeaveForkGate();
  }
  // A full buffer: the unwinder stopped for want of room, not at the end.
  const bool full = n == want;
  // Drop our own leading frames (the hook and what it called). (The two
  // range tests here are IsOwnCode's, spelled out: written with it, this
  // function measured 4 ns per event slower on alloc_bench.)
  size_t skip = 0;
  while (skip < n && buf[skip] >= g_self_begin && buf[skip] < g_self_end) ++skip;
  *frames = buf + skip;
  n -= skip;
  // And end the stack at the next frame of ours: the main() wrapper
  // (process_hooks.cc), below which lie only libc's start-up frames.
  for (size_t i = 0; i < n; ++i) {
    if ((*frames)[i] >= g_self_begin && (*frames)[i] < g_self_end) {
      return i <= max_depth ? i : CutAt(buf + skip, max_depth);
    }
  }
  // No wrapper frame seen: the stack is cut if frames remain beyond
  // max_depth, or if the unwinder ran out of room (then whatever it did not
  // reach lies beyond, even when our own leading frames took more than the
  // slack).
  if (n > max_depth || full) return CutAt(buf + skip, n < max_depth ? n : max_depth);
  return n;
}

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_UNWINDER_H_
