// analyzer/output/heap_unsampling.cc: see heap_unsampling.h.
#include "analyzer/output/heap_unsampling.h"

#include "analyzer/model/sample_estimate.h"

namespace heapsight::analyzer::output {

// The math lives in the model (analyzer/model/sample_estimate.h), which
// computes the same estimates for every text total.
int64_t TruncateSaturating(double v) { return analyzer::TruncateSaturating(v); }

ScaledSample ScaleHeapSample(int64_t count, int64_t bytes, int64_t period) {
  ScaledBlocks scaled = ScaleLiveBlocks(count, bytes, period);
  return {scaled.count, scaled.bytes};
}

ScaledSample ScaleAllocs(const SiteValues& values, int64_t period) {
  if (period > 1 && values.alloc_count_estimate >= 0 && values.alloc_bytes_estimate >= 0) {
    return {values.alloc_count_estimate, values.alloc_bytes_estimate};
  }
  return ScaleHeapSample(values.alloc_count, values.alloc_bytes, period);
}

}  // namespace heapsight::analyzer::output
