// tests/analyzer/report/leak_classes_test.cc: reading the preload's reachability
// classes and free errors from synthetic traces (model/leak_class_data.h):
// the last scan wins, blocks freed after it drop out, blocks allocated after
// it stay unclassified, errors resolve their allocation; and the split of a
// leak report by class (analyzer/report/leak_report.h).
#include "analyzer/report/leak_report.h"

#include <map>

#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"
#include "tests/support/run_traced.h"

namespace heapsight::analyzer {
namespace {

using format::Api;

std::string Write(testing::TestTraceWriter& w, const std::string& name) {
  w.FlushAll();
  std::string path = testing::MakeTempDir() + "/" + name + ".hst";
  EXPECT_TRUE(w.WriteFile(path));
  return path;
}

TEST(LeakClassesTest, LastScanLateFreesAndLateAllocations) {
  testing::TestTraceWriter w;
  uint64_t a = w.Alloc(1, 10, Api::kMalloc, 100, 0);
  uint64_t b = w.Alloc(1, 11, Api::kMalloc, 200, 0);
  uint64_t c = w.Alloc(2, 12, Api::kNew, 300, 0);
  // An early on-demand scan: everything reachable.
  w.LeakScan(1, 20, 1, format::ScanReason::kRequest);
  w.BlockClasses(1, 1, LeakClass::kReachable, {a, b, c});
  // The exit scan.
  w.LeakScan(1, 30, 2);
  w.BlockClasses(1, 2, LeakClass::kDefinite, {a});
  w.BlockClasses(1, 2, LeakClass::kIndirect, {c});
  w.BlockClasses(1, 2, LeakClass::kReachable, {b});
  w.Free(2, 40, b);                                   // late destructor, after the scan
  uint64_t d = w.Alloc(2, 41, Api::kMalloc, 400, 0);  // after the scan: no class
  (void)d;
  w.End(1, 50);
  std::string path = Write(w, "classes");
  absl::StatusOr<LeakClassData> data = ReadLeakClasses(path);
  ASSERT_TRUE(data.ok()) << data.status();
  EXPECT_TRUE(data->scanned);
  EXPECT_EQ(data->scan, 2u);
  EXPECT_EQ(data->reason, format::ScanReason::kExit);
  LeakClassCounts malloc_site = data->sites[{0, static_cast<uint8_t>(Api::kMalloc)}];
  EXPECT_EQ(malloc_site[LeakClass::kDefinite].blocks, 1u);  // a
  EXPECT_EQ(malloc_site[LeakClass::kDefinite].bytes, 100u);
  EXPECT_EQ(malloc_site[LeakClass::kReachable].blocks, 0u);  // b was freed after the scan
  EXPECT_EQ(malloc_site.Classified().blocks, 1u);
  LeakClassCounts new_site = data->sites[{0, static_cast<uint8_t>(Api::kNew)}];
  EXPECT_EQ(new_site[LeakClass::kIndirect].bytes, 300u);

  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok()) << p.status();
  LeakReport r = BuildLeakReport({&*p}, Suppressions());
  EXPECT_EQ(r.totals.classes[LeakClass::kDefinite].bytes, 100u);
  EXPECT_EQ(r.totals.classes[LeakClass::kIndirect].bytes, 300u);
  EXPECT_EQ(r.totals.classes[LeakClass::kUnclassified].bytes, 400u);  // d
  EXPECT_EQ(r.totals.leaked.bytes, 400u);  // lost: a + c; d is not judged after a scan
  EXPECT_EQ(r.processes[0].totals.leaked.blocks, 2u);
  std::vector<LeakClass> kinds;
  for (const LeakGroup& g : r.groups) kinds.push_back(g.kind);
  EXPECT_EQ(kinds, (std::vector<LeakClass>{LeakClass::kDefinite, LeakClass::kIndirect,
                                           LeakClass::kUnclassified}));
  EXPECT_EQ(CountedLeaks(r, *ParseLeakKinds("definite,possible")).bytes, 100u);
  EXPECT_EQ(CountedLeaks(r, *ParseLeakKinds("all")).bytes, 400u);
  std::string text = FormatLeakText(r);
  EXPECT_NE(text.find("Direct leak of 100 byte(s) in 1 object(s)"), std::string::npos) << text;
  EXPECT_NE(text.find("Indirect leak of 300 byte(s) in 1 object(s)"), std::string::npos) << text;
  EXPECT_NE(text.find("definitely lost: 100 bytes in 1 blocks"), std::string::npos) << text;
  // Issue 12: d, allocated after the scan, is listed as the summary counts
  // it (not classified, not leaked), not as a "Direct leak".
  EXPECT_NE(text.find("Not classified (allocated after the leak scan) of 400 byte(s) in 1 "
                      "object(s) allocated from:"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("Direct leak of 400"), std::string::npos) << text;
  EXPECT_NE(text.find("not classified: 400 bytes in 1 blocks"), std::string::npos) << text;
  EXPECT_NE(text.find("SUMMARY: heapsight: 400 byte(s) leaked in 2 allocation(s)."),
            std::string::npos)
      << text;
  nlohmann::json j = LeakReportToJson(r);
  EXPECT_EQ(j["totals"]["classes"]["indirectly_lost"]["bytes"], 300);
  EXPECT_EQ(j["totals"]["classes"]["unclassified"]["bytes"], 400);
  EXPECT_EQ(j["totals"]["leaked_bytes"], 400);
  EXPECT_EQ(j["processes"][0]["scanned"], true);
  EXPECT_EQ(j["groups"][2]["kind"], "unfreed");
}

TEST(LeakClassesTest, NoScanKeepsUnfreedAndCountsIt) {
  testing::TestTraceWriter w;
  w.Alloc(1, 10, Api::kMalloc, 100, 0);
  w.End(1, 20);
  std::string path = Write(w, "noscan");
  absl::StatusOr<LeakClassData> data = ReadLeakClasses(path);
  ASSERT_TRUE(data.ok());
  EXPECT_FALSE(data->scanned);
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok());
  LeakReport r = BuildLeakReport({&*p}, Suppressions());
  EXPECT_EQ(r.totals.leaked.bytes, 100u);
  EXPECT_EQ(r.totals.classes[LeakClass::kUnclassified].bytes, 100u);
  EXPECT_EQ(CountedLeaks(r, *ParseLeakKinds("definite")).bytes, 100u);
  EXPECT_NE(FormatLeakText(r).find("no reachability scan"), std::string::npos);
  EXPECT_FALSE(RestrictToLeakKinds(&*p, *data, *ParseLeakKinds("definite"), true).ok());
}

TEST(LeakClassesTest, FreeErrorsResolveTheirAllocation) {
  testing::TestTraceWriter w;
  uint64_t a = w.Alloc(1, 10, Api::kNewArray, 40, 0);
  w.FreeError(1, 11, Api::kDelete, format::FreeError::kMismatchedFree, 0x1000, 0, a);
  w.Free(1, 11, a, Api::kDelete);
  w.FreeError(2, 12, Api::kFree, format::FreeError::kInvalidFree, 0x2000, 0, 0);
  // A double free: the block's allocation and first free come before it.
  uint64_t b = w.Alloc(1, 13, Api::kMalloc, 77, 0);
  w.Free(1, 14, b);
  w.FreeError(1, 15, Api::kFree, format::FreeError::kDoubleFree, 0x3000, 0, b);
  // A mismatch whose allocation is in a later block of another thread.
  w.FreeError(3, 16, Api::kFree, format::FreeError::kMismatchedFree, 0x4000, 0,
              format::MakeAllocId(4, 0));
  w.Flush(3);
  w.Alloc(4, 9, Api::kNew, 33, 0);
  w.End(1, 20);
  std::string path = Write(w, "errors");
  absl::StatusOr<LeakClassData> data = ReadLeakClasses(path);
  ASSERT_TRUE(data.ok());
  ASSERT_EQ(data->errors.size(), 4u);
  // Errors come in time order; look them up by address.
  std::map<uint64_t, FreeErrorEvent> by_address;
  for (const FreeErrorEvent& e : data->errors) by_address[e.address] = e;
  EXPECT_TRUE(by_address[0x1000].alloc_known);
  EXPECT_EQ(by_address[0x1000].alloc_api, Api::kNewArray);
  EXPECT_EQ(by_address[0x1000].alloc_size, 40u);
  EXPECT_FALSE(by_address[0x2000].alloc_known);
  EXPECT_TRUE(by_address[0x3000].alloc_known);  // double free: second pass
  EXPECT_EQ(by_address[0x3000].alloc_size, 77u);
  EXPECT_TRUE(by_address[0x4000].alloc_known);  // allocation read after the error
  EXPECT_EQ(by_address[0x4000].alloc_api, Api::kNew);
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok());
  LeakReport r = BuildLeakReport({&*p}, Suppressions());
  EXPECT_EQ(r.totals.free_errors[static_cast<int>(format::FreeError::kMismatchedFree)], 2u);
  EXPECT_EQ(r.totals.FreeErrorCount(), 4u);
  nlohmann::json j = LeakReportToJson(r);
  std::map<uint64_t, nlohmann::json> json_by_address;
  for (const auto& e : j["errors"]) json_by_address[e["address"].get<uint64_t>()] = e;
  EXPECT_EQ(json_by_address[0x1000]["kind"], "mismatched_free");
  EXPECT_EQ(json_by_address[0x1000]["alloc_fn"], "operator new[]");
  EXPECT_EQ(json_by_address[0x1000]["free_fn"], "operator delete");
  EXPECT_EQ(json_by_address[0x2000]["kind"], "invalid_free");
  EXPECT_EQ(json_by_address[0x2000]["action"], "skipped");
  EXPECT_EQ(json_by_address[0x3000]["kind"], "double_free");
  EXPECT_EQ(j["totals"]["errors"]["total"], 4);
  EXPECT_EQ(j["totals"]["errors"]["double_free"], 1);
}

// A family: one process with a scan, one without. Each process's numbers
// are its own; the report's totals are their sums; blocks no scan judged
// are lost only in the process without a scan.
TEST(LeakClassesTest, FamilyTotalsAreTheSumOfTheProcesses) {
  testing::TestTraceWriter scanned(/*pid=*/100);
  uint64_t a = scanned.Alloc(1, 10, Api::kMalloc, 100, 0);
  uint64_t b = scanned.Alloc(1, 11, Api::kMalloc, 200, 0);
  scanned.FreeError(1, 12, Api::kFree, format::FreeError::kInvalidFree, 0x5000, 0, 0);
  scanned.LeakScan(1, 20, 1);
  scanned.BlockClasses(1, 1, LeakClass::kDefinite, {a});
  scanned.BlockClasses(1, 1, LeakClass::kReachable, {b});
  scanned.Alloc(2, 21, Api::kMalloc, 50, 0);  // after the scan: not judged
  scanned.End(1, 30);
  testing::TestTraceWriter unscanned(/*pid=*/101, /*ppid=*/100);
  unscanned.Alloc(1, 10, Api::kMalloc, 400, 0);
  unscanned.End(1, 20);
  absl::StatusOr<ProcessProfile> p1 = AnalyzeTrace(Write(scanned, "family_scanned"));
  absl::StatusOr<ProcessProfile> p2 = AnalyzeTrace(Write(unscanned, "family_unscanned"));
  ASSERT_TRUE(p1.ok() && p2.ok());
  LeakReport r = BuildLeakReport({&*p1, &*p2}, Suppressions());
  ASSERT_EQ(r.processes.size(), 2u);
  const LeakTotals& t1 = r.processes[0].totals;
  const LeakTotals& t2 = r.processes[1].totals;
  EXPECT_EQ(t1.leaked.bytes, 100u);  // a; b is reachable, the late block not judged
  EXPECT_EQ(t1.classes[LeakClass::kReachable].bytes, 200u);
  EXPECT_EQ(t1.classes[LeakClass::kUnclassified].bytes, 50u);
  EXPECT_EQ(t1.FreeErrorCount(), 1u);
  EXPECT_EQ(t2.leaked.bytes, 400u);
  EXPECT_EQ(t2.classes[LeakClass::kUnclassified].bytes, 400u);
  EXPECT_EQ(r.totals.leaked.bytes, 500u);
  EXPECT_EQ(r.totals.leaked.blocks, 2u);
  EXPECT_EQ(r.totals.classes[LeakClass::kUnclassified].bytes, 450u);
  EXPECT_EQ(r.totals.classes[LeakClass::kReachable].blocks, 1u);
  EXPECT_EQ(r.totals.FreeErrorCount(), 1u);
  EXPECT_EQ(CountedLeaks(r, *ParseLeakKinds("all")).bytes, 700u);
  EXPECT_EQ(CountedLeaks(r, *ParseLeakKinds("none")).bytes, 400u);
  // Groups: per process, then class.
  std::vector<std::pair<size_t, LeakClass>> order;
  for (const LeakGroup& g : r.groups) order.emplace_back(g.process, g.kind);
  EXPECT_EQ(order, (std::vector<std::pair<size_t, LeakClass>>{{0, LeakClass::kDefinite},
                                                              {0, LeakClass::kReachable},
                                                              {0, LeakClass::kUnclassified},
                                                              {1, LeakClass::kUnclassified}}));
  std::string text = FormatLeakText(r);
  EXPECT_NE(text.find("==101==SUMMARY: heapsight: 400 byte(s) leaked in 1 allocation(s)."),
            std::string::npos) << text;
  EXPECT_NE(text.find("\nSUMMARY: heapsight: 500 byte(s) leaked in 2 allocation(s).\n"),
            std::string::npos) << text;
  nlohmann::json j = LeakReportToJson(r);
  EXPECT_EQ(j["totals"]["leaked_bytes"], 500);
  EXPECT_EQ(j["processes"][1]["leaked_bytes"], 400);
  EXPECT_EQ(j["totals"]["errors"]["invalid_free"], 1);
}

// `report`'s summary: BuildLeakTotals gives BuildLeakReport's processes
// and totals (classes, lost, free errors) without a group.
TEST(LeakClassesTest, TotalsWithoutGroupsAreTheReportsTotals) {
  testing::TestTraceWriter scanned(/*pid=*/100);
  uint64_t a = scanned.Alloc(1, 10, Api::kMalloc, 100, 0);
  uint64_t b = scanned.Alloc(1, 11, Api::kMalloc, 200, 0);
  uint64_t c = scanned.Alloc(1, 12, Api::kNew, 300, 0);
  scanned.FreeError(1, 13, Api::kFree, format::FreeError::kInvalidFree, 0x5000, 0, 0);
  scanned.LeakScan(1, 20, 1);
  scanned.BlockClasses(1, 1, LeakClass::kDefinite, {a});
  scanned.BlockClasses(1, 1, LeakClass::kReachable, {b});
  scanned.BlockClasses(1, 1, LeakClass::kIndirect, {c});
  scanned.Alloc(2, 21, Api::kMalloc, 50, 0);  // after the scan: not judged
  scanned.End(1, 30);
  testing::TestTraceWriter unscanned(/*pid=*/101, /*ppid=*/100);
  unscanned.Alloc(1, 10, Api::kMalloc, 400, 0);
  unscanned.End(1, 20);
  absl::StatusOr<ProcessProfile> p1 = AnalyzeTrace(Write(scanned, "totals_scanned"));
  absl::StatusOr<ProcessProfile> p2 = AnalyzeTrace(Write(unscanned, "totals_unscanned"));
  ASSERT_TRUE(p1.ok() && p2.ok());
  LeakReport full = BuildLeakReport({&*p1, &*p2}, Suppressions());
  const uint64_t symbolized = p1->symbolizer->Stats().addresses;
  LeakReport totals = BuildLeakTotals({&*p1, &*p2});
  EXPECT_EQ(p1->symbolizer->Stats().addresses, symbolized);
  EXPECT_TRUE(totals.groups.empty());
  EXPECT_TRUE(totals.suppressed.empty());
  ASSERT_EQ(full.groups.size(), 5u);  // three classes and not judged; the second process's
  ASSERT_EQ(totals.processes.size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    const LeakTotals& t = totals.processes[i].totals;
    const LeakTotals& f = full.processes[i].totals;
    for (int k = 0; k <= format::kLeakClassCount; ++k) {
      LeakClass c = static_cast<LeakClass>(k);
      EXPECT_EQ(t.classes[c].bytes, f.classes[c].bytes) << i << " " << k;
      EXPECT_EQ(t.classes[c].blocks, f.classes[c].blocks) << i << " " << k;
    }
    EXPECT_EQ(t.leaked.bytes, f.leaked.bytes) << i;
    EXPECT_EQ(t.not_freed.bytes, f.not_freed.bytes) << i;
    EXPECT_EQ(t.FreeErrorCount(), f.FreeErrorCount()) << i;
  }
  EXPECT_EQ(totals.processes[0].totals.classes[LeakClass::kIndirect].bytes, 300u);
  EXPECT_EQ(totals.totals.leaked.bytes, 800u);  // a, c and the unscanned process's block
  EXPECT_EQ(totals.totals.leaked.blocks, 3u);
  EXPECT_EQ(totals.errors.size(), 1u);
  EXPECT_EQ(FormatLeakClassSummary(totals), FormatLeakClassSummary(full));
}

TEST(LeakClassesTest, LeakKindLists) {
  EXPECT_EQ(*ParseLeakKinds("definite,possible"),
            (LeakKinds{LeakClass::kDefinite, LeakClass::kPossible, LeakClass::kUnclassified}));
  EXPECT_EQ(ParseLeakKinds("all")->size(), 5u);
  EXPECT_EQ(*ParseLeakKinds("none"), LeakKinds{LeakClass::kUnclassified});
  EXPECT_EQ(*ParseLeakKinds("reachable,unfreed"),
            (LeakKinds{LeakClass::kReachable, LeakClass::kUnclassified}));
  EXPECT_FALSE(ParseLeakKinds("definitely").ok());
}

}  // namespace
}  // namespace heapsight::analyzer
