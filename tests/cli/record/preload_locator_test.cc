// tests/cli/record/preload_locator_test.cc: where `heapsight record` looks for
// libheapsight.so (the end-to-end install layout is in record_command_test).
#include "cli/record/preload_locator.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace heapsight::record {
namespace {

using ::testing::Contains;

TEST(PreloadCandidates, BuildTreeFirstThenInstalledPlaces) {
  std::vector<std::string> c = PreloadCandidates("/opt/hs/bin");
  ASSERT_FALSE(c.empty());
  EXPECT_EQ(c[0], "/opt/hs/bin/../preload/libheapsight.so");
  EXPECT_THAT(c, Contains("/opt/hs/bin/../" HEAPSIGHT_RECORD_LIBDIR "/heapsight/libheapsight.so"));
  EXPECT_THAT(c, Contains("/opt/hs/bin/../lib/libheapsight.so"));
  EXPECT_THAT(c, Contains("/opt/hs/bin/../lib/heapsight/libheapsight.so"));
}

}  // namespace
}  // namespace heapsight::record
