// tests/scenarios/leak_heuristics_test.cc: memcheck's four interior-pointer
// heuristics (stdstring, length64, newarray, multipleinheritance) on a real
// program (programs/leak_heuristics_program.cc), each next to a near miss.
// Expected classes checked against memcheck 3.19 (valgrind
// --leak-check=full --show-leak-kinds=all --leak-check-heuristics=all
// --run-libc-freeres=no --run-cxx-freeres=no): "still reachable ... of
// which reachable via heuristic: stdstring 5,225 bytes, length64 5,230,
// newarray 5,240, multipleinheritance 5,264"; possibly lost 20,978 bytes in
// 4 blocks (5226, 5231, 5249, 5272).
#include <gtest/gtest.h>

#include <map>
#include <unordered_map>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

using format::LeakClass;
using format::RecordTag;

TEST(LeakHeuristicsScenario, InteriorPointersMemcheckAccepts) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("leak_heuristics_program")}, dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  std::unordered_map<uint64_t, uint64_t> size_of;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kAlloc || r.tag == RecordTag::kRealloc) size_of[r.id] = r.size;
  }
  std::map<uint64_t, LeakClass> got;
  int scans = 0;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kLeakScan) ++scans;
    if (r.tag != RecordTag::kBlockClasses) continue;
    for (uint64_t id : r.block_classes.ids) {
      uint64_t size = size_of[id];
      if (size >= 5200 && size < 5300) got[size] = r.block_classes.leak_class;
    }
  }
  EXPECT_EQ(scans, 1);
  std::map<uint64_t, LeakClass> want = {
      {5225, LeakClass::kReachable},  // stdstring
      {5226, LeakClass::kPossible},
      {5230, LeakClass::kReachable},  // length64
      {5231, LeakClass::kPossible},
      {5240, LeakClass::kReachable},  // newarray
      {5249, LeakClass::kPossible},
      {5264, LeakClass::kReachable},  // multipleinheritance
      {5272, LeakClass::kPossible},
  };
  EXPECT_EQ(got, want);
}

}  // namespace
}  // namespace heapsight::testing
