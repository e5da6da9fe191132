// tests/preload/options_doc_test.cc: docs/options.md is what
// preload/gen_options_doc prints from the options table.
#include <gtest/gtest.h>
#include <stdio.h>

#include <fstream>
#include <sstream>
#include <string>

namespace {

TEST(OptionsDoc, MatchesTheTable) {
  std::string gen = std::string(HEAPSIGHT_BUILD_ROOT) + "/preload/gen_options_doc";
  FILE* p = popen(gen.c_str(), "r");
  ASSERT_NE(p, nullptr);
  std::string generated;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) generated.append(buf, n);
  ASSERT_EQ(pclose(p), 0);
  ASSERT_NE(generated, "") << gen << " printed nothing";
  std::ifstream in(std::string(HEAPSIGHT_SOURCE_ROOT) + "/docs/options.md");
  ASSERT_TRUE(in) << "docs/options.md is missing";
  std::stringstream doc;
  doc << in.rdbuf();
  EXPECT_EQ(doc.str(), generated)
      << "docs/options.md is stale: run build/preload/gen_options_doc > docs/options.md";
}

}  // namespace
