// tests/cli/record/output_target_test.cc: making -o patterns absolute and
// checking their directory before the program runs.
#include "cli/record/output_target.h"

#include <cstdlib>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/run_traced.h"

namespace heapsight::record {
namespace {

using ::testing::HasSubstr;

TEST(AbsolutePattern, ResolvesAgainstTheCurrentDirectory) {
  EXPECT_EQ(AbsolutePattern("heapsight.%e.%p.hst", "/work"), "/work/heapsight.%e.%p.hst");
  EXPECT_EQ(AbsolutePattern("./out/%p.hst", "/work"), "/work/out/%p.hst");
  EXPECT_EQ(AbsolutePattern("x.hst", "/"), "/x.hst");
  EXPECT_EQ(AbsolutePattern("/abs/%p.hst", "/work"), "/abs/%p.hst");
}

TEST(CheckOutputDirectory, AcceptsAWritableDirectoryAndLeavesNoProbe) {
  std::string dir = heapsight::testing::MakeTempDir();
  EXPECT_TRUE(CheckOutputDirectory(dir + "/%p.hst").ok());
  EXPECT_EQ(std::system(("test -z \"$(ls -A " + dir + ")\"").c_str()), 0);
}

TEST(CheckOutputDirectory, RejectsMissingDirectoriesFilesAndDirectoryNames) {
  std::string dir = heapsight::testing::MakeTempDir();
  absl::Status missing = CheckOutputDirectory(dir + "/no/such/%p.hst");
  EXPECT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.message()),
              HasSubstr("cannot write traces to " + dir + "/no/such: No such file or directory"));
  std::ofstream(dir + "/file") << "x";
  EXPECT_FALSE(CheckOutputDirectory(dir + "/file/x.hst").ok());
  EXPECT_FALSE(CheckOutputDirectory(dir + "/").ok());
  // /proc is not writable even for root.
  EXPECT_FALSE(CheckOutputDirectory("/proc/x.hst").ok());
}

TEST(CheckOutputDirectory, SkipsDirectoriesThatDependOnTheProcess) {
  EXPECT_TRUE(CheckOutputDirectory("/nonexistent-%p/x.hst").ok());
}

}  // namespace
}  // namespace heapsight::record
