// tests/scenarios/leak_classes_test.cc: the preload's reachability scan on
// real programs (programs/leak_classes_program.cc): pointers only in TLS,
// only on another thread's stack, only in another thread's registers, on the
// stack of a thread that blocks the scan's signal; lost cycles and chains;
// interior pointers; and the free errors (kFreeError) with the program kept
// running. Exact classes of the program's distinctive block sizes.
#include <gtest/gtest.h>

#include <map>
#include <unordered_map>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

using format::LeakClass;
using format::RecordTag;

// size -> class of every block of the last scan (sizes in [4000, 5000)).
std::map<uint64_t, LeakClass> Classes(const TraceContents& t, int* scans) {
  std::unordered_map<uint64_t, uint64_t> size_of;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kAlloc || r.tag == RecordTag::kRealloc) size_of[r.id] = r.size;
  }
  std::map<uint64_t, LeakClass> out;
  *scans = 0;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kLeakScan) ++*scans;
    if (r.tag != RecordTag::kBlockClasses) continue;
    for (uint64_t id : r.ids) {
      uint64_t size = size_of[id];
      if (size >= 4000 && size < 5000) out[size] = static_cast<LeakClass>(r.code);
    }
  }
  return out;
}

std::map<uint64_t, LeakClass> RunMode(const std::string& mode) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("leak_classes_program"), mode}, dir);
  EXPECT_EQ(run.exit_code, 0) << mode << run.err;
  EXPECT_EQ(run.traces.size(), 1u) << mode;
  if (run.traces.empty()) return {};
  TraceContents t = ReadTrace(run.traces[0]);
  EXPECT_EQ(t.error, "") << mode;
  EXPECT_TRUE(t.complete) << mode;
  int scans = 0;
  auto classes = Classes(t, &scans);
  EXPECT_EQ(scans, 1) << mode;
  return classes;
}

constexpr LeakClass kDefinite = LeakClass::kDefinite;
constexpr LeakClass kIndirect = LeakClass::kIndirect;
constexpr LeakClass kPossible = LeakClass::kPossible;
constexpr LeakClass kReachable = LeakClass::kReachable;

TEST(LeakClassesScenario, PointersInThreadLocalStorage) {
  std::map<uint64_t, LeakClass> want = {
      {4001, kReachable}, {4002, kReachable}, {4003, kReachable}, {4004, kDefinite}};
  EXPECT_EQ(RunMode("tls"), want);
}

TEST(LeakClassesScenario, PointersInDynamicTlsOfADlopenedModule) {
  std::map<uint64_t, LeakClass> want = {{4811, kReachable}, {4812, kReachable}, {4813, kDefinite}};
  EXPECT_EQ(RunMode("dyntls"), want);
}

TEST(LeakClassesScenario, PointerOnlyOnAnotherThreadsStack) {
  std::map<uint64_t, LeakClass> want = {{4101, kReachable}, {4102, kDefinite}};
  EXPECT_EQ(RunMode("stack"), want);
}

TEST(LeakClassesScenario, PointerOnlyInAnotherThreadsRegisters) {
  std::map<uint64_t, LeakClass> want = {{4201, kReachable}, {4202, kDefinite}};
  EXPECT_EQ(RunMode("register"), want);
}

TEST(LeakClassesScenario, ThreadBlockingTheSignalIsScannedFromItsSyscallStack) {
  std::map<uint64_t, LeakClass> want = {{4301, kReachable}, {4302, kDefinite}};
  EXPECT_EQ(RunMode("blocked"), want);
}

TEST(LeakClassesScenario, LostCyclesAndChains) {
  // memcheck: in a lost cycle the lowest-addressed block leads the clique
  // (definite), the rest is indirect; which of 4401/4402 that is depends on
  // the allocator, so check the pair as a set.
  std::map<uint64_t, LeakClass> got = RunMode("cycle");
  ASSERT_EQ(got.size(), 5u);
  EXPECT_NE(got[4401], got[4402]);
  EXPECT_TRUE(got[4401] == kDefinite || got[4401] == kIndirect);
  EXPECT_TRUE(got[4402] == kDefinite || got[4402] == kIndirect);
  EXPECT_EQ(got[4403], kDefinite);  // points only to itself
  EXPECT_EQ(got[4404], kDefinite);
  EXPECT_EQ(got[4405], kIndirect);
}

TEST(LeakClassesScenario, InteriorPointerMakesPossiblyLost) {
  std::map<uint64_t, LeakClass> want = {{4501, kPossible}, {4502, kPossible}};
  EXPECT_EQ(RunMode("interior"), want);
}

TEST(LeakClassesScenario, ScanCanBeDisabled) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("leak_classes_program"), "cycle"}, dir,
                            {{"HEAPSIGHT_LEAK_SCAN", "0"}});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);
  // The program's five blocks are recorded; only their classification is off.
  EXPECT_EQ(CountMagic(t, 4401, 4406).by_size.size(), 5u);
  int scans = 0;
  EXPECT_TRUE(Classes(t, &scans).empty());
  EXPECT_EQ(scans, 0);
}

TEST(LeakClassesScenario, OnDemandScansAndTheExitScan) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("leak_classes_program"), "request"}, dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "0 1\n");  // the first scan saw no lost block, the second one
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  std::vector<int> reasons;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kLeakScan) {
      reasons.push_back(r.code);
      EXPECT_EQ(r.value, reasons.size());  // numbered 1, 2, 3
    }
  }
  EXPECT_EQ(reasons, (std::vector<int>{3, 3, 1}));  // request, request, exit
  int scans = 0;
  std::map<uint64_t, LeakClass> got = Classes(t, &scans);  // every scan's records
  EXPECT_EQ(got[4801], kDefinite);
  EXPECT_EQ(got[4802], kReachable);
}

struct FreeErrorSeen {
  format::FreeError error;
  format::FreeAction action;
  format::Api api;
  uint64_t alloc_size;  // 0: no allocation named
};

std::vector<FreeErrorSeen> Errors(const std::string& mode, std::string* out) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("leak_classes_program"), mode}, dir);
  EXPECT_EQ(run.exit_code, 0) << mode;
  *out = run.out;
  EXPECT_EQ(run.traces.size(), 1u);
  if (run.traces.empty()) return {};
  TraceContents t = ReadTrace(run.traces[0]);
  std::unordered_map<uint64_t, uint64_t> size_of;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kAlloc) size_of[r.id] = r.size;
  }
  std::vector<FreeErrorSeen> seen;
  for (const auto& r : t.records) {
    if (r.tag != RecordTag::kFreeError) continue;
    EXPECT_NE(r.stack, 0u);
    seen.push_back({static_cast<format::FreeError>(r.code),
                    static_cast<format::FreeAction>(r.code2), r.api,
                    r.id != 0 ? size_of[r.id] : 0});
  }
  return seen;
}

TEST(LeakClassesScenario, DoubleFreeKeepsTheProgramRunning) {
  std::string out;
  auto e = Errors("double", &out);
  EXPECT_EQ(out, "alive\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].error, format::FreeError::kDoubleFree);
  EXPECT_EQ(e[0].action, format::FreeAction::kSkipped);
  EXPECT_EQ(e[0].alloc_size, 4601u);  // the allocation's stack is known through its id
}

TEST(LeakClassesScenario, InvalidFreeKeepsTheProgramRunning) {
  std::string out;
  auto e = Errors("invalid", &out);
  EXPECT_EQ(out, "alive\n");
  ASSERT_EQ(e.size(), 1u);
  EXPECT_EQ(e[0].error, format::FreeError::kInvalidFree);
  EXPECT_EQ(e[0].action, format::FreeAction::kSkipped);
  EXPECT_EQ(e[0].alloc_size, 0u);
}

TEST(LeakClassesScenario, MismatchedFreesAreRecordedAndPerformed) {
  std::string out;
  auto e = Errors("mismatch", &out);
  EXPECT_EQ(out, "alive\n");
  ASSERT_EQ(e.size(), 2u);
  EXPECT_EQ(e[0].error, format::FreeError::kMismatchedFree);
  EXPECT_EQ(e[0].action, format::FreeAction::kPassed);
  EXPECT_EQ(format::FamilyOf(e[0].api), format::ApiFamily::kNew);  // delete of malloc'd
  EXPECT_EQ(e[0].alloc_size, 4701u);
  EXPECT_EQ(e[1].api, format::Api::kFree);  // free of new[]'d
  EXPECT_EQ(e[1].alloc_size, 4702u);
}

}  // namespace
}  // namespace heapsight::testing
