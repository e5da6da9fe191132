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
#include <dirent.h>
#include <gtest/gtest.h>

#include <sstream>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

struct Counts {
  long expected = -1, counted = -1, from_heapsight = -1;
};

// The .hst files in `dir` (RunPlain, unlike RunTraced, does not list them).
std::vector<std::string> TracesIn(const std::string& dir) {
  std::vector<std::string> traces;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string name = e->d_name;
      if (name.size() > 4 && name.compare(name.size() - 4, 4, ".hst") == 0) {
        traces.push_back(dir + "/" + name);
      }
    }
    closedir(d);
  }
  return traces;
}

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
  std::istringstream in(run.out);
  in >> c.expected >> c.counted >> c.from_heapsight;
  // The program must print its three numbers and have made calls of its
  // own: a silent run (-1 == -1) or an empty one (0 == 0) proves nothing.
  EXPECT_FALSE(in.fail()) << "unparsable output \"" << run.out << "\"; stderr: " << run.err;
  EXPECT_GT(c.expected, 0) << run.out;
  // heapsight must really have recorded the calls it forwarded (a preload
  // that failed to load, or disabled itself, would forward them once too).
  std::vector<std::string> traces = TracesIn(dir);
  EXPECT_EQ(traces.size(), 1u) << run.err;
  if (traces.size() == 1) {
    TraceContents t = ReadTrace(traces[0]);
    EXPECT_EQ(t.error, "");
    EXPECT_TRUE(t.complete);
    TraceCounts counts = CountTrace(t);
    // Of the counted calls, at least half are allocations (41,000 of 80,000).
    EXPECT_GE(counts.alloc_records + counts.realloc_records, static_cast<uint64_t>(c.expected / 2));
  }
  return c;
}

// The per-event hook path, with chunks written inline (the writer task is
// counted apart, below).
TEST(ReentryScenario, HookPathNeverCallsMalloc) {
  for (const char* unwind : {"libunwind", "fp"}) {
    Counts c = RunCounter({}, {{"HEAPSIGHT_UNWIND", unwind}, {"_HEAPSIGHT_TEST_WRITER", "off"}});
    EXPECT_GT(c.expected, 0) << unwind;
    EXPECT_EQ(c.counted, c.expected) << unwind;
    EXPECT_EQ(c.from_heapsight, c.expected) << unwind;
  }
}

TEST(ReentryScenario, HookPathNeverCallsMallocWithRssSampling) {
  Counts c = RunCounter({}, {{"HEAPSIGHT_RSS_INTERVAL_MS", "1"}, {"HEAPSIGHT_ZSTD_LEVEL", "3"},
                             {"_HEAPSIGHT_TEST_WRITER", "off"}});
  EXPECT_EQ(c.counted, c.expected);
  EXPECT_EQ(c.from_heapsight, c.expected);
}

// Issue 15 target 3 and issue 19: the writer, started at the first full
// chunk, is heapsight's raw service task (preload/service_task.h), not a
// glibc thread: no pthread_create, so no DTV calloc inside libc, and the
// writer's work (compression, writes, spool) never allocates. The
// program's allocator sees exactly the program's calls, nothing more.
TEST(ReentryScenario, WriterTaskCostsNoAllocation) {
  for (const char* unwind : {"libunwind", "fp"}) {
    Counts c = RunCounter({}, {{"HEAPSIGHT_UNWIND", unwind}});
    EXPECT_GT(c.expected, 0) << unwind;
    EXPECT_EQ(c.counted, c.expected) << unwind;
    EXPECT_EQ(c.from_heapsight, c.expected) << unwind;
  }
  // With the freshness pass (HEAPSIGHT_FLUSH_MS, as `record --serve` sets
  // it) the task starts with the trace and flushes other threads' chunks.
  Counts c = RunCounter({}, {{"HEAPSIGHT_FLUSH_MS", "5"}});
  EXPECT_EQ(c.counted, c.expected);
  EXPECT_EQ(c.from_heapsight, c.expected);
}

TEST(ReentryScenario, NegativeControlDetectsOneExtraAllocation) {
  Counts c = RunCounter({"extra"}, {{"_HEAPSIGHT_TEST_WRITER", "off"}});
  EXPECT_EQ(c.counted, c.expected + 1);
}

}  // namespace
}  // namespace heapsight::testing
