// tests/analyzer/golden.h: compares text with a golden file under
// tests/analyzer/golden/. Run with HEAPSIGHT_UPDATE_GOLDEN=1 to rewrite the
// golden files from the current output (then review the diff).
#ifndef HEAPSIGHT_TESTS_ANALYZER_GOLDEN_H_
#define HEAPSIGHT_TESTS_ANALYZER_GOLDEN_H_

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "gtest/gtest.h"

namespace heapsight::testing {

inline void ExpectGolden(const std::string& name, const std::string& actual) {
  std::string path = std::string(HEAPSIGHT_ANALYZER_GOLDEN_DIR) + "/" + name;
  if (std::getenv("HEAPSIGHT_UPDATE_GOLDEN") != nullptr) {
    std::ofstream(path, std::ios::binary) << actual;
    return;
  }
  std::ifstream in(path, std::ios::binary);
  ASSERT_TRUE(in) << "missing golden file " << path
                  << " (run with HEAPSIGHT_UPDATE_GOLDEN=1 to create it)";
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(actual, ss.str()) << "golden file " << path << " differs";
}

}  // namespace heapsight::testing

#endif  // HEAPSIGHT_TESTS_ANALYZER_GOLDEN_H_
