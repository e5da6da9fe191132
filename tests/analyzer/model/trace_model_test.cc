// tests/analyzer/model/trace_model_test.cc: exact numbers from AnalyzeTrace on
// synthetic traces (counts, peak, temporary, leaks, threads, truncation).
#include "analyzer/model/trace_model.h"

#include <unistd.h>

#include <random>
#include <string>

#include "analyzer/model/family_totals.h"
#include "analyzer/model/sample_estimate.h"
#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer {
namespace {

using format::Api;
using testing::TestTraceWriter;

std::string WriteTrace(TestTraceWriter& w, const std::string& name) {
  std::string path = ::testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".hst";
  EXPECT_TRUE(w.WriteFile(path));
  return path;
}

ProcessProfile Analyze(const std::string& path, AnalyzeOptions options = {}) {
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path, options);
  EXPECT_TRUE(p.ok()) << p.status();
  return p.ok() ? std::move(*p) : ProcessProfile{};
}

const Site* FindSite(const ProcessProfile& p, uint64_t stack, Api api) {
  for (const Site& s : p.sites) {
    if (s.stack == stack && s.api == api) return &s;
  }
  return nullptr;
}

TEST(TraceModelTest, CountsPeakLeaksAndTemporary) {
  TestTraceWriter w;
  w.Process(0, 0, "/bin/prog", {"prog", "-x"});
  w.StackNode(0, 1, 0, 0x1000);
  w.StackNode(0, 2, 1, 0x2000);
  w.StackNode(0, 3, 1, 0x3000);
  uint64_t a = w.Alloc(0, 10, Api::kMalloc, 100, 2);  // live until 50
  uint64_t b = w.Alloc(0, 20, Api::kMalloc, 300, 3);  // temporary (freed before next alloc)
  w.Free(0, 25, b);
  uint64_t c = w.Alloc(0, 30, Api::kNew, 1000, 3);    // peak: 100 + 1000 (+ d 50) at 40
  uint64_t d = w.Alloc(0, 40, Api::kMalloc, 50, 2);
  w.Free(0, 50, a);
  w.Free(0, 60, c, Api::kDelete);
  uint64_t e = w.Alloc(0, 70, Api::kMalloc, 7, 2);   // leaked
  (void)e;
  (void)d;                                            // leaked
  w.End(0, 80, 3);
  std::string path = WriteTrace(w, "counts");
  ProcessProfile p = Analyze(path);

  EXPECT_TRUE(p.complete);
  EXPECT_FALSE(p.truncated);
  EXPECT_EQ(p.exit_status, 3);
  EXPECT_EQ(p.exe, "/bin/prog");
  ASSERT_EQ(p.argv.size(), 2u);
  EXPECT_EQ(p.argv[1], "-x");
  EXPECT_EQ(p.pid, 4242u);
  EXPECT_EQ(p.duration_us, 80u);
  EXPECT_EQ(p.totals.allocs, 5u);
  EXPECT_EQ(p.totals.frees, 3u);
  EXPECT_EQ(p.totals.bytes_allocated, 1457u);
  EXPECT_EQ(p.totals.allocs_by_api[static_cast<size_t>(Api::kMalloc)], 4u);
  EXPECT_EQ(p.totals.allocs_by_api[static_cast<size_t>(Api::kNew)], 1u);
  EXPECT_EQ(p.totals.frees_by_api[static_cast<size_t>(Api::kDelete)], 1u);
  EXPECT_EQ(p.totals.leaked_bytes, 57u);
  EXPECT_EQ(p.totals.leaked_blocks, 2u);
  EXPECT_EQ(p.totals.temporary, 1u);
  EXPECT_EQ(p.totals.peak_bytes, 1150u);
  EXPECT_EQ(p.totals.peak_blocks, 3u);
  EXPECT_EQ(p.totals.peak_time_us, 40u);

  const Site* s2 = FindSite(p, 2, Api::kMalloc);
  const Site* s3 = FindSite(p, 3, Api::kMalloc);
  const Site* s3n = FindSite(p, 3, Api::kNew);
  ASSERT_NE(s2, nullptr);
  ASSERT_NE(s3, nullptr);
  ASSERT_NE(s3n, nullptr);
  EXPECT_EQ(s2->stats.alloc_count, 3u);
  EXPECT_EQ(s2->stats.alloc_bytes, 157u);
  EXPECT_EQ(s2->stats.peak_bytes, 150u);
  EXPECT_EQ(s2->stats.peak_count, 2u);
  EXPECT_EQ(s2->stats.leaked_bytes, 57u);
  EXPECT_EQ(s2->stats.live_bytes, 57u);  // At::kEnd
  EXPECT_EQ(s3->stats.temporary_count, 1u);
  EXPECT_EQ(s3->stats.peak_bytes, 0u);
  EXPECT_EQ(s3n->stats.peak_bytes, 1000u);
  EXPECT_EQ(s3n->stats.leaked_count, 0u);

  EXPECT_EQ(p.size_histogram[SizeBucket(100)], 1u);
  EXPECT_EQ(SizeBucket(0), 0);
  EXPECT_EQ(SizeBucket(1), 1);
  EXPECT_EQ(SizeBucket(7), 3);
  EXPECT_EQ(SizeBucket(8), 4);
  EXPECT_EQ(p.size_histogram[SizeBucket(7)], 1u);

  std::vector<uint64_t> ips = p.StackIps(2);
  ASSERT_EQ(ips.size(), 2u);
  EXPECT_EQ(ips[0], 0x2000u);
  EXPECT_EQ(ips[1], 0x1000u);

  AnalyzeOptions at_peak;
  at_peak.at = AnalyzeOptions::At::kPeak;
  ProcessProfile pp = Analyze(path, at_peak);
  EXPECT_EQ(FindSite(pp, 3, Api::kNew)->stats.live_bytes, 1000u);
  AnalyzeOptions at_time;
  at_time.at = AnalyzeOptions::At::kTime;
  at_time.at_time_us = 20;  // a (100) and b (300) live
  ProcessProfile pt = Analyze(path, at_time);
  EXPECT_EQ(FindSite(pt, 2, Api::kMalloc)->stats.live_bytes, 100u);
  EXPECT_EQ(FindSite(pt, 3, Api::kMalloc)->stats.live_bytes, 300u);
  EXPECT_EQ(FindSite(pt, 3, Api::kNew)->stats.live_bytes, 0u);
}

// The snapshot of --at TIME is taken before the first event whose own time
// is past TIME, even when a realloc's new block moved the clock past it
// earlier (the pass tests the clock first, TimeChecks the event's time):
// a thread's times never go back (its encoder's clock moves to the new
// block's time), another thread's can.
TEST(TraceModelTest, LiveAtATimeAfterAReallocMovedTheClock) {
  TestTraceWriter w;
  uint64_t a = w.Alloc(0, 10, Api::kMalloc, 100, 1);
  w.ReallocAt(0, 12, 50, a, 200, 2);     // the clock is at 50 from here
  w.Alloc(1, 20, Api::kMalloc, 300, 3);  // at 20: before the moment
  w.Alloc(1, 60, Api::kMalloc, 400, 4);  // after it
  w.End(0, 70);
  std::string path = WriteTrace(w, "at_time_realloc");
  AnalyzeOptions options;
  options.at = AnalyzeOptions::At::kTime;
  options.at_time_us = 30;
  ProcessProfile p = Analyze(path, options);
  EXPECT_EQ(FindSite(p, 1, Api::kMalloc)->stats.live_bytes, 0u);
  EXPECT_EQ(FindSite(p, 2, Api::kRealloc)->stats.live_bytes, 200u);
  EXPECT_EQ(FindSite(p, 3, Api::kMalloc)->stats.live_bytes, 300u);
  EXPECT_EQ(FindSite(p, 4, Api::kMalloc)->stats.live_bytes, 0u);
  // At a moment no event passes: the end's counts.
  options.at_time_us = 1000;
  ProcessProfile end = Analyze(path, options);
  EXPECT_EQ(FindSite(end, 4, Api::kMalloc)->stats.live_bytes, 400u);
}

TEST(TraceModelTest, LiveAtAMarker) {
  TestTraceWriter w;
  uint64_t a = w.Alloc(0, 10, Api::kMalloc, 100, 1);
  w.Marker(0, 20, "before");
  w.Alloc(0, 30, Api::kMalloc, 50, 1);
  w.Marker(0, 40, "after");
  w.Free(0, 50, a);
  w.End(0, 60);
  std::string path = WriteTrace(w, "marker");
  AnalyzeOptions options;
  options.at = AnalyzeOptions::At::kMarker;
  options.at_marker = "after";
  EXPECT_EQ(Analyze(path, options).sites[0].stats.live_bytes, 150u);
  options.at_marker = "before";
  EXPECT_EQ(Analyze(path, options).sites[0].stats.live_bytes, 100u);
  options.at_marker = "none";
  EXPECT_EQ(Analyze(path, options).sites[0].stats.live_bytes, 50u);  // end
}

TEST(TraceModelTest, ThreadsInterleaveOutOfTimeOrderAndFreeAcrossThreads) {
  TestTraceWriter w;
  // Thread 2's chunk (later times) is written before thread 1's chunk.
  uint64_t x = format::MakeAllocId(1, 0);
  w.Free(2, 100, x);                                  // frees thread 1's first block
  uint64_t y = w.Alloc(2, 100, Api::kMalloc, 40, 0);  // same microsecond as the free
  w.Flush(2);
  EXPECT_EQ(w.Alloc(1, 100, Api::kMalloc, 500, 0), x);  // tie: thread 1 > ... order checked
  w.Alloc(1, 50, Api::kMalloc, 10, 0);                  // time goes back: clamped to 100
  w.Flush(1);
  w.Free(2, 200, y);
  w.End(2, 300);
  std::string path = WriteTrace(w, "threads");
  ProcessProfile p = Analyze(path);
  EXPECT_EQ(p.threads, 2u);
  EXPECT_EQ(p.totals.allocs, 3u);
  EXPECT_EQ(p.totals.frees, 2u);
  EXPECT_EQ(p.totals.unmatched_frees, 0u);
  EXPECT_EQ(p.totals.leaked_bytes, 10u);
  EXPECT_EQ(p.totals.leaked_blocks, 1u);
}

TEST(TraceModelTest, PeakUsesTimeOrderAcrossThreads) {
  TestTraceWriter w;
  // Thread 1: a 1000-byte block live during [10, 20). Thread 2: a 700-byte
  // block live during [15, 30), written first in the file. Time-ordered
  // peak: 1700 at 15. File-order replay would see at most 1000.
  uint64_t b2 = w.Alloc(2, 15, Api::kMalloc, 700, 0);
  w.Free(2, 30, b2);
  w.Flush(2);
  uint64_t b1 = w.Alloc(1, 10, Api::kMalloc, 1000, 0);
  w.Free(1, 20, b1);
  w.End(1, 40);
  ProcessProfile p = Analyze(WriteTrace(w, "peak_threads"));
  EXPECT_EQ(p.totals.peak_bytes, 1700u);
  EXPECT_EQ(p.totals.peak_time_us, 15u);
  EXPECT_EQ(p.totals.leaked_blocks, 0u);
}

TEST(TraceModelTest, ReallocCountsAsFreeAndAlloc) {
  TestTraceWriter w;
  uint64_t a = w.Alloc(0, 1, Api::kMalloc, 16, 0);
  for (int i = 0; i < 9; ++i) a = w.Realloc(0, 2 + i, a, 32u << i, 0);
  w.End(0, 20);
  ProcessProfile p = Analyze(WriteTrace(w, "realloc"));
  EXPECT_EQ(p.totals.allocs, 10u);
  EXPECT_EQ(p.totals.frees, 9u);
  EXPECT_EQ(p.totals.leaked_bytes, 8192u);
  EXPECT_EQ(p.totals.leaked_blocks, 1u);
  EXPECT_EQ(p.totals.allocs_by_api[static_cast<size_t>(Api::kRealloc)], 9u);
  EXPECT_EQ(p.totals.bytes_allocated, 16u + 32 + 64 + 128 + 256 + 512 + 1024 + 2048 + 4096 + 8192);
}

TEST(TraceModelTest, LateFreesAfterEndAreApplied) {
  TestTraceWriter w;
  uint64_t a = w.Alloc(0, 1, Api::kMalloc, 100, 0);
  w.Alloc(0, 2, Api::kMalloc, 200, 0);
  w.End(0, 10);
  w.Free(0, 11, a);  // static destructor
  ProcessProfile p = Analyze(WriteTrace(w, "late"));
  EXPECT_TRUE(p.complete);
  EXPECT_EQ(p.totals.leaked_bytes, 200u);
  EXPECT_EQ(p.totals.frees, 1u);
}

TEST(TraceModelTest, InheritedBlocksAreLeakedButNotAllocated) {
  TestTraceWriter w(/*pid=*/77, /*ppid=*/76);
  w.Inherited(0, 0, format::MakeAllocId(0, 0), Api::kMalloc, 64, 0);
  w.Inherited(0, 0, format::MakeAllocId(0, 1), Api::kMalloc, 32, 0);
  w.Free(0, 1, format::MakeAllocId(0, 1));
  w.Alloc(1, 2, Api::kMalloc, 111, 0);
  w.End(1, 3);
  ProcessProfile p = Analyze(WriteTrace(w, "inherit"));
  EXPECT_EQ(p.ppid, 76u);
  EXPECT_EQ(p.totals.allocs, 1u);
  EXPECT_EQ(p.totals.inherited_blocks, 2u);
  EXPECT_EQ(p.totals.inherited_bytes, 96u);
  EXPECT_EQ(p.totals.frees, 1u);
  EXPECT_EQ(p.totals.leaked_blocks, 2u);
  EXPECT_EQ(p.totals.leaked_bytes, 175u);
}

TEST(TraceModelTest, TruncatedTraceIsAnalyzedAsFarAsItGoes) {
  TestTraceWriter w(1, 0, /*chunk_capacity=*/256);
  for (int i = 0; i < 100; ++i) w.Alloc(0, static_cast<uint64_t>(i), Api::kMalloc, 10, 0);
  w.End(0, 200);
  w.FlushAll();
  std::string bytes = w.bytes();
  ASSERT_GT(w.block_offsets().size(), 3u);
  size_t cut = w.block_offsets()[2] + 20;  // inside the third block
  std::string path = ::testing::TempDir() + "/cut." + std::to_string(getpid()) + ".hst";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(bytes.data(), 1, cut, f);
  std::fclose(f);
  ProcessProfile p = Analyze(path);
  EXPECT_TRUE(p.truncated);
  EXPECT_FALSE(p.complete);
  EXPECT_GT(p.totals.allocs, 0u);
  EXPECT_LT(p.totals.allocs, 100u);
  EXPECT_EQ(p.totals.leaked_blocks, p.totals.allocs);
}

TEST(TraceModelTest, UnknownFreesAndEventsAreCounted) {
  TestTraceWriter w;
  w.Free(0, 1, format::MakeAllocId(9, 5));  // no such thread
  w.AllocFailed(0, 2, 1ull << 40);
  w.Rss(0, 3, 4096);
  w.Marker(0, 4, "phase 2");
  w.End(0, 5);
  ProcessProfile p = Analyze(WriteTrace(w, "unknown"));
  EXPECT_EQ(p.totals.unmatched_frees, 1u);
  EXPECT_EQ(p.totals.frees, 0u);
  EXPECT_EQ(p.totals.failed_allocs, 1u);
  ASSERT_EQ(p.rss_timeline.size(), 1u);
  EXPECT_EQ(p.rss_timeline[0].value, 4096u);
  ASSERT_EQ(p.markers.size(), 1u);
  EXPECT_EQ(p.markers[0].name, "phase 2");
}

// Exact peak against a brute-force replay on random multi-thread traces.
TEST(TraceModelTest, RandomTracesMatchBruteForce) {
  for (int seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    TestTraceWriter w(1, 0, 512);
    struct Ev {
      uint64_t time;
      int64_t delta;
      uint64_t stack;
    };
    std::vector<std::pair<uint64_t, std::pair<uint64_t, uint64_t>>> live;  // id -> (size, stack)
    std::vector<Ev> events;
    uint64_t time[3] = {0, 0, 0};
    for (int i = 0; i < 2000; ++i) {
      uint32_t t = static_cast<uint32_t>(rng() % 3);
      time[t] += rng() % 5;
      if (rng() % 5 == 0) w.Flush(t);
      if (!live.empty() && rng() % 2 == 0) {
        size_t k = rng() % live.size();
        w.Free(t, time[t], live[k].first);
        live.erase(live.begin() + static_cast<long>(k));
      } else {
        uint64_t size = 1 + rng() % 1000, stack = rng() % 7;
        uint64_t id = w.Alloc(t, time[t], Api::kMalloc, size, stack);
        live.push_back({id, {size, stack}});
      }
    }
    w.End(0, 100000);
    // Brute force: replay the analyzer's own time order is what we test, so
    // instead check invariants that hold for any order plus the totals.
    ProcessProfile p = Analyze(WriteTrace(w, "random"));
    uint64_t leaked = 0;
    for (auto& l : live) leaked += l.second.first;
    EXPECT_EQ(p.totals.leaked_bytes, leaked) << seed;
    EXPECT_EQ(p.totals.leaked_blocks, live.size()) << seed;
    EXPECT_EQ(p.totals.unmatched_frees, 0u) << seed;
    uint64_t peak_sum = 0;
    for (const Site& s : p.sites) peak_sum += s.stats.peak_bytes;
    EXPECT_EQ(peak_sum, p.totals.peak_bytes) << seed;
    uint64_t max_point = 0;
    for (const TimePoint& tp : p.heap_timeline) max_point = std::max(max_point, tp.value);
    EXPECT_LE(max_point, p.totals.peak_bytes) << seed;
  }
}

// Blocks allocated and released in one chunk skip the live set
// (chunk_pairing.h): on random traces of three threads (frees and reallocs
// on the allocating thread and across threads, free errors, markers, RSS
// samples, chunks cut at random) every number is the live set's, at the end,
// at the peak, at a time and at a marker.
TEST(TraceModelTest, PairedBlocksGiveTheLiveSetsNumbers) {
  for (int seed = 1; seed <= 12; ++seed) {
    std::mt19937_64 rng(seed);
    TestTraceWriter w(1, 0, 2048);
    std::vector<std::pair<uint64_t, uint32_t>> live;  // id, allocating thread
    uint64_t time[3] = {0, 0, 0};
    for (int i = 0; i < 3000; ++i) {
      uint32_t t = static_cast<uint32_t>(rng() % 3);
      time[t] += rng() % 3;
      if (rng() % 40 == 0) w.Flush(t);
      const uint64_t r = rng() % 100;
      // Mostly the newest blocks, on their own thread: short lives pair.
      auto pick = [&]() -> size_t {
        size_t n = live.size();
        return rng() % 4 != 0 ? n - 1 - rng() % std::min<size_t>(n, 4) : rng() % n;
      };
      if (r < 3) {
        w.Marker(t, time[t], seed % 2 == 0 ? "m" : "other");
      } else if (r < 5) {
        w.Rss(t, time[t], 1000 + i);
      } else if (r < 7 && !live.empty()) {
        w.FreeError(t, time[t], Api::kFree, format::FreeError::kMismatchedFree, 0x1000, 1,
                    live[pick()].first);
      } else if (r < 45 && !live.empty()) {
        size_t k = pick();
        w.Free(t, time[t], live[k].first);
        live.erase(live.begin() + static_cast<long>(k));
      } else if (r < 55 && !live.empty()) {
        size_t k = pick();
        uint64_t id = w.Realloc(t, time[t], live[k].first, 1 + rng() % 500, 1 + rng() % 5);
        live.erase(live.begin() + static_cast<long>(k));
        live.push_back({id, t});
      } else {
        uint64_t id = w.Alloc(t, time[t], rng() % 3 == 0 ? Api::kNew : Api::kMalloc,
                              1 + rng() % 1000, 1 + rng() % 7);
        live.push_back({id, t});
      }
    }
    w.End(0, 100000);
    const std::string path = WriteTrace(w, "paired");
    for (AnalyzeOptions::At at : {AnalyzeOptions::At::kEnd, AnalyzeOptions::At::kPeak,
                                  AnalyzeOptions::At::kTime, AnalyzeOptions::At::kMarker}) {
      AnalyzeOptions on;
      on.at = at;
      on.at_time_us = 500;
      on.at_marker = "m";
      AnalyzeOptions off = on;
      off.pair_in_chunk = false;
      uint64_t paired = 0, paired_off = 0;
      on.paired_blocks = &paired;
      off.paired_blocks = &paired_off;
      ProcessProfile a = Analyze(path, on);
      ProcessProfile b = Analyze(path, off);
      // Most blocks die young on their own thread: hundreds pair.
      EXPECT_GT(paired, 200u) << seed;
      EXPECT_EQ(paired_off, 0u) << seed;
      const Totals& x = a.totals;
      const Totals& y = b.totals;
      EXPECT_EQ(x.allocs, y.allocs) << seed;
      EXPECT_EQ(x.frees, y.frees) << seed;
      EXPECT_EQ(x.frees_by_api, y.frees_by_api) << seed;
      EXPECT_EQ(x.bytes_allocated, y.bytes_allocated) << seed;
      EXPECT_EQ(x.leaked_bytes, y.leaked_bytes) << seed;
      EXPECT_EQ(x.leaked_blocks, y.leaked_blocks) << seed;
      EXPECT_EQ(x.temporary, y.temporary) << seed;
      EXPECT_EQ(x.peak_bytes, y.peak_bytes) << seed;
      EXPECT_EQ(x.peak_blocks, y.peak_blocks) << seed;
      EXPECT_EQ(x.peak_time_us, y.peak_time_us) << seed;
      EXPECT_EQ(x.bad_frees, y.bad_frees) << seed;
      EXPECT_EQ(x.unmatched_frees, y.unmatched_frees) << seed;
      ASSERT_EQ(a.sites.size(), b.sites.size()) << seed;
      for (size_t i = 0; i < a.sites.size(); ++i) {
        const SiteStats& p = a.sites[i].stats;
        const SiteStats& q = b.sites[i].stats;
        EXPECT_EQ(a.sites[i].stack, b.sites[i].stack) << seed << " " << i;
        EXPECT_EQ(p.alloc_count, q.alloc_count) << seed << " " << i;
        EXPECT_EQ(p.live_count, q.live_count) << seed << " " << i;
        EXPECT_EQ(p.live_bytes, q.live_bytes) << seed << " " << i;
        EXPECT_EQ(p.leaked_bytes, q.leaked_bytes) << seed << " " << i;
        EXPECT_EQ(p.peak_bytes, q.peak_bytes) << seed << " " << i;
        EXPECT_EQ(p.temporary_count, q.temporary_count) << seed << " " << i;
        EXPECT_EQ(p.temporary_bytes, q.temporary_bytes) << seed << " " << i;
      }
      ASSERT_EQ(a.heap_timeline.size(), b.heap_timeline.size()) << seed;
      for (size_t i = 0; i < a.heap_timeline.size(); ++i) {
        EXPECT_EQ(a.heap_timeline[i].time_us, b.heap_timeline[i].time_us) << seed;
        EXPECT_EQ(a.heap_timeline[i].value, b.heap_timeline[i].value) << seed;
      }
      ASSERT_EQ(a.leak_classes.errors.size(), b.leak_classes.errors.size()) << seed;
      for (size_t i = 0; i < a.leak_classes.errors.size(); ++i) {
        EXPECT_EQ(a.leak_classes.errors[i].alloc_known, b.leak_classes.errors[i].alloc_known);
        EXPECT_EQ(a.leak_classes.errors[i].alloc_size, b.leak_classes.errors[i].alloc_size);
        EXPECT_EQ(a.leak_classes.errors[i].alloc_stack, b.leak_classes.errors[i].alloc_stack);
      }
    }
  }
}

// Issue 13: the runtime's blocks are out of every total, the peak too. A
// libstdc++ block (a module whose every frame is a runtime library) that
// would make the whole heap's peak later and higher does not move the
// program's peak.
TEST(TraceModelTest, RuntimeBlocksAreOutOfThePeak) {
  TestTraceWriter w;
  w.Process(0, 0, "/nonexistent/prog", {"prog"});
  w.Module(0, 1, 1, 0x400000, "/nonexistent/prog", "", {{0, 0x10000, 0, 5}});
  w.Module(0, 2, 2, 0x7f1000000000, "/nonexistent/libstdc++.so.6", "", {{0, 0x10000, 0, 5}});
  w.StackNode(0, 1, 0, 0x401000);        // the program
  w.StackNode(0, 2, 0, 0x7f1000000100);  // the runtime
  uint64_t a = w.Alloc(0, 10, Api::kMalloc, 1000, 1);
  w.Free(0, 20, a);
  w.Alloc(0, 30, Api::kMalloc, 72704, 2);  // runtime, never freed
  w.Alloc(0, 40, Api::kMalloc, 500, 1);    // the program's, never freed
  w.Marker(0, 45, "after");
  w.End(0, 50, 0);
  ProcessProfile p = Analyze(WriteTrace(w, "runtime_peak"));
  EXPECT_EQ(p.totals.bytes_allocated, 1500u);
  EXPECT_EQ(p.totals.peak_bytes, 1000u);
  EXPECT_EQ(p.totals.peak_blocks, 1u);
  EXPECT_EQ(p.totals.peak_time_us, 10u);
  EXPECT_EQ(p.totals.leaked_bytes, 500u);
  EXPECT_EQ(p.runtime_totals.leaked_bytes, 72704u);
  ASSERT_EQ(p.markers.size(), 1u);
  EXPECT_EQ(p.markers[0].heap_bytes, 500u);
  const Site* program = FindSite(p, 1, Api::kMalloc);
  const Site* runtime = FindSite(p, 2, Api::kMalloc);
  ASSERT_TRUE(program != nullptr && runtime != nullptr);
  EXPECT_EQ(runtime->kind, SiteKind::kRuntime);
  EXPECT_EQ(program->stats.peak_bytes, 1000u);
  EXPECT_EQ(runtime->stats.peak_bytes, 0u);  // not live at the program's peak
  for (const TimePoint& tp : p.heap_timeline) EXPECT_LE(tp.value, 1000u) << tp.time_us;
}

// Issue 13: in a sampled trace the peak is where the *estimated* heap is
// highest. One 1 MB sample (certain to be sampled: it stands for itself)
// is the highest sampled heap; 100 samples of 1,000 bytes later stand for
// about 6.6 MB (each had a 1.5% chance at one sample per 64 KiB).
TEST(TraceModelTest, SampledPeakIsTheEstimatedOne) {
  constexpr uint64_t kPeriod = 65536;
  TestTraceWriter w;
  w.EditHeader([](format::FileHeader& h) {
    h.flags |= format::kFileFlagSampled;
    h.sample_period_bytes = kPeriod;
  });
  w.StackNode(0, 1, 0, 0x401000);
  w.StackNode(0, 2, 0, 0x402000);
  uint64_t big = w.Alloc(0, 10, Api::kMalloc, 1000000, 1);
  w.Free(0, 20, big);
  for (uint64_t i = 0; i < 100; ++i) w.Alloc(0, 30 + i, Api::kMalloc, 1000, 2);
  w.End(0, 200, 0);
  ProcessProfile p = Analyze(WriteTrace(w, "sampled_peak"));
  ScaledBlocks small = ScaleLiveBlocks(100, 100000, kPeriod);
  ASSERT_GT(small.bytes, 6000000);
  EXPECT_TRUE(p.totals.estimated);
  EXPECT_EQ(p.totals.peak_time_us, 129u);
  EXPECT_EQ(p.totals.peak_bytes, static_cast<uint64_t>(small.bytes));
  EXPECT_EQ(p.totals.peak_blocks, static_cast<uint64_t>(small.count));
  EXPECT_EQ(p.totals.leaked_bytes, static_cast<uint64_t>(small.bytes));
  // Allocated: each sample weighted by its own size's inverse probability.
  double w_small = SampleWeight(1000, kPeriod), w_big = SampleWeight(1000000, kPeriod);
  EXPECT_EQ(p.totals.allocs, static_cast<uint64_t>(std::round(100 * w_small)) +
                                 static_cast<uint64_t>(std::round(w_big)));
  EXPECT_EQ(p.totals.sampled_allocs, 101u);
  EXPECT_EQ(p.totals.sampled_bytes, 1100000u);
  EXPECT_GT(p.totals.bytes_allocated_error, 0u);
  EXPECT_FALSE(p.totals.temporary_known);
  // The site list keeps the samples; the peak's sites are those of its moment.
  const Site* big_site = FindSite(p, 1, Api::kMalloc);
  ASSERT_NE(big_site, nullptr);
  EXPECT_EQ(big_site->stats.peak_bytes, 0u);
  EXPECT_EQ(big_site->stats.alloc_bytes, 1000000u);
}

// A family's totals are its processes' sums; its peak is one process's.
TEST(TraceModelTest, FamilyTotalsSumTheProcesses) {
  TestTraceWriter a, b;
  for (TestTraceWriter* w : {&a, &b}) w->StackNode(0, 1, 0, 0x401000);
  a.Alloc(0, 10, Api::kMalloc, 100, 1);
  a.End(0, 20, 0);
  b.Alloc(0, 10, Api::kMalloc, 300, 1);
  b.Alloc(0, 11, Api::kMalloc, 30, 1);
  b.ExecEnd(0, 20, "/bin/true");
  ProcessProfile pa = Analyze(WriteTrace(a, "family_a"));
  ProcessProfile pb = Analyze(WriteTrace(b, "family_b"));
  FamilyTotals f = SumTotals({&pa, &pb});
  EXPECT_EQ(f.processes, 2u);
  EXPECT_EQ(f.sum.allocs, 3u);
  EXPECT_EQ(f.sum.bytes_allocated, 430u);
  EXPECT_EQ(f.sum.peak_bytes, 330u);
  EXPECT_EQ(f.peak, &pb);
  EXPECT_EQ(f.sum.leaked_bytes, 100u);  // b's blocks were discarded by exec
  EXPECT_EQ(f.discarded_bytes, 330u);
  EXPECT_EQ(f.execs, 1u);
}

}  // namespace
}  // namespace heapsight::analyzer
