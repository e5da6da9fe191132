// tests/cli/record/trace_rotator_test.cc: TraceRotator on a synthetic
// trace: segments of the size asked for, each analyzed alone with the
// allocations of its own blocks, every free matched (the live blocks of the
// cut come back as inherited ones; a cut waits while a free read before
// its allocation waits for it, at most kMaxDeferredBlocks blocks), the
// last segment's blocks not freed equal to the whole trace's, every closed
// segment ending with a kEnd(kRotated) chunk that reads as complete,
// --rotate-keep.
#include "cli/record/trace_rotator.h"

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "analyzer/model/live_process.h"
#include "analyzer/model/trace_model.h"
#include "analyzer/report/text_report.h"
#include "format/chunk_decoder.h"
#include "format/trace_reader.h"
#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::record {
namespace {

using format::Api;
using heapsight::testing::TestTraceWriter;

// An empty directory of its own for one test (removed first if a run before
// left it); a failure throws, which fails the test.
std::string FreshDir(const std::string& name) {
  const std::string dir = ::testing::TempDir() + "/" + name + "." + std::to_string(getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// The trace file's blocks as TestTraceWriter wrote them, in file order.
std::vector<std::string> Blocks(const TestTraceWriter& w) {
  const std::vector<size_t>& offsets = w.block_offsets();
  std::vector<std::string> blocks;
  for (size_t i = 0; i < offsets.size(); ++i) {
    size_t end = i + 1 < offsets.size() ? offsets[i + 1] : w.bytes().size();
    blocks.push_back(w.bytes().substr(offsets[i], end - offsets[i]));
  }
  return blocks;
}

// Hands the blocks to the rotator in `order` (every block, file order if
// empty), as record --serve does: each block is appended, then (with a
// reader) its chunk is applied to `*live`, so the rotator sees the process
// as of the blocks before it. The first error, if any.
absl::Status Feed(const TestTraceWriter& w, const std::vector<size_t>& order,
                  format::TraceReader* reader, analyzer::LiveProcess* live,
                  TraceRotator* rotator) {
  const std::vector<std::string> blocks = Blocks(w);
  std::vector<size_t> indexes = order;
  if (indexes.empty()) {
    for (size_t i = 0; i < blocks.size(); ++i) indexes.push_back(i);
  }
  std::vector<uint8_t> chunk;
  for (size_t i : indexes) {
    if (absl::Status s = rotator->Append(blocks[i], *live); !s.ok()) return s;
    if (reader == nullptr) continue;
    if (absl::Status s = reader->ReadChunkAt(w.block_offsets()[i], &chunk); !s.ok()) return s;
    if (absl::Status s = live->ApplyChunk(chunk); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// `w`'s trace written whole, then rotated every 8 KiB as record --serve
// does (Feed), and what its segments add up to. Every segment reads alone:
// its process, and no warning (a missing chunk: a preamble's sequence
// numbers had a gap before the closing chunk; an event the pairing had to
// force).
struct Rotated {
  std::string whole;
  std::vector<std::string> segments;
  uint64_t deferred_blocks = 0;
  uint64_t allocs = 0;
  uint64_t frees = 0;
  uint64_t unmatched = 0;
};
void RotateAndAddUp(TestTraceWriter& w, const std::string& name, Rotated* out) {
  const std::string dir = FreshDir(name);
  out->whole = dir + "/whole.hst";
  ASSERT_TRUE(w.WriteFile(out->whole));
  auto reader = format::TraceReader::Open(out->whole);
  ASSERT_TRUE(reader.ok());
  analyzer::LiveProcess live(out->whole, (*reader)->header());
  TraceRotator rotator(dir + "/seg", RotateLimits{8 << 10, 0, 0});
  ASSERT_TRUE(Feed(w, {}, reader->get(), &live, &rotator).ok());
  out->segments.assign(rotator.segments().begin(), rotator.segments().end());
  out->deferred_blocks = rotator.deferred_blocks();
  ASSERT_GE(out->segments.size(), 3u);
  analyzer::AnalyzeOptions options;
  options.classify_runtime = false;
  for (const std::string& segment : out->segments) {
    absl::StatusOr<analyzer::ProcessProfile> p = analyzer::AnalyzeTrace(segment, options);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->exe, "/bin/prog") << segment;
    EXPECT_EQ(p->warnings, std::vector<std::string>{}) << segment;
    out->allocs += p->totals.allocs;
    out->frees += p->totals.frees;
    out->unmatched += p->totals.unmatched_frees;
  }
}

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
  Rotated r;
  RotateAndAddUp(w, "rotator", &r);
  if (HasFatalFailure()) return;
  analyzer::AnalyzeOptions options;
  options.classify_runtime = false;
  absl::StatusOr<analyzer::ProcessProfile> all = analyzer::AnalyzeTrace(r.whole, options);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(r.allocs, all->totals.allocs);
  EXPECT_EQ(r.frees, all->totals.frees);
  // The synthetic trace has frees read before their allocation (another
  // thread's chunk comes first): no cut falls between the two, so no
  // segment has an unmatched free (before flaky23: 2026-12-07, a cut that
  // fell there left them unmatched in the segment before it).
  EXPECT_EQ(r.unmatched, 0u);
  EXPECT_EQ(all->totals.unmatched_frees, 0u);
  EXPECT_GT(r.deferred_blocks, 0u);  // some cut had to wait
  absl::StatusOr<analyzer::ProcessProfile> last =
      analyzer::AnalyzeTrace(r.segments.back(), options);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->totals.leaked_bytes, all->totals.leaked_bytes);
  EXPECT_EQ(last->totals.leaked_blocks, all->totals.leaked_blocks);
  EXPECT_EQ(last->StackIps(2), (std::vector<uint64_t>{0x2000, 0x1000}));
}

// Address frees (version 6): LiveProcess holds the last window of events
// in its time merge; a due cut has it apply them first, so each segment's
// preamble names (by address) every block live at the cut. Three threads
// free each other's blocks and reuse 64 addresses (hand-offs), over 3 s of
// trace time (more than the 2 s window: the merge also drains as chunks
// come). The segments add up to the whole trace's numbers.
TEST(TraceRotatorTest, AddressFreesSegmentsAddUp) {
  TestTraceWriter w(4242, 1, 1024);
  w.UseAddressFrees();
  w.Process(0, 0, "/bin/prog", {"prog"});
  w.StackNode(0, 1, 0, 0x1000);
  w.StackNode(0, 2, 1, 0x2000);
  auto address = [](int i) { return uint64_t{0x100000} + static_cast<uint64_t>(i % 64) * 64; };
  for (int i = 0; i < 3000; ++i) {
    const uint64_t time = 10 + static_cast<uint64_t>(i) * 1000;
    w.AllocAt(static_cast<uint32_t>(i % 3), time, Api::kMalloc, 100 + i % 7, 1 + i % 2,
              address(i));
    if (i >= 10) w.FreeAt(static_cast<uint32_t>((i + 1) % 3), time + 1, address(i - 10));
  }
  Rotated r;
  RotateAndAddUp(w, "rotator_address", &r);
  if (HasFatalFailure()) return;
  analyzer::AnalyzeOptions options;
  options.classify_runtime = false;
  absl::StatusOr<analyzer::ProcessProfile> all = analyzer::AnalyzeTrace(r.whole, options);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->totals.allocs, 3000u);
  EXPECT_EQ(all->totals.frees, 2990u);
  EXPECT_EQ(all->warnings, std::vector<std::string>{});
  EXPECT_EQ(r.allocs, 3000u);
  EXPECT_EQ(r.frees, 2990u);
  EXPECT_EQ(r.unmatched, 0u);
  absl::StatusOr<analyzer::ProcessProfile> last =
      analyzer::AnalyzeTrace(r.segments.back(), options);
  ASSERT_TRUE(last.ok());
  EXPECT_EQ(last->totals.leaked_blocks, 10u);
  EXPECT_EQ(last->totals.leaked_bytes, all->totals.leaked_bytes);
}

// A segment the rotator closed: its last block is a kPreambleThread chunk
// with one record, kEnd(kRotated), timed at or after every record of the
// segment; the analyzer reads it as complete (no "cut short", no leaks).
TEST(TraceRotatorTest, ClosedSegmentsEndWithRotatedEndRecord) {
  TestTraceWriter w(4242, 1, 1024);
  w.Process(0, 0, "/bin/prog", {"prog"});
  w.StackNode(0, 1, 0, 0x1000);
  for (int i = 0; i < 2000; ++i) w.Alloc(i % 2, 10 + i, Api::kMalloc, 100, 1);
  w.End(0, 5000);
  const std::string dir = FreshDir("rotator_end");
  std::string whole = dir + "/whole.hst";
  ASSERT_TRUE(w.WriteFile(whole));
  auto reader = format::TraceReader::Open(whole);
  ASSERT_TRUE(reader.ok());
  analyzer::LiveProcess live(whole, (*reader)->header());
  TraceRotator rotator(dir + "/seg", RotateLimits{4 << 10, 0, 0});
  ASSERT_TRUE(Feed(w, {}, reader->get(), &live, &rotator).ok());
  ASSERT_GE(rotator.segments().size(), 3u);
  std::vector<std::string> segments(rotator.segments().begin(), rotator.segments().end());
  analyzer::AnalyzeOptions options;
  options.classify_runtime = false;
  uint64_t live_blocks = 0;  // carried from segment to segment: all still live
  for (size_t n = 0; n < segments.size(); ++n) {
    const std::string& segment = segments[n];
    bool last = n + 1 == segments.size();
    auto r = format::TraceReader::Open(segment);
    ASSERT_TRUE(r.ok()) << segment;
    uint64_t newest = 0;
    format::Record record;
    format::Record end_record;
    uint32_t last_thread = 0;
    size_t last_count = 0;
    std::vector<uint8_t> chunk;
    while ((*r)->NextChunk(&chunk)) {
      format::ChunkDecoder d(chunk.data(), chunk.size());
      ASSERT_TRUE(d.ok()) << d.error();
      last_thread = d.header().thread_index;
      last_count = 0;
      while (d.Next(&record)) {
        ++last_count;
        if (record.tag == format::RecordTag::kEnd) {
          end_record = record;
        } else {
          newest = std::max(newest, record.time_us);
        }
      }
      ASSERT_TRUE(d.ok()) << d.error();
    }
    ASSERT_TRUE((*r)->status().ok()) << segment;
    EXPECT_FALSE((*r)->truncated()) << segment;
    EXPECT_EQ(end_record.tag, format::RecordTag::kEnd) << segment;
    EXPECT_EQ(end_record.end.reason,
              last ? format::EndReason::kExit : format::EndReason::kRotated) << segment;
    EXPECT_GE(end_record.time_us, newest) << segment;
    if (!last) {
      EXPECT_EQ(last_thread, TraceRotator::kPreambleThread) << segment;
      EXPECT_EQ(last_count, 1u) << segment;
    }

    absl::StatusOr<analyzer::ProcessProfile> p = analyzer::AnalyzeTrace(segment, options);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_TRUE(p->complete) << segment;
    EXPECT_FALSE(p->truncated) << segment;
    EXPECT_EQ(p->EndedInRotation(), !last) << segment;
    live_blocks += p->totals.allocs;
    EXPECT_EQ(p->totals.leaked_blocks, live_blocks) << segment;
    std::string text = analyzer::FormatReport({&*p}, analyzer::ReportOptions{});
    EXPECT_EQ(text.find("CUT SHORT"), std::string::npos) << text;
    if (!last) {
      std::string next = "seg." + std::to_string(n + 2) + ".hst";
      EXPECT_NE(text.find("segment closed by rotation; the run continues in " + next),
                std::string::npos) << text;
      EXPECT_NE(text.find("live at the segment's end: "), std::string::npos) << text;
      EXPECT_EQ(text.find("not freed at exit"), std::string::npos) << text;
    }
  }
  EXPECT_EQ(live_blocks, 2000u);
}

// A free whose allocation stays in a thread's partial chunk until the end
// (a quiet thread): each due cut waits kMaxDeferredBlocks blocks, not
// for ever; the first segment counts the free as unmatched, and the
// preamble of the next repeats it, so the last segment pairs it.
TEST(TraceRotatorTest, CutWaitsForAFreesAllocationAtMostMaxDeferredBlocks) {
  TestTraceWriter w(4242, 1, 512);
  w.Process(0, 0, "/bin/prog", {"prog"});
  w.StackNode(0, 1, 0, 0x1000);
  // Thread 1's chunk is written last (WriteFile flushes it): its block's
  // free on thread 2 is read first.
  uint64_t quiet = w.Alloc(1, 1, Api::kMalloc, 4096, 1);
  w.Free(2, 2, quiet);
  for (int i = 0; i < 40000; ++i) w.Alloc(2, 3 + i, Api::kMalloc, 16, 1);
  const std::string dir = FreshDir("rotator_wait");
  std::string whole = dir + "/whole.hst";
  ASSERT_TRUE(w.WriteFile(whole));
  auto reader = format::TraceReader::Open(whole);
  ASSERT_TRUE(reader.ok());
  analyzer::LiveProcess live(whole, (*reader)->header());
  TraceRotator rotator(dir + "/seg", RotateLimits{1024, 0, 0});
  ASSERT_GT(w.block_offsets().size(), 2 * TraceRotator::kMaxDeferredBlocks + 4);
  ASSERT_TRUE(Feed(w, {}, reader->get(), &live, &rotator).ok());
  std::vector<std::string> segments(rotator.segments().begin(), rotator.segments().end());
  // Every cut but the last waited exactly kMaxDeferredBlocks blocks (the
  // free waited until thread 1's chunk, the trace's last block).
  ASSERT_GE(segments.size(), 3u);
  EXPECT_GE(rotator.deferred_blocks(), (segments.size() - 2) * TraceRotator::kMaxDeferredBlocks);
  EXPECT_LE(rotator.deferred_blocks(), (segments.size() - 1) * TraceRotator::kMaxDeferredBlocks);
  analyzer::AnalyzeOptions options;
  options.classify_runtime = false;
  std::vector<uint64_t> unmatched;
  for (const std::string& segment : segments) {
    absl::StatusOr<analyzer::ProcessProfile> p = analyzer::AnalyzeTrace(segment, options);
    ASSERT_TRUE(p.ok()) << p.status();
    unmatched.push_back(p->totals.unmatched_frees);
  }
  EXPECT_EQ(unmatched.front(), 1u);
  EXPECT_EQ(unmatched.back(), 0u);
}

// The same thread's chunks out of order, as the preload writes them when
// its spool is full (a later chunk written inline before the spooled one):
// the cut due between them waits for the late chunk.
TEST(TraceRotatorTest, CutWaitsForAChunkWrittenLate) {
  TestTraceWriter w(4242, 1, 512);
  w.Process(0, 0, "/bin/prog", {"prog"});
  w.StackNode(0, 1, 0, 0x1000);
  // A ring of 8: a 512-byte chunk holds more iterations, so a chunk's
  // first frees name the previous chunk's blocks.
  std::vector<uint64_t> ring(8, 0);
  for (int i = 0; i < 20000; ++i) {
    uint64_t& slot = ring[static_cast<size_t>(i) % ring.size()];
    if (slot != 0) w.Free(1, 10 + i, slot);
    slot = w.Alloc(1, 10 + i, Api::kMalloc, 16 + i % 200, 1);
  }
  w.FlushAll();
  const std::string dir = FreshDir("rotator_late");
  std::string whole = dir + "/whole.hst";
  ASSERT_TRUE(w.WriteFile(whole));
  auto reader = format::TraceReader::Open(whole);
  ASSERT_TRUE(reader.ok());
  // Blocks in file order but every 3rd block (a thread's chunk) swapped
  // with the next one: the later chunk's frees of the earlier chunk's
  // blocks are read first (3: the swaps fall at every offset of a
  // segment's few blocks, so some cut is due right there).
  std::vector<size_t> order(w.block_offsets().size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  for (size_t i = 3; i + 1 < order.size(); i += 3) std::swap(order[i], order[i + 1]);
  analyzer::LiveProcess live(whole, (*reader)->header());
  TraceRotator rotator(dir + "/seg", RotateLimits{2048, 0, 0});
  ASSERT_TRUE(Feed(w, order, reader->get(), &live, &rotator).ok());
  ASSERT_GE(rotator.segments().size(), 3u);
  EXPECT_GT(rotator.deferred_blocks(), 0u);
  analyzer::AnalyzeOptions options;
  options.classify_runtime = false;
  for (const std::string& segment : rotator.segments()) {
    absl::StatusOr<analyzer::ProcessProfile> p = analyzer::AnalyzeTrace(segment, options);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(p->totals.unmatched_frees, 0u) << segment;
  }
}

TEST(TraceRotatorTest, KeepsTheNewestSegments) {
  TestTraceWriter w(4242, 1, 512);
  for (int i = 0; i < 2000; ++i) w.Alloc(0, i, Api::kMalloc, 10, 0);
  w.FlushAll();
  const std::string dir = FreshDir("rotator_keep");
  format::FileHeader header;
  std::memcpy(&header, w.bytes().data(), sizeof header);
  analyzer::LiveProcess live("x", header);
  TraceRotator rotator(dir + "/seg", RotateLimits{1024, 0, 2});
  ASSERT_TRUE(Feed(w, {}, nullptr, &live, &rotator).ok());
  ASSERT_EQ(rotator.segments().size(), 2u);
  EXPECT_EQ(access((dir + "/seg.1.hst").c_str(), F_OK), -1);
  EXPECT_EQ(access(rotator.segments().back().c_str(), F_OK), 0);
  EXPECT_NE(rotator.segments().back(), dir + "/seg.2.hst");
}

}  // namespace
}  // namespace heapsight::record
