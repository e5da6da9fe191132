// preload/clock.h: monotonic time for event timestamps, and the clock
// policy that picks which clock the trace reads (NowUs, at the end).
//
// Every event carries a timestamp, so reading the clock is on the hook path.
// HEAPSIGHT_CLOCK=coarse uses CoarseMonotonicNs(), =precise uses
// FastMonotonicNs() (below), and auto (the default) the first while the
// process has one thread, the second from then on (OnThreadStateCreated).
// clock_gettime(CLOCK_MONOTONIC) through the vDSO costs 20-70 ns (more under
// virtualization); a raw rdtsc is cheaper. When the kernel itself trusts the
// TSC (its clocksource is "tsc", which it only picks for an invariant,
// synchronized TSC) we read the TSC and convert with a calibration that
// RecalibrateClock() refreshes at every RSS sample; otherwise we fall back to
// clock_gettime. Either way FastMonotonicNs() is comparable with
// MonotonicNs() to within a few microseconds.
//
// Constraints: no allocation, no locks (the calibration is a seqlock that
// readers never wait on for long), async-signal-safe. InitClock() does a few
// raw syscalls and busy-waits ~200 us; call it once at start-up (and at most
// once more, when auto switches to the precise clock).
#ifndef HEAPSIGHT_PRELOAD_CLOCK_H_
#define HEAPSIGHT_PRELOAD_CLOCK_H_

#include <time.h>
#include <x86intrin.h>

#include <atomic>
#include <cstdint>

namespace heapsight::preload {

inline uint64_t ClockNs(clockid_t clock) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint64_t MonotonicNs() { return ClockNs(CLOCK_MONOTONIC); }

// The kernel's tick-resolution clock (CLOCK_MONOTONIC_COARSE): the vDSO
// reads it from its data page without touching the TSC, about 3 ns against
// rdtsc's 10 on the benchmark machine (docs/performance.md). Same epoch as
// MonotonicNs(), at most one tick (1-4 ms) behind it.
inline uint64_t CoarseMonotonicNs() { return ClockNs(CLOCK_MONOTONIC_COARSE); }

inline uint64_t RealtimeNs() { return ClockNs(CLOCK_REALTIME); }

// 128-bit intermediates for the TSC conversion (a GCC extension).
__extension__ typedef __int128 Int128;
__extension__ typedef unsigned __int128 UInt128;

// TSC -> nanoseconds: ns = anchor_ns + (tsc - anchor_tsc) * ns_per_tick_q32 / 2^32.
struct TscCalibration {
  std::atomic<uint32_t> sequence{0};  // odd while a writer updates the fields
  std::atomic<uint64_t> anchor_tsc{0};
  std::atomic<uint64_t> anchor_ns{0};
  std::atomic<uint64_t> ns_per_tick_q32{0};
};

extern TscCalibration g_tsc_calibration;
extern bool g_tsc_enabled;

// Decides between TSC and clock_gettime and calibrates. Idempotent.
void InitClock();
// Re-anchors the TSC conversion at the current time and refines the rate
// over the whole span since InitClock(). Cheap; called with RSS samples.
void RecalibrateClock();
// In a fork child, before any timestamp: undoes a calibration update that a
// vanished thread left half-written.
void ResetClockInChild();

inline uint64_t FastMonotonicNs() {
  if (!g_tsc_enabled) return MonotonicNs();
  uint64_t tsc = __rdtsc();
  uint64_t anchor_tsc, anchor_ns, rate;
  uint32_t seq;
  do {
    seq = g_tsc_calibration.sequence.load(std::memory_order_acquire);
    anchor_tsc = g_tsc_calibration.anchor_tsc.load(std::memory_order_relaxed);
    anchor_ns = g_tsc_calibration.anchor_ns.load(std::memory_order_relaxed);
    rate = g_tsc_calibration.ns_per_tick_q32.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
  } while ((seq & 1) != 0 || seq != g_tsc_calibration.sequence.load(std::memory_order_relaxed));
  // Signed: another thread may have re-anchored after we read the TSC.
  Int128 delta = static_cast<Int128>(static_cast<int64_t>(tsc - anchor_tsc)) * rate;
  return anchor_ns + static_cast<uint64_t>(static_cast<int64_t>(delta >> 32));
}

// --- The trace's clock policy ---------------------------------------------

// Which clock NowUs() reads now. Goes from true to false at most once (the
// coarse clock lags the precise one by up to a tick, so time only jumps
// forward); never back.
extern std::atomic<bool> g_coarse_clock;
// The trace's start (FileHeader::start_monotonic_ns), read with the clock
// the trace starts on.
extern uint64_t g_trace_start_ns;

// Applies HEAPSIGHT_CLOCK (`policy`: "auto", "coarse" or "precise"; anything
// else is auto) and takes the trace's start time. Called once, by
// StartTracing (lifecycle.h), before the first timestamp.
void StartTraceClock(const char* policy);

// True while the coarse clock is in use (FileHeader's kFileFlagCoarseClock).
inline bool CoarseClockInUse() { return g_coarse_clock.load(std::memory_order_relaxed); }

// Microseconds since the trace's start_monotonic_ns, from the clock
// HEAPSIGHT_CLOCK picks (see OnThreadStateCreated).
inline uint64_t NowUs() {
  // Never before the start: a wrapped difference would be a time 584 years
  // on, which the reader rightly rejects as corrupt.
  uint64_t ns = g_coarse_clock.load(std::memory_order_acquire) ? CoarseMonotonicNs()
                                                                : FastMonotonicNs();
  return ns > g_trace_start_ns ? (ns - g_trace_start_ns) / 1000 : 0;
}

// Called by the thread registry for every thread state it sets up, with
// the state's index. With HEAPSIGHT_CLOCK=auto (the default) timestamps come
// from the coarse clock while the process has one thread: one stream has
// its order from the file, not from time. The first event of a second
// thread switches the process to the precise clock for good, because from
// then on the analyzer interleaves streams by time, and a peak of blocks
// handed between threads needs that order (tests/examples: lesson 8's
// bounded queue peaks at 3.3 MB instead of 1-2 MB with tick-resolution
// time). The switch calibrates the TSC (a ~200 us busy wait, once).
void OnThreadStateCreated(uint32_t index);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_CLOCK_H_
