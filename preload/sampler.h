// preload/sampler.h: byte-based sampling of allocations (HEAPSIGHT_SAMPLE_BYTES).
//
// With a mean period of P bytes, every allocated byte has the same chance,
// 1/P, of being the one that gets its allocation recorded: an allocation of
// s bytes is recorded with probability 1 - exp(-s/P). Each thread counts
// down the bytes left until its next sample, an exponentially distributed
// interval of mean P (the scheme of tcmalloc and Go's runtime.MemProfileRate,
// so pprof's scaling of sampled heap profiles applies: the trace header says
// P). An allocation that is not sampled costs a thread-local subtraction and
// nothing else: no stack, no record, no live-table entry; its free then
// reads one byte of the live table's counting filter (live_table.h), finds
// 0, and passes straight through without probing the table. Sampling trades
// exactness for cost: counts and bytes become estimates, a free of a block
// the table does not know is no longer a bad free (it was most likely just
// not sampled), and the exit leak scan is off (an unsampled block may be
// the only path to a sampled one, which would then look lost).
//
// Intervals come from a per-thread xorshift generator seeded in thread
// order, so a single-threaded run samples the same allocations every time.
//
// Constraints: no allocation, no locks, no libm (the logarithm is a short
// series), initial-exec TLS only; async-signal-safe.
#ifndef HEAPSIGHT_PRELOAD_SAMPLER_H_
#define HEAPSIGHT_PRELOAD_SAMPLER_H_

#include <cstddef>
#include <cstdint>

namespace heapsight::preload {

// 0 records every allocation (the default). Set once, at start-up.
void InitSampler(uint64_t mean_bytes);
extern uint64_t g_sample_period;

// Bytes this thread may still allocate before its next sample.
// constinit: no dynamic initialization, so no TLS wrapper call on each use.
//
// Two counters, one per mode, so that the hooks' fast paths (recorder.h)
// need no test of the mode: with the fast paths on (UseFastCountdown:
// sampled, no heap limit), t_sample_bytes_left is the thread's countdown
// for every path; otherwise it is never written and stays 0, which no
// allocation size is below, so the fast path never takes an allocation,
// and the generic path counts down t_slow_sample_bytes_left (sampled with
// a heap limit) or nothing (not sampled).
extern constinit thread_local int64_t t_sample_bytes_left __attribute__((tls_model("initial-exec")));
extern constinit thread_local int64_t t_slow_sample_bytes_left
    __attribute__((tls_model("initial-exec")));
// Which counter: set once, before any countdown (the trace's start).
void UseFastCountdown();
extern bool g_fast_countdown;
inline int64_t& SampleCountdown() {
  return g_fast_countdown ? t_sample_bytes_left : t_slow_sample_bytes_left;
}

// Draws the next interval (and seeds the thread's generator on first use);
// true if the allocation that got here is sampled.
bool SampleSlowPath();

// True if an allocation of `size` bytes is to be recorded.
inline bool ShouldSample(size_t size) {
  if (__builtin_expect(g_sample_period == 0, 1)) return true;
  int64_t& left = SampleCountdown();
  left -= static_cast<int64_t>(size);
  if (left > 0) return false;
  return SampleSlowPath();
}

// -ln(u) * mean for u in (0, 1] given as 53 random bits plus one: an
// exponentially distributed interval. Exposed for tests.
uint64_t ExponentialInterval(uint64_t random_bits, uint64_t mean);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_SAMPLER_H_
