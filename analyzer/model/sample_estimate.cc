// analyzer/model/sample_estimate.cc: see sample_estimate.h.
#include "analyzer/model/sample_estimate.h"

#include <cmath>
#include <limits>

namespace heapsight::analyzer {

double SampleWeight(uint64_t size, double period) {
  if (period <= 1 || size == 0) return 1.0;
  return -1.0 / std::expm1(-static_cast<double>(size) / period);
}

double AllocationVariance(uint64_t size, double period, bool bytes) {
  double w = SampleWeight(size, period);
  double v = w * (w - 1);
  if (bytes) v *= static_cast<double>(size) * static_cast<double>(size);
  return v;
}

uint64_t TwoStandardErrors(double variance) {
  if (!(variance > 0)) return 0;
  return static_cast<uint64_t>(TruncateSaturating(std::round(2 * std::sqrt(variance))));
}

int64_t TruncateSaturating(double v) {
  // 2^63 is exactly representable; anything at or above it saturates.
  constexpr double kLimit = 9223372036854775808.0;
  if (!(v < kLimit)) return std::numeric_limits<int64_t>::max();
  if (v <= 0) return 0;
  return static_cast<int64_t>(v);
}

ScaledBlocks ScaleLiveBlocks(int64_t count, int64_t bytes, int64_t period) {
  if (count == 0 || bytes == 0) return {0, 0};
  if (period <= 1) return {count, bytes};
  double avg = static_cast<double>(bytes) / static_cast<double>(count);
  double scale = 1 / (1 - std::exp(-avg / static_cast<double>(period)));
  return {TruncateSaturating(static_cast<double>(count) * scale),
          TruncateSaturating(static_cast<double>(bytes) * scale)};
}

}  // namespace heapsight::analyzer
