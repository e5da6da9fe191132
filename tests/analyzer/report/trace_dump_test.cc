// tests/analyzer/report/trace_dump_test.cc: `heapsight dump` text of the sample trace.
#include "analyzer/report/trace_dump.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/analyzer/sample_trace.h"
#include "tests/analyzer/test_trace_writer.h"

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

// Version 6: the hot records with their addresses and order values, the
// blocks of inherited and block-classes records by address.
TEST(TraceDumpTest, PrintsAddressFrees) {
  heapsight::testing::TestTraceWriter w;
  w.UseAddressFrees();
  w.AllocAt(1, 100, format::Api::kMalloc, 24, 3, 0x5000);
  w.AllocAt(2, 110, format::Api::kMalloc, 40, 3, 0x6000);
  w.FreeAt(2, 120, 0x5000);  // a hand-off: thread 1 made the address's last event
  w.ReallocAtAddress(2, 130, 131, 0x6000, 64, 4, 0x7000);
  w.Inherited(1, 140, 0x8000, format::Api::kNew, 48, 0);
  w.BlockClasses(1, 1, format::LeakClass::kDefinite, {0x7000, 0x8000});
  std::string path = ::testing::TempDir() + "/dump_v6.hst";
  ASSERT_TRUE(w.WriteFile(path));
  absl::Status status;
  std::string text = DumpToString(path, &status);
  ASSERT_TRUE(status.ok()) << status;
  EXPECT_TRUE(absl::StrContains(text, "version 6, pid 4242")) << text;
  EXPECT_TRUE(absl::StrContains(text, "address frees: a free names its block's address")) << text;
  EXPECT_TRUE(absl::StrContains(text, "  100 alloc id=1:0 api=malloc size=24 stack=3 align=0 "
                                      "addr=0x5000 order=0")) << text;
  EXPECT_TRUE(absl::StrContains(text, "  120 free addr=0x5000 order=3 api=free")) << text;
  EXPECT_TRUE(absl::StrContains(text, "  130 realloc old_addr=0x6000 old_order=0 id=2:1 "
                                      "api=realloc size=64 stack=4 alloc_time=131 addr=0x7000 "
                                      "order=0")) << text;
  EXPECT_TRUE(absl::StrContains(text, "  140 inherited addr=0x8000 api=operator new(unsigned "
                                      "long) size=48 stack=0")) << text;
  EXPECT_TRUE(absl::StrContains(text, "block-classes scan=1 class=1 count=2 addrs=[ 0x7000 "
                                      "0x8000 ]")) << text;
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
