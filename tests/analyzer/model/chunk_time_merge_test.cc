// tests/analyzer/model/chunk_time_merge_test.cc: ChunkTimeMerge gives an
// address-frees trace's events back in time order, whatever order its
// chunks are added in: below the watermark only, ties to the lower thread
// index, a thread's chunks by sequence, and each chunk begun and ended
// once.
#include "analyzer/model/chunk_time_merge.h"

#include <unistd.h>

#include <string>
#include <utility>
#include <vector>

#include "format/trace_reader.h"
#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer {
namespace {

using format::Api;
using format::RecordTag;
using testing::TestTraceWriter;

// The trace's chunks, in file order.
std::vector<std::vector<uint8_t>> Chunks(TestTraceWriter& w, const std::string& name) {
  const std::string path =
      ::testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".hst";
  EXPECT_TRUE(w.WriteFile(path));
  auto reader = format::TraceReader::Open(path);
  EXPECT_TRUE(reader.ok()) << reader.status();
  std::vector<std::vector<uint8_t>> chunks;
  std::vector<uint8_t> chunk;
  while ((*reader)->NextChunk(&chunk)) chunks.push_back(chunk);
  unlink(path.c_str());
  return chunks;
}

// Keeps what the merge gives out: (time, thread) of each hot event, and
// the begin/end calls.
class Recorder final : public ChunkTimeMerge::Sink {
 public:
  absl::Status OnChunkBegin(const format::ChunkHeader& h) override {
    log.push_back("begin " + std::to_string(h.thread_index) + "." + std::to_string(h.sequence));
    return absl::OkStatus();
  }
  absl::Status OnEvents(const Event* begin, const Event* end) override {
    for (const Event* e = begin; e != end; ++e) {
      if (e->tag == RecordTag::kAlloc || e->tag == RecordTag::kFree) {
        events.emplace_back(e->time_us, e->stream);
      }
    }
    return absl::OkStatus();
  }
  absl::Status OnChunkEnd(const format::ChunkHeader& h) override {
    log.push_back("end " + std::to_string(h.thread_index) + "." + std::to_string(h.sequence));
    return absl::OkStatus();
  }
  std::vector<std::pair<uint64_t, uint32_t>> events;  // (time, thread)
  std::vector<std::string> log;
};

TEST(ChunkTimeMergeTest, ChunksInAnyOrderComeOutInTimeOrder) {
  TestTraceWriter w;
  w.UseAddressFrees();
  // Thread 0: 10, 30, then a second chunk 50, 70. Thread 1: 20, 30, 40.
  w.AllocAt(0, 10, Api::kMalloc, 16, 0, 0x1000);
  w.AllocAt(0, 30, Api::kMalloc, 16, 0, 0x2000);
  w.Flush(0);
  w.set_base_time(0, 50);
  w.AllocAt(0, 50, Api::kMalloc, 16, 0, 0x3000);
  w.FreeAt(0, 70, 0x3000);
  w.Flush(0);
  w.set_base_time(1, 20);
  w.AllocAt(1, 20, Api::kMalloc, 16, 0, 0x4000);
  w.AllocAt(1, 30, Api::kMalloc, 16, 0, 0x5000);
  w.FreeAt(1, 40, 0x4000);
  w.Flush(1);
  std::vector<std::vector<uint8_t>> chunks = Chunks(w, "merge_order");
  ASSERT_EQ(chunks.size(), 3u);
  ChunkTimeMerge merge("merge_order");
  Recorder out;
  // Thread 0's second chunk first, then thread 1's, then thread 0's first.
  ASSERT_TRUE(merge.Add(chunks[1]).ok());
  ASSERT_TRUE(merge.Add(chunks[2]).ok());
  EXPECT_EQ(merge.newest_base_time_us(), 50u);  // thread 0's second chunk
  ASSERT_TRUE(merge.Add(chunks[0]).ok());
  EXPECT_EQ(merge.waiting_chunks(), 3u);
  // Below 35: 10, 20, 30 (thread 0 first at the tie), 30.
  ASSERT_TRUE(merge.Drain(35, out).ok());
  EXPECT_EQ(out.events, (std::vector<std::pair<uint64_t, uint32_t>>{
                            {10, 0}, {20, 1}, {30, 0}, {30, 1}}));
  EXPECT_EQ(merge.waiting_chunks(), 2u);  // thread 0's first is done
  ASSERT_TRUE(merge.DrainAll(out).ok());
  EXPECT_EQ(out.events, (std::vector<std::pair<uint64_t, uint32_t>>{
                            {10, 0}, {20, 1}, {30, 0}, {30, 1}, {40, 1}, {50, 0}, {70, 0}}));
  EXPECT_EQ(merge.waiting_chunks(), 0u);
  EXPECT_EQ(merge.chunks_added(), 3u);
  EXPECT_EQ(merge.events_decoded(), 7u);
  // Each chunk begun and ended once, a thread's in sequence order.
  EXPECT_EQ(out.log, (std::vector<std::string>{"begin 0.0", "begin 1.0", "end 0.0", "end 1.0",
                                               "begin 0.1", "end 0.1"}));
}

TEST(ChunkTimeMergeTest, NothingAtOrAboveTheWatermarkComesOut) {
  TestTraceWriter w;
  w.UseAddressFrees();
  w.AllocAt(0, 100, Api::kMalloc, 16, 0, 0x1000);
  w.AllocAt(0, 200, Api::kMalloc, 16, 0, 0x2000);
  std::vector<std::vector<uint8_t>> chunks = Chunks(w, "merge_watermark");
  ASSERT_EQ(chunks.size(), 1u);
  ChunkTimeMerge merge("merge_watermark");
  Recorder out;
  ASSERT_TRUE(merge.Add(chunks[0]).ok());
  ASSERT_TRUE(merge.Drain(100, out).ok());
  EXPECT_TRUE(out.events.empty());
  ASSERT_TRUE(merge.Drain(200, out).ok());
  EXPECT_EQ(out.events, (std::vector<std::pair<uint64_t, uint32_t>>{{100, 0}}));
  EXPECT_EQ(merge.waiting_chunks(), 1u);
  ASSERT_TRUE(merge.Drain(201, out).ok());
  EXPECT_EQ(out.events.size(), 2u);
  EXPECT_EQ(merge.waiting_chunks(), 0u);
}

TEST(ChunkTimeMergeTest, BadChunksAreDataLoss) {
  ChunkTimeMerge merge("bad");
  Recorder out;
  absl::Status s = merge.Add(std::vector<uint8_t>(8, 0));
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(s.message().find("too short"), std::string::npos) << s;
  // A header whose records are cut off.
  TestTraceWriter w;
  w.UseAddressFrees();
  w.AllocAt(0, 100, Api::kMalloc, 16, 0, 0x1000);
  std::vector<std::vector<uint8_t>> chunks = Chunks(w, "merge_bad");
  ASSERT_EQ(chunks.size(), 1u);
  std::vector<uint8_t> cut = chunks[0];
  cut.resize(cut.size() - 2);
  ASSERT_TRUE(merge.Add(cut).ok());
  s = merge.DrainAll(out);
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss) << s;
  EXPECT_NE(s.message().find("bad: "), std::string::npos) << s;
}

}  // namespace
}  // namespace heapsight::analyzer
