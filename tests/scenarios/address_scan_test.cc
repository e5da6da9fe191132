// tests/scenarios/address_scan_test.cc: the leak scan and fork with address
// frees (HEAPSIGHT_PAIRING=address, trace format version 6), where the
// preload takes the live blocks from its cells (preload/leak_snapshot.h)
// instead of the live table: the same classes as table mode on the
// programs of leak_classes_test, leak_roots_test and leak_heuristics_test
// (their expectations, memcheck's, are repeated here), on-demand scans
// (heapsight_leak_check) and HEAPSIGHT_LEAK_SCAN=0; kBlockClasses names
// addresses, ascending; a fork child's kInherited records name the blocks
// live at the fork by address, with their family's api, their usable size
// and no stack.
#include <gtest/gtest.h>
#include <malloc.h>

#include <algorithm>
#include <map>
#include <unordered_map>
#include <vector>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

using format::LeakClass;
using format::RecordTag;

constexpr LeakClass kDefinite = LeakClass::kDefinite;
constexpr LeakClass kIndirect = LeakClass::kIndirect;
constexpr LeakClass kPossible = LeakClass::kPossible;
constexpr LeakClass kReachable = LeakClass::kReachable;

const std::map<std::string, std::string> kAddressMode = {{"HEAPSIGHT_PAIRING", "address"}};

// The size of the block live at an address at a given time, from the
// trace's allocations and frees by address (in time order; file order
// breaks ties, which within one thread is the order of its events).
class AddressHistory {
 public:
  explicit AddressHistory(const TraceContents& t) {
    size_t seq = 0;
    for (const auto& r : t.records) {
      ++seq;
      if (r.tag == RecordTag::kAlloc) Add(r.address, r.time_us, seq, r.size);
      if (r.tag == RecordTag::kInherited) Add(r.id, 0, seq, r.size);
      if (r.tag == RecordTag::kFree) Add(r.address, r.time_us, seq, kFreed);
      if (r.tag == RecordTag::kRealloc) {
        Add(r.old_address, r.time_us, seq, kFreed);
        Add(r.address, r.time_us, seq, r.size);
      }
    }
    for (auto& [address, events] : events_) {
      std::stable_sort(events.begin(), events.end(),
                       [](const Event& a, const Event& b) { return a.time < b.time; });
    }
  }
  // 0 if no block was live there.
  uint64_t SizeAt(uint64_t address, uint64_t time) const {
    auto it = events_.find(address);
    if (it == events_.end()) return 0;
    uint64_t size = 0;
    for (const Event& e : it->second) {
      if (e.time > time) break;
      size = e.size == kFreed ? 0 : e.size;
    }
    return size;
  }

 private:
  static constexpr uint64_t kFreed = ~uint64_t{0};
  struct Event {
    uint64_t time;
    size_t seq;
    uint64_t size;
  };
  void Add(uint64_t address, uint64_t time, size_t seq, uint64_t size) {
    events_[address].push_back(Event{time, seq, size});
  }
  std::unordered_map<uint64_t, std::vector<Event>> events_;
};

// size -> class of the blocks of every scan with sizes in [lo, hi) (or
// exactly `also`), pairing each listed address with the block live there
// when its scan ran. Checks that each record's addresses ascend and name
// live blocks.
std::map<uint64_t, LeakClass> ClassesBySize(const TraceContents& t, uint64_t lo, uint64_t hi,
                                            int* scans, uint64_t also = 0) {
  AddressHistory history(t);
  std::map<uint64_t, uint64_t> scan_time;  // scan -> time of its kLeakScan
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kLeakScan) scan_time[r.leak_scan.scan] = r.time_us;
  }
  *scans = static_cast<int>(scan_time.size());
  std::map<uint64_t, LeakClass> out;
  for (const auto& r : t.records) {
    if (r.tag != RecordTag::kBlockClasses) continue;
    EXPECT_TRUE(std::is_sorted(r.block_classes.ids.begin(), r.block_classes.ids.end()));
    uint64_t when = scan_time[r.block_classes.scan];
    for (uint64_t address : r.block_classes.ids) {
      uint64_t size = history.SizeAt(address, when);
      EXPECT_NE(size, 0u) << "a listed address with no live block: " << address;
      if ((size >= lo && size < hi) || (also != 0 && size == also)) {
        out[size] = r.block_classes.leak_class;
      }
    }
  }
  return out;
}

TraceContents RunOne(const std::vector<std::string>& argv, RunResult* run_out = nullptr,
                     std::map<std::string, std::string> env = kAddressMode) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced(argv, dir, env);
  EXPECT_EQ(run.exit_code, 0) << argv[0] << run.err;
  EXPECT_EQ(run.traces.size(), 1u);
  if (run_out != nullptr) *run_out = run;
  if (run.traces.empty()) return {};
  TraceContents t = ReadTrace(run.traces[0]);
  EXPECT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);
  EXPECT_EQ(t.header.version, format::kFormatVersionAddress);
  EXPECT_NE(t.header.flags & format::kFileFlagAddressFrees, 0u);
  return t;
}

std::map<uint64_t, LeakClass> RunMode(const std::string& mode) {
  TraceContents t = RunOne({ScenarioProgram("leak_classes_program"), mode});
  int scans = 0;
  auto classes = ClassesBySize(t, 4000, 5000, &scans);
  EXPECT_EQ(scans, 1) << mode;
  return classes;
}

// leak_classes_test's expectations, mode by mode.
TEST(AddressScanScenario, RootsInTlsStacksRegistersAndBlockedThreads) {
  EXPECT_EQ(RunMode("tls"), (std::map<uint64_t, LeakClass>{
                                {4001, kReachable}, {4002, kReachable}, {4003, kReachable},
                                {4004, kDefinite}}));
  EXPECT_EQ(RunMode("dyntls"), (std::map<uint64_t, LeakClass>{
                                   {4811, kReachable}, {4812, kReachable}, {4813, kDefinite}}));
  EXPECT_EQ(RunMode("stack"),
            (std::map<uint64_t, LeakClass>{{4101, kReachable}, {4102, kDefinite}}));
  EXPECT_EQ(RunMode("register"),
            (std::map<uint64_t, LeakClass>{{4201, kReachable}, {4202, kDefinite}}));
  EXPECT_EQ(RunMode("blocked"),
            (std::map<uint64_t, LeakClass>{{4301, kReachable}, {4302, kDefinite}}));
}

TEST(AddressScanScenario, LostCyclesChainsAndInteriorPointers) {
  std::map<uint64_t, LeakClass> got = RunMode("cycle");
  ASSERT_EQ(got.size(), 5u);
  EXPECT_NE(got[4401], got[4402]);
  EXPECT_TRUE(got[4401] == kDefinite || got[4401] == kIndirect);
  EXPECT_TRUE(got[4402] == kDefinite || got[4402] == kIndirect);
  EXPECT_EQ(got[4403], kDefinite);
  EXPECT_EQ(got[4404], kDefinite);
  EXPECT_EQ(got[4405], kIndirect);
  EXPECT_EQ(RunMode("interior"),
            (std::map<uint64_t, LeakClass>{{4501, kPossible}, {4502, kPossible}}));
}

TEST(AddressScanScenario, MappingsAreRootsAllocatorMemoryIsNot) {
  TraceContents t = RunOne({ScenarioProgram("leak_roots_program")});
  int scans = 0;
  std::map<uint64_t, LeakClass> got = ClassesBySize(t, 5101, 5111, &scans, 1u << 20);
  EXPECT_EQ(scans, 1);
  std::map<uint64_t, LeakClass> want = {
      {5101, kReachable}, {5102, kReachable}, {5103, kReachable}, {5104, kDefinite},
      {5105, kDefinite},  {5106, kIndirect},  {5107, kIndirect},  {5108, kDefinite},
      {5109, kReachable}, {5110, kReachable}, {1u << 20, kDefinite}};
  EXPECT_EQ(got, want);
}

// memcheck's heuristics test a block's exact size; the preload has it
// from the usable size and the cell's low bits (live_cells.h), so a block
// one byte off (5226, 5249: their sizes and 5225's, 5241's share a 16-byte
// step, and with the usable size alone they passed) is "possibly lost" as
// memcheck and table mode say. Every case is as memcheck says.
TEST(AddressScanScenario, HeuristicsSeeTheSizeTheBlockWasAskedWith) {
  TraceContents t = RunOne({ScenarioProgram("leak_heuristics_program")});
  int scans = 0;
  std::map<uint64_t, LeakClass> got = ClassesBySize(t, 5200, 5300, &scans);
  EXPECT_EQ(scans, 1);
  std::map<uint64_t, LeakClass> want = {
      {5225, kReachable},  // stdstring
      {5226, kPossible},
      {5230, kReachable},  // length64
      {5231, kPossible},
      {5240, kReachable},  // newarray
      {5249, kPossible},
      {5264, kReachable},  // multipleinheritance
      {5272, kPossible},
  };
  EXPECT_EQ(got, want);
}

TEST(AddressScanScenario, OnDemandScansAndTheExitScan) {
  RunResult run;
  TraceContents t = RunOne({ScenarioProgram("leak_classes_program"), "request"}, &run);
  EXPECT_EQ(run.out, "0 1\n");  // heapsight_leak_check(): lost blocks seen by each scan
  std::vector<int> reasons;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kLeakScan) reasons.push_back(static_cast<int>(r.leak_scan.reason));
  }
  EXPECT_EQ(reasons, (std::vector<int>{3, 3, 1}));  // request, request, exit
  int scans = 0;
  std::map<uint64_t, LeakClass> got = ClassesBySize(t, 4800, 4803, &scans);
  EXPECT_EQ(scans, 3);
  EXPECT_EQ(got[4801], kDefinite);
  EXPECT_EQ(got[4802], kReachable);
}

TEST(AddressScanScenario, ScanCanBeDisabled) {
  std::map<std::string, std::string> env = kAddressMode;
  env["HEAPSIGHT_LEAK_SCAN"] = "0";
  TraceContents t = RunOne({ScenarioProgram("leak_classes_program"), "cycle"}, nullptr, env);
  EXPECT_EQ(CountTag(t, RecordTag::kLeakScan), 0);
  EXPECT_EQ(CountTag(t, RecordTag::kBlockClasses), 0);
}

// The child of fork_program: its kInherited records are the blocks live at
// the fork (4001 and 4005), by the addresses the parent allocated them at,
// api kMalloc, the size asked for (usable size and cell), stack 0; the
// child's free of 4001 names that address.
TEST(AddressScanScenario, ForkChildInheritsTheCellsLiveBlocks) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("fork_program")}, dir, kAddressMode);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ForkTraces traces = ReadForkTraces(run.traces);
  ASSERT_EQ(traces.error, "");
  const TraceContents& parent = traces.parent;
  const TraceContents& child = traces.child;
  EXPECT_EQ(child.header.version, format::kFormatVersionAddress);
  EXPECT_NE(child.header.flags & format::kFileFlagAddressFrees, 0u);
  std::map<uint64_t, uint64_t> parent_address;  // size -> address, 4001 and 4005
  for (const auto& r : parent.records) {
    if (r.tag == RecordTag::kAlloc && (r.size == 4001 || r.size == 4005)) {
      parent_address[r.size] = r.address;
    }
  }
  ASSERT_EQ(parent_address.size(), 2u);
  std::map<uint64_t, const format::Record*> inherited;  // address -> record
  for (const auto& r : child.records) {
    if (r.tag == RecordTag::kInherited) inherited[r.id] = &r;
  }
  for (const auto& [size, address] : parent_address) {
    auto it = inherited.find(address);
    ASSERT_NE(it, inherited.end()) << size;
    const format::Record& r = *it->second;
    EXPECT_EQ(r.api, format::Api::kMalloc);
    EXPECT_EQ(r.stack, 0u);
    // 4001 and 4005 both take a 4016-byte chunk (4008 usable bytes); the
    // cell's low bits tell them apart.
    EXPECT_EQ(r.size, size);
  }
  // The child's first event at 4001's address is its free (then 4003
  // may take the same chunk).
  RecordTag first = RecordTag::kEnd;
  for (const auto& r : child.records) {
    if ((r.tag == RecordTag::kFree || r.tag == RecordTag::kAlloc) &&
        r.address == parent_address[4001]) {
      first = r.tag;
      break;
    }
  }
  EXPECT_EQ(first, RecordTag::kFree);
}

// A scan on HEAPSIGHT_LEAK_SIGNAL: 4201 lost, 4202 reachable; the exit
// scan sees neither (4201's memory holds no pointer, it is still lost;
// 4202 was freed).
TEST(AddressScanScenario, ScanOnSignal) {
  std::map<std::string, std::string> env = kAddressMode;
  env["HEAPSIGHT_LEAK_SIGNAL"] = "SIGUSR2";
  TraceContents t = RunOne({ScenarioProgram("address_scan_program"), "signal"}, nullptr, env);
  std::vector<int> reasons;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kLeakScan) reasons.push_back(static_cast<int>(r.leak_scan.reason));
  }
  EXPECT_EQ(reasons, (std::vector<int>{3, 1}));  // request, exit
  AddressHistory history(t);
  std::map<uint64_t, std::map<uint64_t, LeakClass>> by_scan;  // scan -> size -> class
  std::map<uint64_t, uint64_t> scan_time;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kLeakScan) scan_time[r.leak_scan.scan] = r.time_us;
  }
  for (const auto& r : t.records) {
    if (r.tag != RecordTag::kBlockClasses) continue;
    for (uint64_t address : r.block_classes.ids) {
      uint64_t size = history.SizeAt(address, scan_time[r.block_classes.scan]);
      if (size == 4201 || size == 4202) {
        by_scan[r.block_classes.scan][size] = r.block_classes.leak_class;
      }
    }
  }
  EXPECT_EQ(by_scan[1], (std::map<uint64_t, LeakClass>{{4201, kDefinite}, {4202, kReachable}}));
  EXPECT_EQ(by_scan[2], (std::map<uint64_t, LeakClass>{{4201, kDefinite}}));
}

// address_scan_program's child: blocks of the three families and one of
// another thread, inherited by address with their family's api.
TEST(AddressScanScenario, ForkChildInheritsEveryFamily) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("address_scan_program"), "fork"}, dir, kAddressMode);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "child status 0\n");
  ForkTraces traces = ReadForkTraces(run.traces);
  ASSERT_EQ(traces.error, "");
  const TraceContents& parent = traces.parent;
  const TraceContents& child = traces.child;
  EXPECT_TRUE(child.complete);
  std::map<uint64_t, uint64_t> size_at;  // parent: address -> size of 4101..4104
  for (const auto& r : parent.records) {
    if (r.tag == RecordTag::kAlloc && r.size >= 4101 && r.size <= 4104) size_at[r.address] = r.size;
  }
  ASSERT_EQ(size_at.size(), 4u);
  std::map<uint64_t, format::Api> api;  // size -> inherited api
  for (const auto& r : child.records) {
    if (r.tag != RecordTag::kInherited) continue;
    EXPECT_EQ(r.stack, 0u);
    auto it = size_at.find(r.id);
    if (it == size_at.end()) continue;
    api[it->second] = r.api;
    // Each takes a 4112-byte chunk (4104 usable bytes): the size asked for.
    EXPECT_EQ(r.size, it->second);
  }
  EXPECT_EQ(api, (std::map<uint64_t, format::Api>{{4101, format::Api::kMalloc},
                                                  {4102, format::Api::kNewArray},
                                                  {4103, format::Api::kNew},
                                                  {4104, format::Api::kMalloc}}));
  // The child's frees of 4101, 4103 and the thread's 4104 name their addresses.
  std::map<uint64_t, int> freed;
  for (const auto& r : child.records) {
    if (r.tag == RecordTag::kFree && size_at.count(r.address) != 0) ++freed[size_at[r.address]];
  }
  EXPECT_EQ(freed, (std::map<uint64_t, int>{{4101, 1}, {4103, 1}, {4104, 1}}));
  // The child's exit scan: the inherited array (4102) reachable, its own
  // 4105 lost.
  int scans = 0;
  std::map<uint64_t, LeakClass> got = ClassesBySize(child, 4101, 4106, &scans);
  EXPECT_EQ(scans, 1);
  EXPECT_EQ(got, (std::map<uint64_t, LeakClass>{{4102, kReachable}, {4105, kDefinite}}));
}

}  // namespace
}  // namespace heapsight::testing
