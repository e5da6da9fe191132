// tests/analyzer/output/text_util_test.cc: numbers and durations as the text
// reports print them; a duration has no more digits than its clock measured.
#include "analyzer/output/text_util.h"

#include "format/trace_format.h"
#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

TEST(TextUtilTest, PreciseClockDurationsKeepMicroseconds) {
  EXPECT_EQ(Seconds(400), "400 us");
  EXPECT_EQ(Seconds(504000), "504.000 ms");
  EXPECT_EQ(Seconds(12345), "12.345 ms");
  EXPECT_EQ(Seconds(1234567), "1.235 s");
}

TEST(TextUtilTest, CoarseClockDurationsAreWholeMilliseconds) {
  constexpr ClockResolution kMs = ClockResolution::kMilliseconds;
  EXPECT_EQ(Seconds(504000, kMs), "504 ms");
  EXPECT_EQ(Seconds(400, kMs), "0 ms");
  EXPECT_EQ(Seconds(12600, kMs), "13 ms");
  EXPECT_EQ(Seconds(999600, kMs), "1.000 s");
  EXPECT_EQ(Seconds(1504000, kMs), "1.504 s");
}

TEST(TextUtilTest, ResolutionComesFromTheCoarseClockFlag) {
  EXPECT_EQ(ResolutionOf(0), ClockResolution::kMicroseconds);
  EXPECT_EQ(ResolutionOf(format::kFileFlagSampled), ClockResolution::kMicroseconds);
  EXPECT_EQ(ResolutionOf(format::kFileFlagCoarseClock | format::kFileFlagForkChild),
            ClockResolution::kMilliseconds);
}

TEST(TextUtilTest, Numbers) {
  EXPECT_EQ(Thousands(1234567), "1,234,567");
  EXPECT_EQ(Bytes(1), "1 byte");
  EXPECT_EQ(Bytes(20480), "20,480 bytes (20.0 KiB)");
}

}  // namespace
}  // namespace heapsight::analyzer
