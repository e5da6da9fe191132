// preload/unwinder.h: captures the current call stack as return addresses.
//
// Two unwinders: libunwind's unw_backtrace (default; DWARF-based, works
// without frame pointers) and an opt-in frame-pointer walk
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

#include "preload/options.h"

namespace heapsight::preload {

// Address range of our own code, set once at init from the module map.
void SetSelfRange(uintptr_t begin, uintptr_t end);

// Frame address of the outermost libheapsight.so frame of the current call
// chain, i.e. the frame of the hook the program called (walks our own frame
// pointers only: every function of ours keeps one).
uintptr_t OutermostOwnFrame();

// Sets the calling thread's stack bounds for the frame-pointer unwinder
// (once per thread; reads /proc/self/maps, so only when that unwinder is on).
void InitThreadStackBounds();

// Room CaptureStack needs beyond max_depth (for our own frames, dropped).
inline constexpr size_t kCaptureSlack = 8;

// Unwinds into `buf` (max_depth + kCaptureSlack entries) and points *frames
// at the program's frames (innermost first) inside it; returns how many (at
// most max_depth).
size_t CaptureStack(UnwindMode mode, uintptr_t* buf, size_t max_depth, const uintptr_t** frames);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_UNWINDER_H_
