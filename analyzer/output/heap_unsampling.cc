// analyzer/output/heap_unsampling.cc: see heap_unsampling.h.
#include "analyzer/output/heap_unsampling.h"

#include <cmath>
#include <limits>

namespace heapsight::analyzer::output {

int64_t TruncateSaturating(double v) {
  // 2^63 is exactly representable; anything at or above it saturates.
  constexpr double kLimit = 9223372036854775808.0;
  if (!(v < kLimit)) return std::numeric_limits<int64_t>::max();
  if (v <= 0) return 0;
  return static_cast<int64_t>(v);
}

ScaledSample ScaleHeapSample(int64_t count, int64_t bytes, int64_t period) {
  if (count == 0 || bytes == 0) return {0, 0};
  if (period <= 1) return {count, bytes};
  double avg = static_cast<double>(bytes) / static_cast<double>(count);
  double scale = 1 / (1 - std::exp(-avg / static_cast<double>(period)));
  return {TruncateSaturating(static_cast<double>(count) * scale),
          TruncateSaturating(static_cast<double>(bytes) * scale)};
}

ScaledSample ScaleAllocs(const SiteValues& values, int64_t period) {
  if (period > 1 && values.alloc_count_estimate >= 0 && values.alloc_bytes_estimate >= 0) {
    return {values.alloc_count_estimate, values.alloc_bytes_estimate};
  }
  return ScaleHeapSample(values.alloc_count, values.alloc_bytes, period);
}

}  // namespace heapsight::analyzer::output
