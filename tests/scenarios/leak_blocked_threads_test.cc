// tests/scenarios/leak_blocked_threads_test.cc: the exit leak scan with
// threads that cannot answer its stop signal
// (programs/leak_blocked_threads_program.cc): a daemon-style sigwait thread
// and a thread that blocks every signal in read(2). Neither is signalled
// (preload/task_status.h): the sigwait thread would otherwise take the
// stop signal as its own and print it, which is the program's output
// changed. Both are reported missed, their stacks are scanned from the
// stack pointer of their system call, so a block held only there is still
// reachable, exactly as memcheck and as before (the classes below are what
// the build before scan24 found, which waited 200 ms for them instead).
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <unordered_map>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

using format::LeakClass;
using format::RecordTag;

TEST(LeakBlockedThreadsScenario, ThreadsThatBlockTheSignalAreMissedNotSignalledAndScanned) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("leak_blocked_threads_program")}, dir,
                            {{"HEAPSIGHT_STATS", "1"}});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  // The sigwait loop got nothing: no "sigwait got signal N" line.
  EXPECT_EQ(run.out, "main done\n");
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);

  std::unordered_map<uint64_t, uint64_t> size_of;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kAlloc) size_of[r.id] = r.size;
  }
  int scans = 0;
  std::map<uint64_t, LeakClass> got;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kLeakScan) {
      ++scans;
      EXPECT_EQ(r.leak_scan.threads_stopped, 0u);
      EXPECT_EQ(r.leak_scan.threads_missed, 2u);
    }
    if (r.tag != RecordTag::kBlockClasses) continue;
    for (uint64_t id : r.block_classes.ids) {
      uint64_t size = size_of[id];
      if (size >= 7301 && size <= 7304) got[size] = r.block_classes.leak_class;
    }
  }
  EXPECT_EQ(scans, 1);
  std::map<uint64_t, LeakClass> want = {{7301, LeakClass::kReachable},
                                        {7302, LeakClass::kReachable},
                                        {7303, LeakClass::kDefinite},
                                        {7304, LeakClass::kReachable}};
  EXPECT_EQ(got, want);

  // HEAPSIGHT_STATS names them.
  std::smatch m;
  ASSERT_TRUE(std::regex_search(
      run.err, m, std::regex(R"(other threads (\d+) stopped, (\d+) missed \((\d+) not signalled\))")))
      << run.err;
  EXPECT_EQ(m[1], "0");
  EXPECT_EQ(m[2], "2");
  EXPECT_EQ(m[3], "2");
}

}  // namespace
}  // namespace heapsight::testing
