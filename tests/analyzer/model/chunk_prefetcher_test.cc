// tests/analyzer/model/chunk_prefetcher_test.cc: the merge reads chunks on a
// pool of decode threads and still yields exactly the serial path's records,
// in the same order, for traces of many threads, with wrong order
// predictions (times that go back) and with a corrupt chunk.
#include "analyzer/model/chunk_prefetcher.h"

#include <stdlib.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <algorithm>
#include <string>
#include <vector>

#include "analyzer/model/stream_merger.h"
#include "format/chunk_decoder.h"
#include "format/trace_reader.h"
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

struct Merged {
  std::string text;  // one line per record, like `heapsight dump`
  std::string status;
  int workers = 0;
  uint64_t out_of_order = 0;
  uint64_t records = 0;
};

Merged Merge(const std::string& path, int threads) {
  Merged m;
  auto merger = StreamMerger::Open(path, threads);
  if (!merger.ok()) {
    m.status = merger.status().ToString();
    return m;
  }
  size_t stream = 0;
  char line[256];
  while (const Event* r = (*merger)->Next(&stream)) {
    std::snprintf(line, sizeof line,
                  "t%u s%u %u %" PRIu64 " api=%u code=%u size=%" PRIu64 " stack=%" PRIu64
                  " id=%" PRIx64 " old=%" PRIx64 " value=%" PRIu64,
                  (*merger)->thread_index(stream), r->stream, static_cast<unsigned>(r->tag),
                  r->time_us, static_cast<unsigned>(r->api), static_cast<unsigned>(r->code),
                  r->size, r->stack, r->id, r->old_id, r->value);
    m.text += line;
    if (r->full != nullptr) {
      // The rare records' strings: copies owned by the decoded chunk.
      m.text += " \"" + std::string(r->full->marker_name) + "\" \"" +
                std::string(r->full->module.path) + "\"";
    }
    m.text += "\n";
    ++m.records;
  }
  m.status = (*merger)->status().ToString();
  m.workers = (*merger)->decode_workers();
  m.out_of_order = (*merger)->out_of_order_chunks();
  return m;
}

// 24 threads, small zstd chunks, records of every allocation kind, times
// that tie across threads; `backwards` makes some threads' clocks jump back
// between chunks so the predicted chunk order is wrong for them.
std::string ManyThreadTrace(bool backwards, testing::TestTraceWriter* writer = nullptr) {
  testing::TestTraceWriter local(1, 0, 300);
  testing::TestTraceWriter& w = writer != nullptr ? *writer : local;
  w.set_zstd(true);
  constexpr uint32_t kThreads = 24;
  std::vector<std::vector<uint64_t>> live(kThreads + 1);
  for (uint64_t step = 0; step < 1500; ++step) {
    for (uint32_t t = 1; t <= kThreads; ++t) {
      uint64_t time = 4 * step + (t * step) % 4;  // grows per thread; ties across threads
      if (backwards && t % 5 == 0 && step % 97 == 50) time = step / 2;
      w.set_base_time(t, time);  // as the preload: a chunk's start time
      if (step % 11 == 0) w.StackNode(t, step * 100 + t, step == 0 ? 0 : step * 100, 0x4000 + t);
      uint64_t id = w.Alloc(t, time, step % 3 == 0 ? Api::kNew : Api::kMalloc, 16 + step % 97,
                            step % 11 == 0 ? step * 100 + t : 0);
      live[t].push_back(id);
      if (step % 4 == 1) {
        w.Free(t, time, live[t].front());
        live[t].erase(live[t].begin());
      }
      if (step % 9 == 2) {
        uint64_t old = live[t].back();
        live[t].back() = w.Realloc(t, time, old, 200 + step % 13, 0);
      }
      // Rare records with strings: their full copies must travel with
      // their events.
      if ((step + t) % 151 == 0) w.Marker(t, time, "m" + std::to_string(step * 100 + t));
      if ((step + t) % 499 == 0) {
        w.Module(t, time, step * 100 + t, 0x10000 * t, "/lib/mod" + std::to_string(step), "id",
                 {});
      }
      if ((step + t) % 37 == 0) w.Flush(t);
    }
  }
  w.FlushAll();
  return w.bytes();
}

TEST(ChunkPrefetcherTest, ParallelMergeEqualsSerialByteForByte) {
  std::string path = Write("many_threads", ManyThreadTrace(false));
  Merged serial = Merge(path, 1);
  ASSERT_EQ(serial.status, "OK");
  EXPECT_EQ(serial.workers, 0);
  // 24 threads x 1500 steps: allocations, frees, reallocs, stack nodes.
  // 24 threads x 1500 steps: allocations, frees, reallocs, stack nodes,
  // and 230 markers and 72 modules.
  EXPECT_EQ(serial.records, 24u * (1500 + 375 + 167 + 137) + 230 + 72);
  for (int threads : {2, 3, 4, 8}) {
    Merged parallel = Merge(path, threads);
    EXPECT_EQ(parallel.status, "OK");
    EXPECT_EQ(parallel.workers, threads);
    // Monotonic times: the predicted order is the merge's order.
    EXPECT_EQ(parallel.out_of_order, 0u) << threads;
    EXPECT_TRUE(parallel.text == serial.text) << threads << " threads differ";
  }
}

// The merge's order computed without the merger: every block decoded with
// format::ChunkDecoder in file order, each thread's records in chunk
// sequence order, then a stable sort by (time, thread index); with times
// that only grow within a thread, that is the merge's definition.
std::string Reference(const std::string& bytes, const std::vector<size_t>& offsets) {
  auto reader = format::TraceReader::Open(::testing::TempDir() + "/many_threads." +
                                          std::to_string(getpid()) + ".hst");
  EXPECT_TRUE(reader.ok());
  struct Line {
    uint64_t time;
    uint32_t thread;
    uint64_t sequence;
    size_t index;
    std::string text;
  };
  std::vector<Line> lines;
  std::vector<uint8_t> chunk;
  for (size_t offset : offsets) {
    EXPECT_TRUE((*reader)->ReadChunkAt(offset, &chunk).ok());
    format::ChunkDecoder d(chunk.data(), chunk.size());
    format::Record r;
    size_t index = 0;
    while (d.Next(&r)) {
      char line[256];
      std::snprintf(line, sizeof line, "t%u %u %" PRIu64 " size=%" PRIu64 " id=%" PRIx64,
                    d.header().thread_index, static_cast<unsigned>(r.tag), r.time_us,
                    r.tag == format::RecordTag::kStackNode ? r.stack_node.ip
                    : r.tag == format::RecordTag::kFree    ? 0
                                                           : r.size,
                    r.tag == format::RecordTag::kStackNode ? 0 : r.id);
      std::string text = line;
      if (r.tag == format::RecordTag::kMarker) text += " " + std::string(r.marker_name);
      if (r.tag == format::RecordTag::kModule) text += " " + std::string(r.module.path);
      lines.push_back({r.time_us, d.header().thread_index, d.header().sequence, index++, text});
    }
    EXPECT_TRUE(d.ok());
  }
  std::stable_sort(lines.begin(), lines.end(), [](const Line& a, const Line& b) {
    if (a.time != b.time) return a.time < b.time;
    if (a.thread != b.thread) return a.thread < b.thread;
    if (a.sequence != b.sequence) return a.sequence < b.sequence;
    return a.index < b.index;
  });
  std::string out;
  for (const Line& l : lines) out += l.text + "\n";
  (void)bytes;
  return out;
}

TEST(ChunkPrefetcherTest, MergeEqualsIndependentReference) {
  // The same trace as above, its blocks written in flush order.
  testing::TestTraceWriter w(1, 0, 300);
  std::string bytes = ManyThreadTrace(false, &w);
  std::string path = Write("many_threads", bytes);
  std::string want = Reference(bytes, w.block_offsets());
  for (int threads : {1, 2, 8}) {
    auto merger = StreamMerger::Open(path, threads);
    ASSERT_TRUE(merger.ok());
    std::string got;
    size_t stream = 0;
    while (const Event* e = (*merger)->Next(&stream)) {
      char line[256];
      std::snprintf(line, sizeof line, "t%u %u %" PRIu64 " size=%" PRIu64 " id=%" PRIx64,
                    (*merger)->thread_index(stream), static_cast<unsigned>(e->tag), e->time_us,
                    // A free's size is left out: one paired in its chunk
                    // carries its block's (chunk_pairing.h).
                    e->tag == format::RecordTag::kFree ? 0 : e->size,
                    e->tag == format::RecordTag::kStackNode ? 0 : e->id);
      got += line;
      if (e->tag == format::RecordTag::kMarker) got += " " + std::string(e->full->marker_name);
      if (e->tag == format::RecordTag::kModule) got += " " + std::string(e->full->module.path);
      got += "\n";
    }
    ASSERT_TRUE((*merger)->status().ok());
    EXPECT_TRUE(got == want) << threads << " decode threads";
  }
}

TEST(ChunkPrefetcherTest, WrongPredictionsFallBackAndKeepTheOrder) {
  std::string path = Write("backwards", ManyThreadTrace(true));
  Merged serial = Merge(path, 1);
  ASSERT_EQ(serial.status, "OK");
  Merged parallel = Merge(path, 3);
  EXPECT_EQ(parallel.status, "OK");
  EXPECT_EQ(parallel.workers, 3);
  EXPECT_GT(parallel.out_of_order, 0u);  // the prediction was wrong for some chunks
  EXPECT_TRUE(parallel.text == serial.text);
  EXPECT_EQ(parallel.records, serial.records);
}

// A chunk read on the caller's thread (not claimed by a worker yet) is
// decoded into a recycled chunk's array, not a fresh one: fresh arrays are
// mapped anew and fault in every page. With no worker threads every Take is
// such a read, so the test has no race with a worker claiming the array.
TEST(ChunkPrefetcherTest, FallbackReadReusesARecycledArray) {
  testing::TestTraceWriter w(1, 0, 256);
  w.set_zstd(true);
  for (uint64_t t = 0; t < 4000; ++t) w.Alloc(1, t, Api::kMalloc, 16 + t % 7, 0);
  w.FlushAll();
  std::string path = Write("fallback_reuse", w.bytes());
  std::vector<uint64_t> offsets(w.block_offsets().begin(), w.block_offsets().end());
  ASSERT_GE(offsets.size(), 5u);
  auto prefetcher = ChunkPrefetcher::Start(path, offsets, /*workers=*/0, /*window=*/1);
  ASSERT_TRUE(prefetcher.ok()) << prefetcher.status();
  auto reader = format::TraceReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  std::vector<uint8_t> scratch;

  DecodedChunk first;
  ASSERT_TRUE((*prefetcher)->Take(0, **reader, scratch, &first).ok());
  EXPECT_EQ((*prefetcher)->fallback_reads(), 1u);
  ASSERT_FALSE(first.events.empty());
  const Event* array = first.events.data();
  const size_t capacity = first.events.capacity();
  (*prefetcher)->Recycle(std::move(first));

  DecodedChunk fallback;  // no arrays of its own
  ASSERT_TRUE((*prefetcher)->Take(4, **reader, scratch, &fallback).ok());
  EXPECT_EQ((*prefetcher)->fallback_reads(), 2u);
  EXPECT_EQ(fallback.events.data(), array);
  EXPECT_EQ(fallback.events.capacity(), capacity);
  // The same events a fresh decode gives.
  DecodedChunk fresh;
  ASSERT_TRUE(ChunkPrefetcher::ReadAndDecode(**reader, offsets[4], scratch, &fresh).ok());
  ASSERT_EQ(fallback.events.size(), fresh.events.size());
  for (size_t i = 0; i < fresh.events.size(); ++i) {
    EXPECT_EQ(fallback.events[i].id, fresh.events[i].id);
    EXPECT_EQ(fallback.events[i].time_us, fresh.events[i].time_us);
    EXPECT_EQ(fallback.events[i].size, fresh.events[i].size);
  }
}

TEST(ChunkPrefetcherTest, CorruptChunkGivesTheSerialError) {
  testing::TestTraceWriter w(1, 0, 256);
  w.set_zstd(true);
  for (uint64_t t = 0; t < 20000; ++t) w.Alloc(1 + t % 3, t, Api::kMalloc, 1, 0);
  w.FlushAll();
  std::string bad = w.bytes();
  bad[w.block_offsets()[60] + sizeof(format::BlockHeader) + 4] ^= 0x55;
  std::string path = Write("corrupt_payload", bad);
  Merged serial = Merge(path, 1);
  Merged parallel = Merge(path, 4);
  EXPECT_NE(serial.status, "OK");
  EXPECT_EQ(parallel.status, serial.status);
  EXPECT_TRUE(parallel.text == serial.text);  // the same records up to the error
}

TEST(ChunkPrefetcherTest, ThreadCountFromEnvironment) {
  setenv("HEAPSIGHT_DECODE_THREADS", "3", 1);
  EXPECT_EQ(DecodeThreadsFromEnvironment(), 3);
  setenv("HEAPSIGHT_DECODE_THREADS", "1", 1);
  EXPECT_EQ(DecodeThreadsFromEnvironment(), 1);
  setenv("HEAPSIGHT_DECODE_THREADS", "zero", 1);  // ignored: every core
  EXPECT_GE(DecodeThreadsFromEnvironment(), 1);
  unsetenv("HEAPSIGHT_DECODE_THREADS");
}

}  // namespace
}  // namespace heapsight::analyzer
