// tests/analyzer/model/trace_family_test.cc: FindTraceFamily on synthetic
// traces in one directory: a root, a fork child and its exec'd image are
// found from any of them, in parent-first order; an unrelated trace, a file
// that is not a trace and a cycle of hostile parent links are not followed.
#include "analyzer/model/trace_family.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer {
namespace {

using testing::TestTraceWriter;

class TraceFamilyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/family." + std::to_string(getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A trace of `name` whose kProcess names `parent` (a file name in dir_,
  // written as the absolute path the preload would record; "" = a root).
  std::string Write(const std::string& name, const std::string& parent, bool thread_first = false) {
    TestTraceWriter w;
    if (thread_first) {
      // Another thread's chunk comes first in the file.
      w.StackNode(1, 1, 0, 0x1000);
      w.Alloc(1, 5, format::Api::kMalloc, 10, 1);
      w.Flush(1);
    }
    w.Process(0, 0, "/bin/prog", {"prog"}, 1, parent.empty() ? "" : "/recorded/at/" + parent);
    w.End(0, 10);
    std::string path = dir_ + "/" + name;
    EXPECT_TRUE(w.WriteFile(path));
    return path;
  }

  std::string dir_;
};

TEST_F(TraceFamilyTest, FoundFromAnyMemberParentsFirst) {
  std::string root = Write("heapsight.prog.100.hst", "");
  std::string child = Write("heapsight.prog.101.hst", "heapsight.prog.100.hst");
  std::string image = Write("heapsight.prog.101.1.hst", "heapsight.prog.101.hst", true);
  std::string child2 = Write("heapsight.prog.102.hst", "heapsight.prog.100.hst");
  std::string other = Write("heapsight.other.200.hst", "");
  std::string other_child = Write("heapsight.other.201.hst", "heapsight.other.200.hst");
  std::ofstream(dir_ + "/junk.hst") << "not a trace";
  std::vector<std::string> want = {root, child, image, child2};
  for (const std::string& seed : {root, child, image, child2}) {
    absl::StatusOr<std::vector<std::string>> family = FindTraceFamily(seed);
    ASSERT_TRUE(family.ok()) << family.status();
    EXPECT_EQ(*family, want) << seed;
  }
  absl::StatusOr<std::vector<std::string>> others = FindTraceFamily(other_child);
  ASSERT_TRUE(others.ok());
  EXPECT_EQ(*others, (std::vector<std::string>{other, other_child}));

  absl::StatusOr<TraceIdentity> id = ReadTraceIdentity(image);
  ASSERT_TRUE(id.ok());
  EXPECT_TRUE(id->has_process);
  EXPECT_EQ(id->parent_trace, "/recorded/at/heapsight.prog.101.hst");
}

TEST_F(TraceFamilyTest, CyclesAreCutAndBadSeedsFail) {
  std::string a = Write("a.hst", "b.hst");
  std::string b = Write("b.hst", "a.hst");
  absl::StatusOr<std::vector<std::string>> family = FindTraceFamily(a);
  ASSERT_TRUE(family.ok()) << family.status();
  EXPECT_EQ(family->size(), 2u);
  std::ofstream(dir_ + "/bad.hst") << "not a trace";
  EXPECT_FALSE(FindTraceFamily(dir_ + "/bad.hst").ok());
  EXPECT_FALSE(FindTraceFamily(dir_ + "/missing.hst").ok());
}

}  // namespace
}  // namespace heapsight::analyzer
