// analyzer/model/sample_estimate.h: the real numbers a sampled trace stands
// for (HEAPSIGHT_SAMPLE_BYTES; docs/glossary.md, "Estimates in sampled
// traces").
//
// The preload samples one allocation per `period` bytes on average
// (Poisson sampling): an allocation of s bytes is recorded with probability
// p(s) = 1 - exp(-s/period). Two estimators are used, each where it is the
// established one:
//  - allocations over the whole trace (allocated bytes and count): every
//    sampled allocation is weighted by 1/p(s), its own size's inverse
//    probability (Horvitz-Thompson; unbiased per allocation, and its
//    variance is known: AllocationVariance);
//  - blocks live at a moment (peak, live, not freed at exit): each site's
//    live (count, bytes) is scaled by 1/p(mean size), exactly as Go's
//    runtime/pprof scales a heap profile, so a pprof profile and every
//    text total add up to the same numbers (ScaleLiveBlocks).
// For a given set of blocks the second never exceeds the first (s/p(s) is
// convex), so "not freed" never exceeds "allocated".
#ifndef HEAPSIGHT_ANALYZER_MODEL_SAMPLE_ESTIMATE_H_
#define HEAPSIGHT_ANALYZER_MODEL_SAMPLE_ESTIMATE_H_

#include <cstdint>

namespace heapsight::analyzer {

// 1 / p(size): how many allocations one sampled allocation of `size` bytes
// stands for. A zero-byte allocation (sampled only as a thread's first)
// counts once; period <= 1 (an exact trace) gives 1.
double SampleWeight(uint64_t size, double period);

// The variance contribution of one sampled allocation of `size` bytes to
// the Horvitz-Thompson estimate of allocated bytes (`bytes` = true) or of
// the allocation count: w(w-1) * size^2 or w(w-1), with w = SampleWeight.
// Summed over the sampled allocations it estimates the estimator's variance.
double AllocationVariance(uint64_t size, double period, bool bytes);

// Two standard errors (about a 95% interval) from a summed variance,
// rounded to a whole number.
uint64_t TwoStandardErrors(double variance);

struct ScaledBlocks {
  int64_t count = 0;
  int64_t bytes = 0;
};

// Go's heap-profile scaling: (count, bytes) times 1/p(bytes/count), each
// truncated toward zero. count == 0 or bytes == 0 gives {0, 0}; period <= 1
// returns the input unchanged. Results saturate at INT64_MAX.
// Example: ScaleLiveBlocks(1, 4096, 4096) == {1, 6479}.
ScaledBlocks ScaleLiveBlocks(int64_t count, int64_t bytes, int64_t period);

// A non-negative estimate as int64, truncated toward zero: 0 for v <= 0,
// INT64_MAX from 2^63 up (and for NaN). A hostile trace's period can make
// an estimate astronomical.
int64_t TruncateSaturating(double v);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_SAMPLE_ESTIMATE_H_
