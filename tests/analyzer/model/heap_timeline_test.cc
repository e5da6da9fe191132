// tests/analyzer/model/heap_timeline_test.cc: the bucketed heap step function
// (heap_timeline.h): exact buckets by hand, coarsening that never loses a
// peak, and AnalyzeTrace's series whose maximum is the reported peak at the
// reported time (a brute-force replay on random multi-thread traces).
#include "analyzer/model/heap_timeline.h"

#include <unistd.h>

#include <algorithm>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "analyzer/model/trace_model.h"
#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer {
namespace {

using format::Api;
using testing::TestTraceWriter;

TEST(HeapTimelineTest, OneBucketPerWidthWithOpenMinMaxClose) {
  HeapTimelineBuilder b(/*expected_duration_us=*/0, /*max_buckets=*/100);  // width 1
  ASSERT_EQ(b.Finish(0).bucket_us, 1u);
  HeapTimelineBuilder builder(0, 100);
  builder.Observe(5, 100);
  builder.Observe(5, 300);
  builder.Observe(5, 200);
  builder.Observe(9, 50);
  HeapTimeline t = builder.Finish(20);
  EXPECT_EQ(t.end_us, 20u);
  ASSERT_EQ(t.buckets.size(), 2u);
  const HeapBucket& a = t.buckets[0];
  EXPECT_EQ(a.begin_us, 5u);
  EXPECT_EQ(a.open, 0u);
  EXPECT_EQ(a.min, 100u);
  EXPECT_EQ(a.max, 300u);
  EXPECT_EQ(a.max_time_us, 5u);
  EXPECT_EQ(a.close, 200u);
  const HeapBucket& c = t.buckets[1];
  EXPECT_EQ(c.begin_us, 9u);
  EXPECT_EQ(c.open, 200u);
  EXPECT_EQ(c.min, 50u);
  EXPECT_EQ(c.max, 50u);
  EXPECT_EQ(c.close, 50u);
  EXPECT_EQ(t.PeakBucket(), &t.buckets[0]);
}

TEST(HeapTimelineTest, CoarseningKeepsTheFirstPeakAndBoundsTheBuckets) {
  HeapTimelineBuilder builder(0, 8);
  // A sawtooth over 1000 us with its highest tooth twice: at 130 and 250
  // (two buckets that merge later).
  for (uint64_t t = 0; t < 1000; ++t) {
    uint64_t v = t % 10;
    if (t == 130 || t == 250) v = 1000;
    builder.Observe(t, v);
  }
  HeapTimeline tl = builder.Finish(1000);
  EXPECT_LE(tl.buckets.size(), 8u);
  EXPECT_EQ(tl.bucket_us & (tl.bucket_us - 1), 0u);  // a power of two
  const HeapBucket* peak = tl.PeakBucket();
  ASSERT_NE(peak, nullptr);
  EXPECT_EQ(peak->max, 1000u);
  EXPECT_EQ(peak->max_time_us, 130u);
  EXPECT_LE(peak->begin_us, 130u);
  EXPECT_GT(peak->begin_us + tl.bucket_us, 130u);
  // Buckets tile in order; each opens where the one before closed.
  for (size_t i = 1; i < tl.buckets.size(); ++i) {
    EXPECT_EQ(tl.buckets[i].begin_us, tl.buckets[i - 1].begin_us + tl.bucket_us);
    EXPECT_EQ(tl.buckets[i].open, tl.buckets[i - 1].close);
  }
  EXPECT_EQ(tl.buckets.front().min, 0u);
}

std::string WriteTrace(TestTraceWriter& w, const std::string& name) {
  std::string path = ::testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".hst";
  EXPECT_TRUE(w.WriteFile(path));
  return path;
}

TEST(HeapTimelineTest, TwoPhasesAreTwoStepsWithThePeakAtItsTime) {
  TestTraceWriter w;
  w.Process(0, 0, "/bin/prog", {"prog"});
  w.StackNode(0, 1, 0, 0x1000);
  uint64_t a = w.Alloc(0, 1000, Api::kMalloc, 10'000'000, 1);
  uint64_t b = w.Alloc(0, 301'000, Api::kMalloc, 20'000'000, 1);
  w.Free(0, 601'000, b);
  w.Free(0, 601'001, a);
  w.End(0, 602'000);
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(WriteTrace(w, "phases"));
  ASSERT_TRUE(p.ok()) << p.status();
  const HeapTimeline& tl = p->heap_series;
  EXPECT_EQ(tl.end_us, 602'000u);
  const HeapBucket* peak = tl.PeakBucket();
  ASSERT_NE(peak, nullptr);
  EXPECT_EQ(peak->max, p->totals.peak_bytes);
  EXPECT_EQ(peak->max, 30'000'000u);
  EXPECT_EQ(peak->max_time_us, p->totals.peak_time_us);
  EXPECT_EQ(peak->max_time_us, 301'000u);
  // Nothing changes between the steps: three buckets (the two frees share
  // one unless the width is 1 us).
  ASSERT_GE(tl.buckets.size(), 3u);
  EXPECT_EQ(tl.buckets[0].close, 10'000'000u);
  EXPECT_EQ(tl.buckets[1].open, 10'000'000u);
  EXPECT_EQ(tl.buckets[1].close, 30'000'000u);
  EXPECT_EQ(tl.buckets.back().close, 0u);
}

// Random traces of several threads: replaying the analyzer's merged order is
// not possible here, so check what must hold for any order: the series'
// maximum is the peak at its time, every bucket's open is the close before,
// and the last close is what stayed live.
TEST(HeapTimelineTest, RandomTracesMaxIsThePeak) {
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 rng(seed);
    TestTraceWriter w;
    w.Process(0, 0, "/bin/prog", {"prog"});
    for (uint64_t s = 1; s <= 5; ++s) w.StackNode(0, s, 0, 0x1000 * s);
    std::vector<std::pair<uint64_t, uint32_t>> live;  // id, thread
    std::map<uint64_t, uint64_t> size_of;
    uint64_t time[3] = {0, 0, 0};
    for (int i = 0; i < 3000; ++i) {
      uint32_t t = static_cast<uint32_t>(rng() % 3);
      time[t] += rng() % 50;
      if (!live.empty() && rng() % 2 == 0) {
        size_t k = rng() % live.size();
        w.Free(t, time[t], live[k].first);  // any thread may free
        live.erase(live.begin() + static_cast<long>(k));
      } else {
        uint64_t size = 1 + rng() % 100000;
        uint64_t id = w.Alloc(t, time[t], Api::kMalloc, size, 1 + rng() % 5);
        size_of[id] = size;
        live.push_back({id, t});
      }
    }
    w.End(0, 200000);
    absl::StatusOr<ProcessProfile> p = AnalyzeTrace(WriteTrace(w, "random"));
    ASSERT_TRUE(p.ok()) << p.status();
    const HeapTimeline& tl = p->heap_series;
    const HeapBucket* peak = tl.PeakBucket();
    ASSERT_NE(peak, nullptr);
    EXPECT_EQ(peak->max, p->totals.peak_bytes) << seed;
    EXPECT_EQ(peak->max_time_us, p->totals.peak_time_us) << seed;
    for (size_t i = 1; i < tl.buckets.size(); ++i) {
      EXPECT_EQ(tl.buckets[i].open, tl.buckets[i - 1].close) << seed;
      EXPECT_GT(tl.buckets[i].begin_us, tl.buckets[i - 1].begin_us) << seed;
    }
    uint64_t leaked = 0;
    for (const auto& l : live) leaked += size_of[l.first];
    EXPECT_EQ(tl.buckets.back().close, leaked) << seed;
    EXPECT_LE(tl.buckets.size(), 4096u);
  }
}

}  // namespace
}  // namespace heapsight::analyzer
