// tests/cli/record/private_tmpdir.cc: gives the record tests a private $TMPDIR
// and removes it, with every temp dir and trace the tests (and the programs
// they ran) left in it, when the test program ends.
#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace {

class PrivateTmpDir : public ::testing::Environment {
 public:
  void SetUp() override {
    const char* base = getenv("TMPDIR");
    std::string tmpl = std::string(base != nullptr && base[0] == '/' ? base : "/tmp") +
                       "/heapsight-record-test.XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    ASSERT_NE(mkdtemp(buf.data()), nullptr);
    dir_ = buf.data();
    setenv("TMPDIR", dir_.c_str(), 1);
  }
  void TearDown() override {
    if (dir_.empty()) return;
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

 private:
  std::string dir_;
};

[[maybe_unused]] ::testing::Environment* const kPrivateTmpDir =
    ::testing::AddGlobalTestEnvironment(new PrivateTmpDir);

}  // namespace
