// tests/scenarios/leak_roots_test.cc: memcheck's root set on a real program
// (programs/leak_roots_program.cc): a block whose only pointer lives in a
// mapping the program made itself (private or shared anonymous, mapped
// PROT_NONE and made writable later, a private file mapping, the rest of
// a module's last data page past its bss) is still reachable; a pointer inside a freed chunk (main arena or a thread's
// arena) or inside a lost block (a small one, or a 1 MiB mmap'ed chunk)
// keeps nothing reachable. Expected classes checked against memcheck 3.19
// (valgrind --leak-check=full --show-leak-kinds=all --run-libc-freeres=no
// --run-cxx-freeres=no): the same class for every size below.
#include <gtest/gtest.h>
#include <unistd.h>

#include <map>
#include <unordered_map>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

using format::LeakClass;
using format::RecordTag;

std::map<uint64_t, LeakClass> ClassesBySize(const TraceContents& t, uint64_t lo, uint64_t hi,
                                            int* scans) {
  std::unordered_map<uint64_t, uint64_t> size_of;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kAlloc || r.tag == RecordTag::kRealloc) size_of[r.id] = r.size;
  }
  std::map<uint64_t, LeakClass> out;
  *scans = 0;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kLeakScan) ++*scans;
    if (r.tag != RecordTag::kBlockClasses) continue;
    for (uint64_t id : r.block_classes.ids) {
      uint64_t size = size_of[id];
      if ((size >= lo && size < hi) || size == (1u << 20) || size == (8u << 20) ||
          size == (6u << 20)) {
        out[size] = r.block_classes.leak_class;
      }
    }
  }
  return out;
}

TEST(LeakRootsScenario, MappingsAreRootsAllocatorMemoryIsNot) {
  std::string dir = MakeTempDir();
  RunResult run =
      RunTraced({ScenarioProgram("leak_roots_program")}, dir,
                // meson's MALLOC_PERTURB_ makes glibc write every page of a
                // new block, which would leave no page unwritten.
                {{"HEAPSIGHT_STATS", "1"}, {"MALLOC_PERTURB_", "0"}});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);
  int scans = 0;
  std::map<uint64_t, LeakClass> got = ClassesBySize(t, 5101, 5114, &scans);
  EXPECT_EQ(scans, 1);
  // memcheck 3.19: still reachable 5101, 5102, 5103, 5109, 5110; definitely lost
  // 5104, 5105, 5108 and the 1 MiB block; indirectly lost 5106, 5107. The
  // sparse holders: reachable 5111, 5112 and the 8 MiB block, indirectly
  // lost 5113, definitely lost the 6 MiB block.
  std::map<uint64_t, LeakClass> want = {
      {5101, LeakClass::kReachable}, {5102, LeakClass::kReachable},
      {5103, LeakClass::kReachable}, {5104, LeakClass::kDefinite},
      {5105, LeakClass::kDefinite},  {5106, LeakClass::kIndirect},
      {5107, LeakClass::kIndirect},  {5108, LeakClass::kDefinite},
      {5109, LeakClass::kReachable}, {5110, LeakClass::kReachable},
      {1u << 20, LeakClass::kDefinite},
      {5111, LeakClass::kReachable}, {5112, LeakClass::kReachable},
      {5113, LeakClass::kIndirect},  {8u << 20, LeakClass::kReachable},
      {6u << 20, LeakClass::kDefinite}};
  EXPECT_EQ(got, want);
  // The scan read the sparse blocks' and region's written pages only: of
  // their 5,632 pages at most a few dozen were written (the allocator's
  // header pages, the pointers' pages). No pagemap here: nothing skipped.
  size_t at = run.err.find(" pages never written skipped");
  ASSERT_NE(at, std::string::npos) << run.err;
  size_t start = run.err.rfind(' ', at - 1) + 1;
  uint64_t skipped = std::stoull(run.err.substr(start, at - start));
  if (access("/proc/self/pagemap", R_OK) == 0) {
    EXPECT_GE(skipped, 5500u) << run.err;
  }
}

}  // namespace
}  // namespace heapsight::testing
