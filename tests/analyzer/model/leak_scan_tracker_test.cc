// tests/analyzer/model/leak_scan_tracker_test.cc: the one rule for which
// leak scan counts (leak_scan_tracker.h), alone and as both analyses apply
// it: AnalyzeTrace (a finished trace, time order) and LiveProcess (`record
// --serve`, file order) fed the same records, among them an older scan's
// records read after a newer scan's, give the same leak classes.
#include "analyzer/model/leak_scan_tracker.h"

#include <unistd.h>

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "analyzer/model/live_process.h"
#include "analyzer/model/trace_model.h"
#include "format/trace_reader.h"
#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer {
namespace {

using format::Api;
using format::LeakClass;
using testing::TestTraceWriter;

format::Record::LeakScanFields Scan(uint64_t number, uint64_t root_bytes) {
  format::Record::LeakScanFields l;
  l.scan = number;
  l.root_bytes = root_bytes;
  return l;
}

format::Record::BlockClassesFields Classes(uint64_t scan, LeakClass c,
                                           std::vector<uint64_t> ids) {
  format::Record::BlockClassesFields b;
  b.scan = scan;
  b.leak_class = c;
  b.ids = std::move(ids);
  return b;
}

// Every block is live, on stack = its id, api malloc, size = 10 x its id.
LeakClassData Join(const LeakScanTracker& t, LeakClassData d) {
  t.AddLiveClasses(&d, [](uint64_t id, uint64_t* stack, Api* api, uint64_t* size) {
    *stack = id;
    *api = Api::kMalloc;
    *size = 10 * id;
    return true;
  });
  return d;
}

uint64_t Blocks(const LeakClassData& d, uint64_t stack, LeakClass c) {
  auto it = d.sites.find({stack, static_cast<uint8_t>(Api::kMalloc)});
  return it == d.sites.end() ? 0 : it->second[c].blocks;
}

TEST(LeakScanTrackerTest, AnOlderScanReadAfterANewerOneIsIgnored) {
  LeakScanTracker t;
  LeakClassData d;
  EXPECT_TRUE(t.OnLeakScan(Scan(2, 222), &d));
  t.OnBlockClasses(Classes(2, LeakClass::kDefinite, {1, 2}));
  EXPECT_FALSE(t.OnLeakScan(Scan(1, 111), &d));
  t.OnBlockClasses(Classes(1, LeakClass::kReachable, {1, 2, 3}));
  EXPECT_EQ(d.scan, 2u);
  EXPECT_EQ(d.root_bytes, 222u);
  d = Join(t, d);
  EXPECT_EQ(Blocks(d, 1, LeakClass::kDefinite), 1u);
  EXPECT_EQ(Blocks(d, 2, LeakClass::kDefinite), 1u);
  EXPECT_EQ(Blocks(d, 1, LeakClass::kReachable), 0u);
  EXPECT_EQ(d.sites.size(), 2u);  // block 3 has no class of scan 2
}

// ForEachClassified lists the blocks AddLiveClasses looks up, in its order
// (the analysis adds them itself in that order, after looking them up
// ahead), with their classes.
TEST(LeakScanTrackerTest, ForEachClassifiedIsAddLiveClassesOrder) {
  LeakScanTracker t;
  LeakClassData d;
  EXPECT_TRUE(t.OnLeakScan(Scan(1, 100), &d));
  std::vector<uint64_t> definite, indirect;
  for (uint64_t id = 1; id <= 300; ++id) (id % 3 == 0 ? indirect : definite).push_back(id * 7);
  t.OnBlockClasses(Classes(1, LeakClass::kDefinite, definite));
  t.OnBlockClasses(Classes(1, LeakClass::kIndirect, indirect));
  std::vector<uint64_t> asked;
  t.AddLiveClasses(&d, [&](uint64_t id, uint64_t* stack, Api* api, uint64_t* size) {
    asked.push_back(id);
    *stack = id;
    *api = Api::kMalloc;
    *size = 1;
    return true;
  });
  std::vector<uint64_t> listed;
  t.ForEachClassified([&](uint64_t id, LeakClass cls) {
    listed.push_back(id);
    EXPECT_EQ(cls, (id / 7) % 3 == 0 ? LeakClass::kIndirect : LeakClass::kDefinite) << id;
  });
  EXPECT_EQ(listed, asked);
  EXPECT_EQ(listed.size(), 300u);
}

TEST(LeakScanTrackerTest, ANewerScansClassesBeforeItsHeaderRejectAnOlderHeader) {
  LeakScanTracker t;
  LeakClassData d;
  t.OnBlockClasses(Classes(2, LeakClass::kIndirect, {4}));  // scan 2's classes first
  EXPECT_EQ(t.newest_scan(), 2u);
  EXPECT_FALSE(t.OnLeakScan(Scan(1, 111), &d));  // scan 1's header, late
  EXPECT_FALSE(d.scanned);
  t.OnBlockClasses(Classes(1, LeakClass::kReachable, {4, 5}));
  EXPECT_TRUE(t.OnLeakScan(Scan(2, 222), &d));
  EXPECT_TRUE(d.scanned);
  EXPECT_EQ(d.scan, 2u);
  d = Join(t, d);
  EXPECT_EQ(Blocks(d, 4, LeakClass::kIndirect), 1u);
  EXPECT_EQ(Blocks(d, 4, LeakClass::kReachable), 0u);
  EXPECT_EQ(d.sites.size(), 1u);
}

TEST(LeakScanTrackerTest, ANewerScanReplacesEveryClassOfTheOlder) {
  LeakScanTracker t;
  LeakClassData d;
  EXPECT_TRUE(t.OnLeakScan(Scan(1, 1), &d));
  t.OnBlockClasses(Classes(1, LeakClass::kReachable, {1, 2}));
  t.Forget(2);
  EXPECT_TRUE(t.OnLeakScan(Scan(3, 3), &d));
  t.OnBlockClasses(Classes(3, LeakClass::kPossible, {7}));
  d = Join(t, d);
  EXPECT_EQ(d.sites.size(), 1u);
  EXPECT_EQ(Blocks(d, 7, LeakClass::kPossible), 1u);
}

// The per-site class counts of `d` as text, in stack order, e.g.
// "1:definite=1/10 ".
std::string ClassesText(const LeakClassData& d) {
  std::vector<std::pair<uint64_t, std::string>> rows;
  for (const auto& [key, counts] : d.sites) {
    std::string row;
    for (LeakClass c : kLeakClassesInOrder) {
      if (counts[c].blocks == 0) continue;
      row += std::to_string(key.first) + ":" + std::to_string(static_cast<int>(c)) + "=" +
             std::to_string(counts[c].blocks) + "/" + std::to_string(counts[c].bytes) + " ";
    }
    rows.emplace_back(key.first, row);
  }
  std::sort(rows.begin(), rows.end());
  std::string out;
  for (const auto& r : rows) out += r.second;
  return out;
}

// The records of a newer scan (2) come before those of an older one (1),
// which come late, and scan 2's header last. One thread, so that time
// order (AnalyzeTrace) and file order (LiveProcess) are the same sequence.
TEST(LeakScanTrackerTest, AnalyzeTraceAndLiveProcessAgreeOnALateOlderScan) {
  TestTraceWriter w;
  w.StackNode(0, 1, 0, 0x1000);
  w.StackNode(0, 2, 0, 0x2000);
  uint64_t a = w.Alloc(0, 10, Api::kMalloc, 100, 1);
  uint64_t b = w.Alloc(0, 11, Api::kMalloc, 200, 1);
  uint64_t c = w.Alloc(0, 12, Api::kMalloc, 400, 2);
  w.Flush(0);
  w.BlockClasses(0, 2, LeakClass::kDefinite, {a});
  w.BlockClasses(0, 2, LeakClass::kIndirect, {b});
  w.Flush(0);
  w.LeakScan(0, 20, 1, format::ScanReason::kRequest);  // the older scan, late
  w.BlockClasses(0, 1, LeakClass::kReachable, {a, b, c});
  w.Flush(0);
  w.LeakScan(0, 21, 2, format::ScanReason::kRequest);
  w.Flush(0);
  uint64_t d = w.Alloc(0, 30, Api::kMalloc, 800, 2);  // after every scan: no class
  (void)d;
  std::string path =
      ::testing::TempDir() + "/leak_scan_rule." + std::to_string(getpid()) + ".hst";
  ASSERT_TRUE(w.WriteFile(path));

  AnalyzeOptions options;
  options.classify_runtime = false;
  absl::StatusOr<ProcessProfile> model = AnalyzeTrace(path, options);
  ASSERT_TRUE(model.ok()) << model.status();

  auto reader = format::TraceReader::Open(path);
  ASSERT_TRUE(reader.ok()) << reader.status();
  LiveProcess live(path, (*reader)->header());
  std::vector<uint8_t> chunk;
  while ((*reader)->NextChunk(&chunk)) ASSERT_TRUE(live.ApplyChunk(chunk).ok());
  ASSERT_TRUE((*reader)->status().ok());
  ProcessProfile snapshot = live.Snapshot();

  const std::string expected = "1:1=1/100 1:2=1/200 ";  // a definite, b indirect; c none
  EXPECT_EQ(ClassesText(model->leak_classes), expected);
  EXPECT_EQ(ClassesText(snapshot.leak_classes), expected);
  EXPECT_TRUE(model->leak_classes.scanned);
  EXPECT_TRUE(snapshot.leak_classes.scanned);
  EXPECT_EQ(model->leak_classes.scan, 2u);
  EXPECT_EQ(snapshot.leak_classes.scan, 2u);
  EXPECT_EQ(live.last_scan().scan, 2u);
  unlink(path.c_str());
}

}  // namespace
}  // namespace heapsight::analyzer
