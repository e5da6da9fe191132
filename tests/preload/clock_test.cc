// tests/preload/clock_test.cc: the TSC calibration behind FastMonotonicNs()
// and the coarse clock (preload/clock.h). Agreement with the kernel's clock
// is checked on reads that were not preempted (both kernel reads within
// 20 us of each other), so a loaded machine cannot fail the test, only a
// wrong calibration can.
#include "preload/clock.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <string>
#include <thread>

namespace heapsight::preload {
namespace {

std::string KernelClocksource() {
  std::ifstream in("/sys/devices/system/clocksource/clocksource0/current_clocksource");
  std::string s;
  in >> s;
  return s;
}

// FastMonotonicNs() lies within [before - slack, after + slack] of two
// MonotonicNs() reads around it, for every read not preempted. Returns the
// number of such reads.
int ExpectAgreesWithKernel(uint64_t slack_ns) {
  int tight = 0;
  for (int i = 0; i < 2000; ++i) {
    uint64_t before = MonotonicNs();
    uint64_t fast = FastMonotonicNs();
    uint64_t after = MonotonicNs();
    if (after - before > 20000) continue;
    ++tight;
    EXPECT_GE(fast + slack_ns, before) << "read " << i;
    EXPECT_LE(fast, after + slack_ns) << "read " << i;
    if (::testing::Test::HasFailure()) break;
  }
  return tight;
}

// A (tsc, ns) pair whose two TSC reads are close (not preempted between).
void TightPair(uint64_t* tsc, uint64_t* ns) {
  for (;;) {
    uint64_t a = __rdtsc();
    *ns = MonotonicNs();
    uint64_t b = __rdtsc();
    if (b >= a && b - a < 2000) {
      *tsc = a + (b - a) / 2;
      return;
    }
  }
}

double RateNsPerTick() {
  return static_cast<double>(g_tsc_calibration.ns_per_tick_q32.load()) / 4294967296.0;
}

// One test: the calibration is process state (InitClock is idempotent,
// but the order of what follows matters).
TEST(Clock, CalibrationFollowsTheKernelAndTracksItsClock) {
  InitClock();
  // The TSC is used exactly when the kernel's own clocksource is the TSC.
  EXPECT_EQ(g_tsc_enabled, KernelClocksource() == "tsc") << KernelClocksource();
  if (!g_tsc_enabled) {
    // Without it FastMonotonicNs() is the kernel clock itself.
    uint64_t before = MonotonicNs();
    uint64_t fast = FastMonotonicNs();
    uint64_t after = MonotonicNs();
    EXPECT_LE(before, fast);
    EXPECT_LE(fast, after);
    GTEST_SKIP() << "clocksource is \"" << KernelClocksource()
                 << "\", not tsc: the TSC calibration is not used on this machine";
  }
  uint32_t seq = g_tsc_calibration.sequence.load();
  EXPECT_EQ(seq % 2, 0u);  // published, no writer in progress
  EXPECT_GE(seq, 2u);
  // 0.1 to 20 GHz, the code's own bounds, then the real thing below.
  EXPECT_GT(RateNsPerTick(), 0.05);
  EXPECT_LT(RateNsPerTick(), 10.0);
  // Right after the first, ~200 us calibration: within 50 us (its rate is
  // only good to a few parts in 10^4, more on a loaded machine).
  EXPECT_GE(ExpectAgreesWithKernel(50000), 100);

  // Over 100 ms, measured here independently: ticks per nanosecond.
  uint64_t tsc0, ns0, tsc1, ns1;
  TightPair(&tsc0, &ns0);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  TightPair(&tsc1, &ns1);
  double measured = static_cast<double>(ns1 - ns0) / static_cast<double>(tsc1 - tsc0);
  RecalibrateClock();
  EXPECT_EQ(g_tsc_calibration.sequence.load(), seq + 2);  // one more publication
  // The refined rate (over the whole span since InitClock) matches to 2e-4.
  EXPECT_NEAR(RateNsPerTick(), measured, measured * 2e-4);
  // And re-anchored: within 10 us again, 100 ms after the first calibration.
  EXPECT_GE(ExpectAgreesWithKernel(10000), 100);
  // Still within 10 us 20 ms after the anchor: the rate is right (an error
  // of 1e-3 would be 20 us off by now).
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_GE(ExpectAgreesWithKernel(10000), 100);
}

// A fork child whose parent was mid-publication (odd sequence): readers
// would spin forever; ResetClockInChild() makes the sequence even and
// publishes a fresh anchor. Run in a child process with an alarm so that a
// hang is a failure, not a stuck test.
TEST(Clock, ResetInChildRepairsAHalfWrittenCalibration) {
  InitClock();
  if (!g_tsc_enabled) GTEST_SKIP() << "clocksource is not tsc: no calibration to repair";
  EXPECT_EXIT(
      {
        alarm(10);
        uint32_t seq = g_tsc_calibration.sequence.load();
        g_tsc_calibration.sequence.store(seq + 1);           // a writer "vanished"
        g_tsc_calibration.anchor_ns.store(12345);            // ...leaving torn fields
        ResetClockInChild();
        bool even = g_tsc_calibration.sequence.load() % 2 == 0;
        uint64_t before = MonotonicNs();
        uint64_t fast = FastMonotonicNs();
        uint64_t after = MonotonicNs();
        bool close = fast + 20000 >= before && fast <= after + 20000;
        _exit(even && close ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(Clock, RecalibrationIsANoOpWithoutTheTsc) {
  InitClock();
  bool saved = g_tsc_enabled;
  g_tsc_enabled = false;
  uint32_t seq = g_tsc_calibration.sequence.load();
  RecalibrateClock();
  EXPECT_EQ(g_tsc_calibration.sequence.load(), seq);
  uint64_t before = MonotonicNs();
  uint64_t fast = FastMonotonicNs();
  uint64_t after = MonotonicNs();
  EXPECT_LE(before, fast);
  EXPECT_LE(fast, after);
  g_tsc_enabled = saved;
}

// The coarse clock has MonotonicNs()'s epoch and is never ahead of it. (How
// far behind depends on the kernel's tick handling: clock.h says "at most
// one tick", but 6.9 ms behind a 4 ms tick was seen on a loaded VM, so
// only "well under a second" is asserted.)
TEST(Clock, CoarseClockHasTheSameEpochAndIsNeverAhead) {
  for (int i = 0; i < 1000; ++i) {
    uint64_t coarse = CoarseMonotonicNs();
    uint64_t precise = MonotonicNs();
    ASSERT_LE(coarse, precise) << i;
    ASSERT_LT(precise - coarse, 500000000u) << i;
  }
}

}  // namespace
}  // namespace heapsight::preload
