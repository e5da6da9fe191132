// tests/scenarios/reentry_test.cc: the hook path never calls malloc.
//
// programs/reentry_program.cc runs under LD_PRELOAD="libheapsight.so
// libmalloc_counter.so": the counter is heapsight's "real" allocator, so
// every allocation call that reaches it was either the program's own call,
// forwarded once by a heapsight hook, or an extra one that heapsight (or
// libunwind, zstd, libc on its behalf) made. The program counts its own
// calls; the two numbers must be equal, and every counted call must come
// straight from libheapsight.so's hooks. The negative control shows the
// count does notice one extra allocation.
#include <gtest/gtest.h>

#include <sstream>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

struct Counts {
  long expected = -1, counted = -1, from_heapsight = -1;
};

Counts RunCounter(const std::vector<std::string>& args, const std::map<std::string, std::string>& extra) {
  std::string dir = MakeTempDir();
  std::map<std::string, std::string> env = extra;
  env["LD_PRELOAD"] = BuildPath("preload/libheapsight.so") + " " +
                      BuildPath("tests/preload/libmalloc_counter.so");
  env["HEAPSIGHT_OUTPUT"] = dir + "/%e.%p.hst";
  env.emplace("HEAPSIGHT_RSS_INTERVAL_MS", "0");
  std::vector<std::string> argv = {ScenarioProgram("reentry_program")};
  argv.insert(argv.end(), args.begin(), args.end());
  // RunPlain leaves our LD_PRELOAD alone (RunTraced would replace it).
  RunResult run = RunPlain(argv, env);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  Counts c;
  std::istringstream(run.out) >> c.expected >> c.counted >> c.from_heapsight;
  return c;
}

TEST(ReentryScenario, HookPathNeverCallsMalloc) {
  for (const char* unwind : {"libunwind", "fp"}) {
    Counts c = RunCounter({}, {{"HEAPSIGHT_UNWIND", unwind}});
    EXPECT_GT(c.expected, 0) << unwind;
    EXPECT_EQ(c.counted, c.expected) << unwind;
    EXPECT_EQ(c.from_heapsight, c.expected) << unwind;
  }
}

TEST(ReentryScenario, HookPathNeverCallsMallocWithRssSampling) {
  Counts c = RunCounter({}, {{"HEAPSIGHT_RSS_INTERVAL_MS", "1"}, {"HEAPSIGHT_ZSTD_LEVEL", "3"}});
  EXPECT_EQ(c.counted, c.expected);
  EXPECT_EQ(c.from_heapsight, c.expected);
}

TEST(ReentryScenario, NegativeControlDetectsOneExtraAllocation) {
  Counts c = RunCounter({"extra"}, {});
  EXPECT_EQ(c.counted, c.expected + 1);
}

}  // namespace
}  // namespace heapsight::testing
