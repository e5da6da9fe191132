// tests/analyzer/model/event_pipeline_test.cc: the threaded pipeline yields exactly
// the merger's order, stops cleanly early, and passes errors through.
#include "analyzer/model/event_pipeline.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <tuple>

#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer {
namespace {

using format::Api;

std::string BigTrace(const std::string& name) {
  testing::TestTraceWriter w(1, 0, 1024);
  w.Process(1, 0, "/bin/x", {"x", "y"});
  for (uint64_t i = 0; i < 60000; ++i) {
    uint32_t t = 1 + static_cast<uint32_t>(i % 3);
    uint64_t id = w.Alloc(t, i / 2, Api::kMalloc, i % 100, i % 7);
    if (i % 2 == 0) w.Free(t, i / 2 + 1, id);
    if (i % 10000 == 0) w.Marker(t, i / 2, "m" + std::to_string(i));
  }
  w.End(1, 100000);
  std::string path = ::testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".hst";
  EXPECT_TRUE(w.WriteFile(path));
  return path;
}

using Key = std::tuple<int, uint32_t, uint64_t, uint64_t, uint64_t, std::string>;

std::vector<Key> Collect(const std::string& path, uint64_t threaded_min_blocks) {
  auto merger = StreamMerger::Open(path);
  EXPECT_TRUE(merger.ok());
  EventPipeline pipeline(**merger, threaded_min_blocks);
  std::vector<Key> out;
  while (const Event* e = pipeline.Next()) {
    std::string text = e->full != nullptr ? std::string(e->full->marker_name) : "";
    out.emplace_back(static_cast<int>(e->tag), e->stream, e->time_us, e->id, e->size, text);
  }
  EXPECT_TRUE(pipeline.status().ok());
  return out;
}

TEST(EventPipelineTest, ThreadedOrderEqualsMergerOrder) {
  std::string path = BigTrace("pipe");
  std::vector<Key> threaded = Collect(path, 0);
  std::vector<Key> inline_order = Collect(path, UINT64_MAX);
  EXPECT_EQ(threaded.size(), 60000u + 30000u + 6u + 1u + 1u);
  EXPECT_EQ(threaded, inline_order);
}

// The batches are pointers into the decoded chunks, which the merger
// retires into the batches: every event of a batch must still hold its
// record when the consumer reads it late, after the producer has filled
// the queue behind it (so the merger has moved past, and retired, the
// chunks the batch points into) and the decode workers have decoded more.
TEST(EventPipelineTest, BatchEventsStayValidUntilTheNextCall) {
  std::string path = BigTrace("pipe_late");
  const std::vector<Key> all = Collect(path, UINT64_MAX);
  for (uint64_t min_blocks : {uint64_t{0}, UINT64_MAX}) {
    auto merger = StreamMerger::Open(path);
    ASSERT_TRUE(merger.ok());
    EventPipeline pipeline(**merger, min_blocks);
    std::vector<Key> got;
    EventPipeline::Run run;
    size_t batches = 0;
    while (pipeline.NextRun(&run)) {
      ASSERT_LT(run.begin, run.end);
      ++batches;
      // The producer runs ahead meanwhile (every 64th run: the merge of
      // this trace's threads hands out tens of thousands of short runs).
      if (batches % 64 == 1) usleep(2000);
      for (const Event* e = run.begin; e != run.end; ++e) {
        EXPECT_EQ(e->stream, run.stream);
        std::string text = e->full != nullptr ? std::string(e->full->marker_name) : "";
        got.emplace_back(static_cast<int>(e->tag), e->stream, e->time_us, e->id, e->size, text);
      }
    }
    EXPECT_TRUE(pipeline.status().ok());
    EXPECT_GT(batches, 5u);  // several batches, so chunks were retired in between
    EXPECT_EQ(got, all) << "threaded: " << (min_blocks == 0);
  }
}

// Abandoning the threaded pipeline after any number of events: the events
// read so far are exactly the merger's first ones, nothing has failed, and
// the destructor returns (it stops and joins the decoder threads; a hang
// here is caught by the test's timeout).
TEST(EventPipelineTest, EarlyStopDoesNotHang) {
  std::string path = BigTrace("pipe_stop");
  const std::vector<Key> all = Collect(path, UINT64_MAX);
  ASSERT_EQ(all.size(), 90008u);
  for (size_t i = 0; i < 20; ++i) {
    auto merger = StreamMerger::Open(path);
    ASSERT_TRUE(merger.ok());
    std::vector<Key> got;
    {
      EventPipeline pipeline(**merger, 0);
      while (got.size() < i * 1000) {
        const Event* e = pipeline.Next();
        if (e == nullptr) break;
        std::string text = e->full != nullptr ? std::string(e->full->marker_name) : "";
        got.emplace_back(static_cast<int>(e->tag), e->stream, e->time_us, e->id, e->size, text);
      }
      EXPECT_TRUE(pipeline.status().ok()) << i;
    }  // the pipeline stops here, mid-stream
    ASSERT_EQ(got.size(), i * 1000);
    EXPECT_TRUE(std::equal(got.begin(), got.end(), all.begin())) << "stopped after " << i * 1000;
  }
}

TEST(EventPipelineTest, CorruptBlockStopsWithAnError) {
  std::string path = BigTrace("pipe_bad");
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  // Corrupt the record bytes of a late block (after its block and chunk headers).
  size_t at = bytes.size() - 600;
  for (size_t i = 0; i < 40; ++i) bytes[at + i] = '\xff';  // varints that never end
  std::ofstream(path, std::ios::binary) << bytes;
  for (uint64_t min_blocks : {uint64_t{0}, UINT64_MAX}) {
    auto merger = StreamMerger::Open(path);
    ASSERT_TRUE(merger.ok());
    EventPipeline pipeline(**merger, min_blocks);
    size_t n = 0;
    while (pipeline.Next() != nullptr) ++n;
    EXPECT_FALSE(pipeline.status().ok());
    EXPECT_GT(n, 1000u);
  }
}

}  // namespace
}  // namespace heapsight::analyzer
