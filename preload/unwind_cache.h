// preload/unwind_cache.h: skips unwinding when the stack has not changed.
//
// Unwinding is most of the cost of an event (libunwind: about 5 ns a frame,
// ~100 ns for a 17-frame stack), and programs allocate from the same call
// chain, at the same stack depth, over and over: a loop calling a function
// that allocates. This cache remembers, for a call entering heapsight at a
// given point, which stack words the unwind depended on and what they held;
// when they still hold the same values, the unwind would give the same
// frames, so the cached stack is used without unwinding (about 1 ns a frame:
// one load and compare each).
//
// Why a hit is exact. An x86-64 unwind is a function of the entry registers
// and of the stack words it reads. Its inputs here:
//  - the entry point: the return address into the program (IP0), the
//    program's stack pointer at the call (SP0) and its rbp (BP0). These are
//    the key. Given IP0 and SP0, the CFA of a frame whose rule is rsp-based
//    (CFA = rsp + k, k fixed for the IP) is fixed;
//  - each caller's return address, at CFA - 8: every one is checked, plus
//    the terminating one (the frame of ours that ends every stack);
//  - rbp, for frames whose CFA is rbp-based (CFA = rbp + 16, the standard
//    frame-pointer rule): the slot rbp was restored from is checked, or BP0
//    when rbp still holds its entry value.
// Learn() records these by walking the stack once more with libunwind's
// cursor API (which reports every frame's registers and the slot each one
// was restored from) and refuses stacks it cannot vouch for: signal frames;
// frame-pointer frames with a realigned stack (CFA = a value loaded from the
// stack, not rbp + 16); return addresses not at CFA - 8; anything the
// cursor walk and unw_backtrace disagree on. Those keep being unwound.
//
// A stack is learnt only the second time its entry key misses (one-off
// stacks cost a probe, not a cursor walk), and the cache stands aside when
// learning costs more than hits save (many keys, few repeats).
//
// Reads are bounded: every checked address lies between SP0 and the
// highest address learnt, and an entry is used only when that whole range
// is inside the calling thread's own stack (t_stack_low/high, unwinder.h),
// so a check can never fault, whatever the stack holds now.
//
// Constraints: owned by one thread (never used through the shared orphan
// state); no malloc (PageAlloc'ed by the caller, zero-filled = empty). Find
// takes no locks and makes no syscalls (async-signal-safe); Learn calls
// libunwind (which may take the loader lock) and must run under the
// reentry guard.
#ifndef HEAPSIGHT_PRELOAD_UNWIND_CACHE_H_
#define HEAPSIGHT_PRELOAD_UNWIND_CACHE_H_

#include <cstddef>
#include <cstdint>

namespace heapsight::preload {

// Where the program called into heapsight.
struct UnwindKey {
  uintptr_t ip = 0;  // return address into the program (the first frame)
  uintptr_t sp = 0;  // the program's stack pointer at the call (our hook's CFA)
  uintptr_t bp = 0;  // the program's rbp at the call
};

// The key of the current call: reads the frame of the outermost
// libheapsight.so function on the call chain (our code keeps frame
// pointers). False if that frame is not found.
bool CurrentUnwindKey(UnwindKey* key);

class UnwindCache {
 public:
  static constexpr size_t kSets = 64;
  // Ways per set. A call site often has several live stacks at one entry
  // key (one helper called from a few places at the same depth; GCC's
  // identical-code folding makes that common); they share the set.
  static constexpr size_t kWays = 4;
  static constexpr size_t kMaxChecks = 80;  // return addresses + rbp slots
  static constexpr size_t kSeen = 256;      // keys that missed once
  static constexpr uint32_t kWindow = 4096;  // lookups per cost check
  // Lookups skipped after a poor window: doubling with each poor window in
  // a row, from kMinBypass up to kMaxBypass.
  static constexpr uint32_t kMinBypass = 16384;
  static constexpr uint32_t kMaxBypass = 1u << 22;
  // A learn (a cursor walk: 1-3 us) must be paid for by this many hits.
  static constexpr uint32_t kHitsPerLearn = 16;

  // False while the cache stands aside; then neither Find nor Learn is
  // called for this event.
  bool Active() {
    if (__builtin_expect(bypass_ == 0, 1)) return true;
    --bypass_;
    return false;
  }

  // The leaf node of the stack entered at `key`, or 0 (unknown, or some
  // checked word changed). `stack_low`/`stack_high`: the calling thread's
  // stack; 0 if unknown.
  uint64_t Find(const UnwindKey& key, uintptr_t stack_low, uintptr_t stack_high);

  // Totals since the cache was created (HEAPSIGHT_STATS).
  struct Stats {
    uint64_t lookups = 0;
    uint64_t hits = 0;
    uint64_t learnt = 0;  // stacks learnt (Learn calls that succeeded)
  };
  const Stats& stats() const { return stats_; }

  // In a fork child: the learnt stacks stay (the child's stack is the
  // parent's), the counters and the cost window start over, so the child
  // judges its own stacks and reports its own numbers.
  void ResetCountersInChild() {
    stats_ = Stats{};
    lookups_ = hits_ = learns_ = bypass_ = next_bypass_ = 0;
  }

  // After a miss: true if the key missed before (worth a Learn).
  bool ShouldLearn(const UnwindKey& key);

  // Walks the current stack with libunwind's cursor and, if it can vouch
  // for it, remembers that the stack entered at `key` is `frames[0..n)`
  // (as CaptureStack returned them, a cut marker last if the stack was cut)
  // with leaf node `leaf`. Not inlined: the walk starts in its own frame and skips
  // every frame of ours.
  __attribute__((noinline)) void Learn(const UnwindKey& key, const uintptr_t* frames, size_t n,
                                       uint64_t leaf);

 private:
  struct Entry {
    uintptr_t ip, sp, bp;
    uint64_t leaf;        // 0 = empty
    uint32_t stamp;       // lookups_total_ at the last hit or learn (LRU)
    uint32_t count;       // checks used
    uint32_t max_offset;  // highest checked offset
    uint16_t check_bp;    // 1: BP0 must match too
    uint16_t probe;       // the check tried first (see Learn)
    // Check i: the word at sp + offsets[i] must equal values[i].
    uint32_t offsets[kMaxChecks];
    uintptr_t values[kMaxChecks];
  };
  // Ends the window: a poor one starts a bypass.
  void EndWindow(bool poor);
  static size_t SetOf(const UnwindKey& key);
  static uint64_t Hash(const UnwindKey& key);

  Entry entries_[kSets * kWays];
  uint64_t seen_[kSeen];
  uint32_t clock_;    // lookups so far (wraps; only compared for age)
  uint32_t lookups_;  // in the current window
  uint32_t hits_;
  uint32_t learns_;
  uint32_t bypass_;       // lookups left to skip
  uint32_t next_bypass_;  // length of the next bypass (0: kMinBypass)
  Stats stats_;
};

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_UNWIND_CACHE_H_
