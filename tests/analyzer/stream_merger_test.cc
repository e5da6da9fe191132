// tests/analyzer/stream_merger_test.cc: records come out in time order across
// threads whatever the chunk order in the file; missing chunks are reported.
#include "analyzer/stream_merger.h"

#include <unistd.h>

#include <fstream>

#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer {
namespace {

using format::Api;

std::string Write(const std::string& name, const std::string& bytes) {
  std::string path = ::testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".hst";
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(StreamMergerTest, MergesThreadsByTimeThenThreadIndex) {
  testing::TestTraceWriter w(1, 0, 256);  // small chunks: several per thread
  for (uint64_t t = 0; t < 200; ++t) {
    w.Alloc(3, 10 * t + 5, Api::kMalloc, 3, 0);
    w.Alloc(1, 10 * t, Api::kMalloc, 1, 0);
    w.Alloc(2, 10 * t + 5, Api::kMalloc, 2, 0);  // ties with thread 3
    if (t % 7 == 0) w.Flush(2);
  }
  w.FlushAll();
  auto merger = StreamMerger::Open(Write("merge", w.bytes()));
  ASSERT_TRUE(merger.ok()) << merger.status();
  EXPECT_EQ((*merger)->stream_count(), 3u);
  EXPECT_GT((*merger)->block_count(), 6u);
  size_t stream = 0;
  uint64_t last_time = 0, count = 0, last_size = 0;
  while (const format::Record* r = (*merger)->Next(&stream)) {
    ASSERT_GE(r->time_us, last_time);
    if (r->time_us == last_time && count > 0) {
      EXPECT_GE(r->size, last_size);  // same time: lower thread index first
    }
    EXPECT_EQ((*merger)->thread_index(stream), r->size);
    last_time = r->time_us;
    last_size = r->size;
    ++count;
  }
  EXPECT_TRUE((*merger)->status().ok());
  EXPECT_EQ(count, 600u);
  EXPECT_TRUE((*merger)->warnings().empty());
}

TEST(StreamMergerTest, ReportsMissingChunks) {
  testing::TestTraceWriter w(1, 0, 256);
  for (uint64_t t = 0; t < 200; ++t) w.Alloc(1, t, Api::kMalloc, 1, 0);
  w.FlushAll();
  const auto& offsets = w.block_offsets();
  ASSERT_GE(offsets.size(), 3u);
  std::string bytes = w.bytes().substr(0, offsets[1]) + w.bytes().substr(offsets[2]);
  auto merger = StreamMerger::Open(Write("gap", bytes));
  ASSERT_TRUE(merger.ok());
  ASSERT_EQ((*merger)->warnings().size(), 1u);
  EXPECT_EQ((*merger)->warnings()[0], "thread 1: chunks 1..1 are missing");
}

}  // namespace
}  // namespace heapsight::analyzer
