// tests/analyzer/model/stream_merger_test.cc: records come out in time order across
// threads whatever the chunk order in the file; missing chunks are reported.
#include "analyzer/model/stream_merger.h"
#include "analyzer/model/trace_model.h"

#include <unistd.h>

#include <fstream>
#include <string>
#include <tuple>

#include "absl/strings/match.h"
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
  while (const Event* r = (*merger)->Next(&stream)) {
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

// The runs NextRun hands out: (thread index, events) each, and every event
// of a run is of the run's stream, in time order across runs.
std::vector<std::pair<uint32_t, size_t>> Runs(const std::string& path, int decode_threads) {
  std::vector<std::pair<uint32_t, size_t>> runs;
  auto merger = StreamMerger::Open(path, decode_threads);
  EXPECT_TRUE(merger.ok()) << merger.status();
  if (!merger.ok()) return runs;
  StreamMerger::Run run;
  uint64_t last_time = 0;
  while ((*merger)->NextRun(&run)) {
    EXPECT_LT(run.begin, run.end);
    for (const Event* e = run.begin; e != run.end; ++e) {
      EXPECT_EQ(e->stream, run.stream);
      EXPECT_GE(e->time_us, last_time);
      last_time = e->time_us;
    }
    runs.emplace_back((*merger)->thread_index(run.stream), run.end - run.begin);
  }
  EXPECT_TRUE((*merger)->status().ok());
  return runs;
}

using RunList = std::vector<std::pair<uint32_t, size_t>>;

// A run goes on while the stream's next event is not later than every other
// stream's key, and stops at a tie with a lower thread index: exactly the
// event-by-event merge's order (time, then thread index), in maximal runs.
TEST(StreamMergerTest, RunsStopAtTheNextStreamsKeyAndTies) {
  {
    testing::TestTraceWriter w(1, 0, 4096);  // one chunk per thread
    for (uint64_t t : {1, 2, 2, 2, 3, 6}) w.Alloc(1, t, Api::kMalloc, 1, 0);
    for (uint64_t t : {2, 2, 3, 5}) w.Alloc(2, t, Api::kMalloc, 2, 0);
    for (uint64_t t : {0, 2, 6}) w.Alloc(3, t, Api::kMalloc, 3, 0);
    w.FlushAll();
    std::string path = Write("runs_ties", w.bytes());
    // 3@0 | 1@1 1@2 1@2 1@2 (thread 1 wins the ties at 2) | 2@2 2@2 (and
    // wins them over thread 3) | 3@2 | 1@3 (wins over 2@3) | 2@3 2@5 |
    // 1@6 | 3@6.
    RunList want = {{3, 1}, {1, 4}, {2, 2}, {3, 1}, {1, 1}, {2, 2}, {1, 1}, {3, 1}};
    EXPECT_EQ(Runs(path, 1), want);
  }
  {
    // A higher thread index loses the tie: thread 2's run at 1 stops before
    // its 5s, which come after thread 1's.
    testing::TestTraceWriter w(1, 0, 4096);
    for (uint64_t t : {5, 5}) w.Alloc(1, t, Api::kMalloc, 1, 0);
    for (uint64_t t : {1, 5, 5}) w.Alloc(2, t, Api::kMalloc, 2, 0);
    w.FlushAll();
    RunList want = {{2, 1}, {1, 2}, {2, 2}};
    EXPECT_EQ(Runs(Write("runs_lose", w.bytes()), 1), want);
  }
  {
    // One thread: a run per chunk, whatever the decode threads.
    testing::TestTraceWriter w(1, 0, 256);
    for (uint64_t t = 0; t < 3000; ++t) w.Alloc(1, t / 3, Api::kMalloc, 1, 0);
    w.FlushAll();
    std::string path = Write("runs_one", w.bytes());
    const size_t blocks = w.block_offsets().size();
    ASSERT_GT(blocks, 8u);
    for (int threads : {1, 2}) {
      RunList runs = Runs(path, threads);
      EXPECT_EQ(runs.size(), blocks) << threads;
      size_t events = 0;
      for (const auto& [thread, n] : runs) events += n;
      EXPECT_EQ(events, 3000u);
    }
  }
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

TEST(StreamMergerTest, BigTraceIndexErrorsAndTruncation) {
  testing::TestTraceWriter w(1, 0, 256);
  w.set_zstd(true);
  for (uint64_t t = 0; t < 20000; ++t) w.Alloc(1 + t % 2, t, Api::kMalloc, 1, 0);
  w.FlushAll();
  const auto& offsets = w.block_offsets();
  ASSERT_GE(offsets.size(), 200u);  // the two-thread index path
  auto whole = StreamMerger::Open(Write("big", w.bytes()));
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ((*whole)->block_count(), offsets.size());
  EXPECT_FALSE((*whole)->truncated());

  // Two corrupt block headers: the first one in file order is reported
  // while indexing (which reads headers only).
  std::string bad = w.bytes();
  bad[offsets[150]] ^= 0x40;
  bad[offsets[41]] ^= 0x55;  // block 41's magic
  std::string path = Write("big_bad", bad);
  auto corrupt = StreamMerger::Open(path);
  ASSERT_FALSE(corrupt.ok());
  EXPECT_TRUE(absl::StrContains(corrupt.status().message(),
                                "no block header at offset " + std::to_string(offsets[41])))
      << corrupt.status();

  // A corrupt payload is found when its chunk is read, and named.
  std::string bad_payload = w.bytes();
  bad_payload[offsets[41] + sizeof(format::BlockHeader) + 4] ^= 0x55;
  auto payload = AnalyzeTrace(Write("big_bad_payload", bad_payload));
  ASSERT_FALSE(payload.ok());
  EXPECT_TRUE(absl::StrContains(payload.status().message(),
                                "block at offset " + std::to_string(offsets[41])))
      << payload.status();

  // Cut inside block 100: 100 whole blocks, truncated.
  auto cut = StreamMerger::Open(Write("big_cut", w.bytes().substr(0, offsets[100] + 30)));
  ASSERT_TRUE(cut.ok()) << cut.status();
  EXPECT_TRUE((*cut)->truncated());
  EXPECT_EQ((*cut)->block_count(), 100u);
}

// A run's events (pointers into a decoded chunk) stay valid until the next
// NextRun call even when the decode workers have run far ahead meanwhile:
// the analysis reads each run while the workers decode (and recycle arrays
// of) later chunks. Read with decode workers and pauses, every event equals
// the serial merge's, and a bad payload late in the trace stops the merge
// with an error after the good events.
TEST(StreamMergerTest, RunEventsStayValidUntilTheNextCall) {
  testing::TestTraceWriter w(1, 0, 1024);
  w.Process(1, 0, "/bin/x", {"x", "y"});
  for (uint64_t i = 0; i < 60000; ++i) {
    uint32_t t = 1 + static_cast<uint32_t>(i % 3);
    uint64_t id = w.Alloc(t, i / 2, Api::kMalloc, i % 100, i % 7);
    if (i % 2 == 0) w.Free(t, i / 2 + 1, id);
    if (i % 10000 == 0) w.Marker(t, i / 2, "m" + std::to_string(i));
  }
  w.End(1, 100000);
  w.FlushAll();
  using Key = std::tuple<int, uint32_t, uint64_t, uint64_t, uint64_t, std::string>;
  auto key = [](const Event& e) {
    std::string text = e.full != nullptr ? std::string(e.full->marker_name) : "";
    return Key(static_cast<int>(e.tag), e.stream, e.time_us, e.id, e.size, text);
  };
  const std::string path = Write("runs_valid", w.bytes());
  std::vector<Key> serial;
  {
    auto merger = StreamMerger::Open(path, 1);  // serial: decoded on this thread
    ASSERT_TRUE(merger.ok()) << merger.status();
    EXPECT_EQ((*merger)->decode_workers(), 0);
    size_t stream = 0;
    while (const Event* e = (*merger)->Next(&stream)) serial.push_back(key(*e));
    ASSERT_TRUE((*merger)->status().ok());
  }
  ASSERT_EQ(serial.size(), 60000u + 30000u + 6u + 1u + 1u);

  auto merger = StreamMerger::Open(path, 2);
  ASSERT_TRUE(merger.ok()) << merger.status();
  ASSERT_EQ((*merger)->decode_workers(), 2);
  StreamMerger::Run run;
  std::vector<Key> got;
  size_t runs = 0;
  while ((*merger)->NextRun(&run)) {
    ASSERT_LT(run.begin, run.end);
    // The workers run ahead meanwhile (every 64th run: this trace's three
    // threads give tens of thousands of short runs).
    if (++runs % 64 == 1) usleep(2000);
    for (const Event* e = run.begin; e != run.end; ++e) {
      EXPECT_EQ(e->stream, run.stream);
      got.push_back(key(*e));
    }
  }
  EXPECT_TRUE((*merger)->status().ok()) << (*merger)->status();
  EXPECT_GT(runs, 1000u);
  EXPECT_EQ(got, serial);

  // Varints that never end, late in the trace (past its block and chunk
  // headers): the merge stops with an error after the earlier events.
  std::string bad = w.bytes();
  for (size_t i = 0; i < 40; ++i) bad[bad.size() - 600 + i] = '\xff';
  for (int threads : {1, 2}) {
    auto broken = StreamMerger::Open(Write("runs_bad", bad), threads);
    ASSERT_TRUE(broken.ok()) << broken.status();
    size_t stream = 0, n = 0;
    while ((*broken)->Next(&stream) != nullptr) ++n;
    EXPECT_FALSE((*broken)->status().ok()) << threads;
    EXPECT_GT(n, 1000u) << threads;
  }
}

}  // namespace
}  // namespace heapsight::analyzer
