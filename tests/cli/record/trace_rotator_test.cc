// tests/cli/record/trace_rotator_test.cc: TraceRotator on a synthetic
// trace: segments of the size asked for, each analyzed alone with the
// allocations of its own blocks, every free matched (the live blocks of the
// cut come back as inherited ones), the last segment's blocks not freed
// equal to the whole trace's, --rotate-keep.
#include "cli/record/trace_rotator.h"

#include <unistd.h>

#include <string>
#include <vector>

#include "analyzer/model/live_process.h"
#include "analyzer/model/trace_model.h"
#include "format/trace_reader.h"
#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::record {
namespace {

using format::Api;
using heapsight::testing::TestTraceWriter;

TEST(TraceRotatorTest, SegmentsReadAloneAndAddUp) {
  TestTraceWriter w(4242, 1, 1024);
  w.Process(0, 0, "/bin/prog", {"prog"});
  w.StackNode(0, 1, 0, 0x1000);
  w.StackNode(0, 2, 1, 0x2000);
  std::vector<uint64_t> ids;
  for (int i = 0; i < 3000; ++i) {
    ids.push_back(w.Alloc(i % 3, 10 + i, Api::kMalloc, 100 + i % 7, 1 + i % 2));
    if (i >= 10 && i % 2 == 0) w.Free((i + 1) % 3, 10 + i, ids[static_cast<size_t>(i - 10)]);
  }
  std::string dir = ::testing::TempDir() + "/rotator." + std::to_string(getpid());
  ASSERT_EQ(system(("rm -rf " + dir + " && mkdir -p " + dir).c_str()), 0);
  std::string whole = dir + "/whole.hst";
  ASSERT_TRUE(w.WriteFile(whole));

  auto reader = format::TraceReader::Open(whole);
  ASSERT_TRUE(reader.ok());
  analyzer::LiveProcess live(whole, (*reader)->header());
  TraceRotator rotator(dir + "/seg", RotateLimits{8 << 10, 0, 0});
  const std::string& bytes = w.bytes();
  const std::vector<size_t>& offsets = w.block_offsets();
  std::vector<uint8_t> chunk;
  for (size_t i = 0; i < offsets.size(); ++i) {
    size_t end = i + 1 < offsets.size() ? offsets[i + 1] : bytes.size();
    ASSERT_TRUE(rotator.Append(bytes.substr(offsets[i], end - offsets[i]), live).ok());
    ASSERT_TRUE((*reader)->ReadChunkAt(offsets[i], &chunk).ok());
    ASSERT_TRUE(live.ApplyChunk(chunk).ok());
  }
  ASSERT_GE(rotator.segments().size(), 3u);

  analyzer::AnalyzeOptions options;
  options.classify_runtime = false;
  absl::StatusOr<analyzer::ProcessProfile> all = analyzer::AnalyzeTrace(whole, options);
  ASSERT_TRUE(all.ok());
  uint64_t allocs = 0;
  uint64_t frees = 0;
  uint64_t unmatched = 0;
  for (const std::string& segment : rotator.segments()) {
    absl::StatusOr<analyzer::ProcessProfile> p = analyzer::AnalyzeTrace(segment, options);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->exe, "/bin/prog") << segment;
    allocs += p->totals.allocs;
    frees += p->totals.frees;
    unmatched += p->totals.unmatched_frees;
  }
  EXPECT_EQ(allocs, all->totals.allocs);
  // A free read before its allocation counts in both segments of the cut:
  // unmatched in the first, a free in the second.
  EXPECT_EQ(frees, all->totals.frees);
  EXPECT_GT(unmatched, 0u);  // the synthetic trace has such frees
  absl::StatusOr<analyzer::ProcessProfile> last =
      analyzer::AnalyzeTrace(rotator.segments().back(), options);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->totals.leaked_bytes, all->totals.leaked_bytes);
  EXPECT_EQ(last->totals.leaked_blocks, all->totals.leaked_blocks);
  EXPECT_EQ(last->StackIps(2), (std::vector<uint64_t>{0x2000, 0x1000}));
}

TEST(TraceRotatorTest, KeepsTheNewestSegments) {
  TestTraceWriter w(4242, 1, 512);
  for (int i = 0; i < 2000; ++i) w.Alloc(0, i, Api::kMalloc, 10, 0);
  w.FlushAll();
  std::string dir = ::testing::TempDir() + "/rotator_keep." + std::to_string(getpid());
  ASSERT_EQ(system(("rm -rf " + dir + " && mkdir -p " + dir).c_str()), 0);
  format::FileHeader header;
  std::memcpy(&header, w.bytes().data(), sizeof header);
  analyzer::LiveProcess live("x", header);
  TraceRotator rotator(dir + "/seg", RotateLimits{1024, 0, 2});
  const std::vector<size_t>& offsets = w.block_offsets();
  for (size_t i = 0; i < offsets.size(); ++i) {
    size_t end = i + 1 < offsets.size() ? offsets[i + 1] : w.bytes().size();
    ASSERT_TRUE(rotator.Append(w.bytes().substr(offsets[i], end - offsets[i]), live).ok());
  }
  ASSERT_EQ(rotator.segments().size(), 2u);
  EXPECT_EQ(access((dir + "/seg.1.hst").c_str(), F_OK), -1);
  EXPECT_EQ(access(rotator.segments().back().c_str(), F_OK), 0);
  EXPECT_NE(rotator.segments().back(), dir + "/seg.2.hst");
}

}  // namespace
}  // namespace heapsight::record
