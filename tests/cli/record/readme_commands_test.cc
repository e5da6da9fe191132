// tests/cli/record/readme_commands_test.cc: README.md opens with the two
// commands a new user runs, and .ci/run runs the second one exactly.
#include <sys/stat.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/run_traced.h"

namespace heapsight::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The lines of the first fenced code block of README.md.
std::vector<std::string> FirstCodeBlock() {
  std::vector<std::string> block;
  bool inside = false;
  for (const std::string& line : Lines(SourcePath("README.md"))) {
    if (line.rfind("```", 0) == 0) {
      if (inside) break;
      inside = true;
      continue;
    }
    if (inside) block.push_back(line);
  }
  return block;
}

TEST(ReadmeCommands, OpensWithSetupAndDemoThenTheTestCommand) {
  std::vector<std::string> block = FirstCodeBlock();
  ASSERT_THAT(block, SizeIs(2));
  EXPECT_EQ(block[0], "./scripts/setup-and-demo.sh");
  EXPECT_THAT(block[1], HasSubstr("meson test"));
  struct stat st;
  ASSERT_EQ(stat(SourcePath("scripts/setup-and-demo.sh").c_str(), &st), 0);
  EXPECT_NE(st.st_mode & S_IXUSR, 0u) << "scripts/setup-and-demo.sh is not executable";
}

TEST(ReadmeCommands, CiRunsExactlyTheReadmeTestCommand) {
  std::vector<std::string> block = FirstCodeBlock();
  ASSERT_THAT(block, SizeIs(2));
  std::vector<std::string> ci = Lines(SourcePath(".ci/run"));
  ASSERT_FALSE(ci.empty());
  EXPECT_EQ(ci.back(), block[1]) << ".ci/run must end with README.md's test command";
}

}  // namespace
}  // namespace heapsight::testing
