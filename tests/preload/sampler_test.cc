// tests/preload/sampler_test.cc: the allocation sampler's intervals and
// rates (preload/sampler.h).
#include "preload/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>

namespace heapsight::preload {
namespace {

// 53 random bits that make ExponentialInterval's u exactly `u` (a multiple of 2^-53).
uint64_t BitsFor(double u) {
  auto k = static_cast<uint64_t>(u * 9007199254740992.0);  // u * 2^53
  return (k - 1) << 11;
}

// The logarithm is a four-term series: within 1e-5 of ln(u), i.e. 10
// bytes of a 10^6-byte mean.
TEST(Sampler, IntervalIsMinusLnUTimesTheMean) {
  EXPECT_NEAR(static_cast<double>(ExponentialInterval(BitsFor(0.5), 1000000)),
              1000000 * std::log(2.0), 10.0);
  EXPECT_NEAR(static_cast<double>(ExponentialInterval(BitsFor(0.125), 1000000)),
              1000000 * std::log(8.0), 10.0);
  EXPECT_NEAR(static_cast<double>(ExponentialInterval(BitsFor(0.9), 1000000)),
              -1000000 * std::log(0.9), 10.0);
  EXPECT_NEAR(static_cast<double>(ExponentialInterval(BitsFor(0.51), 1000000)),
              -1000000 * std::log(0.51), 10.0);
  // u = 1: a zero interval is never drawn; the smallest is one byte.
  EXPECT_EQ(ExponentialInterval(~uint64_t{0}, 1000000), 1u);
  // The smallest u, 2^-53: about 36.7 means, finite.
  EXPECT_NEAR(static_cast<double>(ExponentialInterval(0, 1000)), 1000 * 53 * std::log(2.0),
              1.0);
}

TEST(Sampler, IntervalsAverageTheMean) {
  uint64_t x = 88172645463325252ull;
  double sum = 0;
  constexpr int kDraws = 1000000;
  for (int i = 0; i < kDraws; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    sum += static_cast<double>(ExponentialInterval(x, 4096));
  }
  // The mean of 10^6 exponential draws: standard error 0.1%.
  EXPECT_NEAR(sum / kDraws, 4096.0, 4096.0 * 0.005);
}

TEST(Sampler, SamplesEachByteOnceInAPeriod) {
  InitSampler(10000);
  int sampled = 0;
  constexpr int kAllocs = 1000000;
  for (int i = 0; i < kAllocs; ++i) sampled += ShouldSample(100);
  // Each 100-byte allocation: p = 1 - exp(-0.01); 9,950 expected, sd 99.
  double p = 1.0 - std::exp(-0.01);
  EXPECT_NEAR(sampled, kAllocs * p, 6 * std::sqrt(kAllocs * p * (1 - p)));
  // A block larger than many periods is always sampled.
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(ShouldSample(10000000));
  InitSampler(0);
  for (int i = 0; i < 100; ++i) EXPECT_TRUE(ShouldSample(1));
}

}  // namespace
}  // namespace heapsight::preload
