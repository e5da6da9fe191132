// tests/analyzer/report/trace_dump_test.cc: `heapsight dump` text of the sample trace.
#include "analyzer/report/trace_dump.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/analyzer/sample_trace.h"

namespace heapsight::analyzer {
namespace {

std::string DumpToString(const std::string& path, absl::Status* status) {
  std::string out_path = path + ".dump";
  std::FILE* out = std::fopen(out_path.c_str(), "w");
  *status = DumpTrace(path, out);
  std::fclose(out);
  std::ifstream in(out_path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(TraceDumpTest, PrintsEveryRecord) {
  std::string path = testing::WriteSampleTrace("dump");
  absl::Status status;
  std::string text = DumpToString(path, &status);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(absl::StrContains(text, "version 4, pid 4242, ppid 1")) << text;
  EXPECT_TRUE(absl::StrContains(text, "chunk at 64: thread 1 (tid 1001) seq 0")) << text;
  EXPECT_TRUE(absl::StrContains(
      text, "process exe=\"/nonexistent/sample_prog\" parent_pid=1 parent_trace=\"\" argv=[ \"sample_prog\" \"--flag\" ]"))
      << text;
  EXPECT_TRUE(absl::StrContains(text, "module id=1 load=0x400000 path=\"/nonexistent/sample_prog\" build_id=010203 segments=1"));
  EXPECT_TRUE(absl::StrContains(text, "node 3 parent=2 ip=0x401200"));
  EXPECT_TRUE(absl::StrContains(text, "  100 alloc id=1:0 api=malloc size=1000 stack=3"));
  EXPECT_TRUE(absl::StrContains(text, "  130 free id=1:2 api=operator delete(void*)"));
  EXPECT_TRUE(absl::StrContains(text, "  150 realloc old=1:3 id=1:4 api=realloc size=128 stack=4"));
  EXPECT_TRUE(absl::StrContains(text, "  200 alloc id=2:0 api=malloc size=5000 stack=4"));
  EXPECT_TRUE(absl::StrContains(text, "  400 end reason=1 exit_status=0"));
}

TEST(TraceDumpTest, CorruptTraceIsAnError) {
  std::string path = ::testing::TempDir() + "/dump_bad.hst";
  std::ofstream(path) << "not a trace at all, clearly";
  absl::Status status;
  DumpToString(path, &status);
  EXPECT_FALSE(status.ok());
  EXPECT_TRUE(absl::StartsWith(status.message(), path + ": ")) << status;
}

}  // namespace
}  // namespace heapsight::analyzer
