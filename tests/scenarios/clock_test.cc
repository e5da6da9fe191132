// tests/scenarios/clock_test.cc: HEAPSIGHT_CLOCK. A one-thread process gets
// tick-resolution timestamps (auto, coarse); a second thread switches auto to
// microseconds; precise has microseconds from the start
// (programs/clock_program.cc: an allocation every ~20 us for 40 ms per
// thread).
#include <gtest/gtest.h>
#include <time.h>

#include <set>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

struct Times {
  bool coarse_flag = false;
  std::set<uint64_t> main_times;    // distinct times of malloc(3001)
  std::set<uint64_t> worker_times;  // distinct times of malloc(3002)
  uint64_t main_allocs = 0;
  uint64_t worker_allocs = 0;
};

Times RunClockProgram(const std::vector<std::string>& args, const std::map<std::string, std::string>& env) {
  std::string dir = MakeTempDir();
  std::vector<std::string> argv = {ScenarioProgram("clock_program")};
  argv.insert(argv.end(), args.begin(), args.end());
  RunResult run = RunTraced(argv, dir, env);
  Times times;
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "clock done\n");
  if (run.traces.size() != 1u) {
    ADD_FAILURE() << "traces: " << run.traces.size();
    return times;
  }
  TraceContents t = ReadTrace(run.traces[0]);
  EXPECT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);
  times.coarse_flag = (t.header.flags & format::kFileFlagCoarseClock) != 0;
  for (const auto& r : t.records) {
    if (r.tag != format::RecordTag::kAlloc) continue;
    if (r.size == 3001) {
      times.main_times.insert(r.time_us);
      ++times.main_allocs;
    } else if (r.size == 3002) {
      times.worker_times.insert(r.time_us);
      ++times.worker_allocs;
    }
  }
  return times;
}

// The coarse clock's tick, in microseconds (1000 to 4000 on common kernels).
uint64_t TickUs() {
  timespec res{};
  clock_getres(CLOCK_MONOTONIC_COARSE, &res);
  return static_cast<uint64_t>(res.tv_nsec) / 1000;
}

// Distinct times of a coarse stream lie a tick or more apart (a microsecond
// less: each is truncated to microseconds on its own).
void ExpectTickSpaced(const std::set<uint64_t>& times) {
  uint64_t tick = TickUs();
  ASSERT_GE(tick, 2u) << "the coarse clock is not coarse here";
  uint64_t prev = 0;
  bool first = true;
  for (uint64_t t : times) {
    if (!first) {
      EXPECT_GE(t - prev, tick - 1) << "times " << prev << " and " << t;
    }
    prev = t;
    first = false;
  }
  // 2,000 allocations 20 us apart span 40 ms or more (more on a loaded
  // machine): several ticks, never more distinct times than ticks.
  EXPECT_GE(times.size(), 2u);
  if (!times.empty()) {
    EXPECT_LE(times.size(), (*times.rbegin() - *times.begin()) / (tick - 1) + 2);
  }
}

TEST(ClockScenario, OneThreadGetsTheCoarseClock) {
  Times t = RunClockProgram({}, {});
  EXPECT_TRUE(t.coarse_flag);
  EXPECT_EQ(t.main_allocs, 2000u);
  ExpectTickSpaced(t.main_times);
  EXPECT_EQ(t.worker_allocs, 0u);
}

TEST(ClockScenario, ASecondThreadSwitchesToMicroseconds) {
  Times t = RunClockProgram({"thread"}, {});
  EXPECT_TRUE(t.coarse_flag);  // the file began with the coarse clock
  ExpectTickSpaced(t.main_times);
  // The worker's allocations come ~20 us apart: with microsecond time most
  // have distinct times (a coarse clock would give at most 40 ms / tick).
  EXPECT_EQ(t.worker_allocs, 2000u);
  EXPECT_GE(t.worker_times.size(), t.worker_allocs / 2);
  // And they come after every one of the main thread's.
  ASSERT_FALSE(t.main_times.empty());
  ASSERT_FALSE(t.worker_times.empty());
  EXPECT_GE(*t.worker_times.begin(), *t.main_times.rbegin());
}

TEST(ClockScenario, PreciseHasMicrosecondsFromTheStart) {
  Times t = RunClockProgram({}, {{"HEAPSIGHT_CLOCK", "precise"}});
  EXPECT_FALSE(t.coarse_flag);
  EXPECT_EQ(t.main_allocs, 2000u);
  EXPECT_GE(t.main_times.size(), t.main_allocs / 2);
}

TEST(ClockScenario, CoarseStaysCoarseWithThreads) {
  Times t = RunClockProgram({"thread"}, {{"HEAPSIGHT_CLOCK", "coarse"}});
  EXPECT_TRUE(t.coarse_flag);
  ExpectTickSpaced(t.main_times);
  ExpectTickSpaced(t.worker_times);
}

}  // namespace
}  // namespace heapsight::testing
