// analyzer/output/heap_unsampling.h: scaling sampled heap numbers back to
// estimates of the real ones, exactly as Go's runtime/pprof does for heap
// profiles (so a sampled heapsight trace reads like a Go heap profile).
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_HEAP_UNSAMPLING_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_HEAP_UNSAMPLING_H_

#include <cstdint>

#include "analyzer/output/heap_profile.h"

namespace heapsight::analyzer::output {

struct ScaledSample {
  int64_t count = 0;
  int64_t bytes = 0;
};

// ScaleHeapSample()
//
// A recorder that samples one allocation per `period` bytes on average
// (Poisson sampling) sees an object of average size s with probability
// 1 - exp(-s/period). Each (count, bytes) pair is multiplied by
// 1 / (1 - exp(-(bytes/count)/period)) and truncated toward zero.
// count == 0 or bytes == 0 gives {0, 0}; period <= 1 (an exact trace)
// returns the input unchanged. Results saturate at INT64_MAX.
//
// Example: ScaleHeapSample(1, 4096, 4096) == {1, 6479}.
ScaledSample ScaleHeapSample(int64_t count, int64_t bytes, int64_t period);

// TruncateSaturating()
//
// A non-negative estimate as int64, truncated toward zero: 0 for v <= 0,
// INT64_MAX from 2^63 up (and for NaN). A hostile trace's period can make
// an estimate astronomical.
int64_t TruncateSaturating(double v);

// The allocations (count, bytes) a site's samples stand for: its
// per-allocation estimates when it has them (values.alloc_*_estimate >= 0,
// a sampled heapsight trace), else ScaleHeapSample of its totals.
ScaledSample ScaleAllocs(const SiteValues& values, int64_t period);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_HEAP_UNSAMPLING_H_
