// tests/analyzer/output/heap_unsampling_test.cc: ScaleHeapSample against Go's formula.
#include "analyzer/output/heap_unsampling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

namespace heapsight::analyzer::output {
namespace {

TEST(ScaleHeapSampleTest, GoObservedValue) {
  // Go with MemProfileRate 4096 reported one sampled 4096 B
  // object as 1 object / 6479 B.
  ScaledSample s = ScaleHeapSample(1, 4096, 4096);
  EXPECT_EQ(s.count, 1);
  EXPECT_EQ(s.bytes, 6479);
}

TEST(ScaleHeapSampleTest, MatchesFormula) {
  // 10 objects of 100 B at the default Go rate (512 KiB): tiny objects are
  // rarely sampled, so each sampled one stands for many.
  double scale = 1 / (1 - std::exp(-100.0 / 524288.0));
  ScaledSample s = ScaleHeapSample(10, 1000, 524288);
  EXPECT_EQ(s.count, static_cast<int64_t>(10 * scale));
  EXPECT_EQ(s.bytes, static_cast<int64_t>(1000 * scale));
  EXPECT_EQ(s.count, 52433);  // 10 * 5243.38...
  // Huge objects are always sampled: no scaling.
  ScaledSample big = ScaleHeapSample(2, int64_t{2} << 30, 512 * 1024);
  EXPECT_EQ(big.count, 2);
  EXPECT_EQ(big.bytes, int64_t{2} << 30);
}

TEST(ScaleHeapSampleTest, ExactTracesAndZeros) {
  EXPECT_EQ(ScaleHeapSample(3, 300, 0).count, 3);
  EXPECT_EQ(ScaleHeapSample(3, 300, 1).bytes, 300);
  EXPECT_EQ(ScaleHeapSample(3, 300, -5).bytes, 300);
  ScaledSample zero_count = ScaleHeapSample(0, 300, 4096);
  EXPECT_EQ(zero_count.count, 0);
  EXPECT_EQ(zero_count.bytes, 0);
  ScaledSample zero_bytes = ScaleHeapSample(5, 0, 4096);
  EXPECT_EQ(zero_bytes.count, 0);
  EXPECT_EQ(zero_bytes.bytes, 0);
}

TEST(ScaleHeapSampleTest, Saturates) {
  ScaledSample s = ScaleHeapSample(INT64_MAX / 2, INT64_MAX, 1LL << 62);
  EXPECT_EQ(s.bytes, INT64_MAX);
  EXPECT_GT(s.count, 0);
}

}  // namespace
}  // namespace heapsight::analyzer::output
