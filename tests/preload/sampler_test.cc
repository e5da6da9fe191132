// tests/preload/sampler_test.cc: the allocation sampler's intervals and
// rates (preload/sampler.h).
#include "preload/sampler.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <thread>

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

// Runs `fn` on a new thread: a fresh sampler state (no seed, no bytes left).
template <typename Fn>
void OnFreshThread(Fn fn) {
  std::thread(fn).join();
}

// -ln(2^-53) = 36.74: no interval is longer than 36.74 means, so an
// allocation of 37 means or more is always sampled, on a fresh thread too.
TEST(Sampler, LongestIntervalIsBounded) {
  EXPECT_EQ(ExponentialInterval(0, 1000), 36736u);
  EXPECT_EQ(ExponentialInterval(0, 1), 36u);
}

TEST(Sampler, ZeroMeanGivesOneByteIntervals) {
  for (uint64_t bits : {uint64_t{0}, uint64_t{1} << 40, ~uint64_t{0}}) {
    EXPECT_EQ(ExponentialInterval(bits, 0), 1u) << bits;
  }
}

// u grows with the random bits, so the interval never does: over the
// whole range, and finely where the logarithm is steepest.
TEST(Sampler, IntervalFallsAsTheRandomBitsGrow) {
  constexpr uint64_t kMean = uint64_t{1} << 40;
  constexpr uint64_t kSteps = 1000000;
  const uint64_t step = ~uint64_t{0} / kSteps;
  uint64_t previous = ExponentialInterval(0, kMean);
  for (uint64_t k = 1; k <= kSteps; ++k) {
    uint64_t now = ExponentialInterval(k * step, kMean);
    ASSERT_LE(now, previous) << k;
    previous = now;
  }
  previous = ExponentialInterval(0, kMean);
  for (uint64_t k = 1; k <= kSteps; ++k) {
    uint64_t now = ExponentialInterval(k << 11, kMean);  // u = (k + 1) / 2^53
    ASSERT_LE(now, previous) << k;
    previous = now;
  }
}

TEST(Sampler, SizeZeroIsNeverSampled) {
  InitSampler(1000);
  OnFreshThread([] {
    int sampled = 0;
    for (int i = 0; i < 100000; ++i) sampled += ShouldSample(0);
    EXPECT_EQ(sampled, 0);
    // Nor between sampled allocations.
    for (int i = 0; i < 1000; ++i) {
      EXPECT_TRUE(ShouldSample(40000));  // > 36.74 periods
      EXPECT_FALSE(ShouldSample(0));
    }
  });
  InitSampler(0);
  EXPECT_TRUE(ShouldSample(0));  // unsampled tracing records everything
}

TEST(Sampler, HugeAllocationsAreAlwaysSampled) {
  InitSampler(uint64_t{1} << 40);  // the largest period HEAPSIGHT_SAMPLE_BYTES takes
  OnFreshThread([] {
    for (int i = 0; i < 1000; ++i) {
      ASSERT_TRUE(ShouldSample(static_cast<size_t>(PTRDIFF_MAX))) << i;
      ASSERT_TRUE(ShouldSample(size_t{37} << 40)) << i;
    }
  });
  InitSampler(0);
}

TEST(Sampler, PeriodOneSamplesEveryAllocationOfThirtySevenBytes) {
  InitSampler(1);
  OnFreshThread([] {
    for (int i = 0; i < 100000; ++i) ASSERT_TRUE(ShouldSample(37)) << i;
  });
  InitSampler(0);
}

// With period P an allocation of s bytes is sampled with probability
// 1 - exp(-s/P) on a fresh thread: a new thread starts one whole interval
// from its first sample.
TEST(Sampler, FirstAllocationOfAThread) {
  InitSampler(1000);
  int sampled = 0;
  constexpr int kThreads = 2000;
  for (int i = 0; i < kThreads; ++i) {
    OnFreshThread([&sampled] { sampled += ShouldSample(1000); });
  }
  double p = 1.0 - std::exp(-1.0);
  EXPECT_NEAR(sampled, kThreads * p, 6 * std::sqrt(kThreads * p * (1 - p)));
  InitSampler(0);
}

}  // namespace
}  // namespace heapsight::preload
