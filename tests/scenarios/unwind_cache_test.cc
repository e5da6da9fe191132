// tests/scenarios/unwind_cache_test.cc: the unwind cache never hands out a
// wrong stack. unwind_cache_program enters malloc from one point (same
// return address, same stack pointer) with a dozen different stacks above
// it, in pseudo-random order, plus recursion, a variable-sized frame, a
// realigned frame and a second thread; each allocation's size names the
// stack it came from. Every record's frames are checked by name, with the
// cache on (the default) and off, for code with and without frame pointers.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

// The frames under the outermost one (main or Worker) for each size the
// program allocates.
std::map<uint64_t, std::vector<std::string>> ExpectedFrames() {
  std::map<uint64_t, std::vector<std::string>> e;
  const char* callers[] = {"CallerA", "CallerB", "CallerC", "CallerD", "CallerE"};
  for (int i = 0; i < 5; ++i) e[1001 + static_cast<uint64_t>(i)] = {"Leaf", callers[i]};
  e[2001] = {"Leaf", "Mid", "OuterA"};
  e[2002] = {"Leaf", "Mid", "OuterB"};
  for (int d = 0; d < 4; ++d) {
    std::vector<std::string> f = {"Leaf"};
    for (int k = 0; k <= d; ++k) f.push_back("Recurse");
    e[3000 + static_cast<uint64_t>(d)] = f;
  }
  for (int n = 0; n < 3; ++n) e[4000 + static_cast<uint64_t>(n)] = {"Leaf", "Dynamic"};
  e[5000] = {"Leaf", "Realigned", "RealignedCallerA"};
  e[5001] = {"Leaf", "Realigned", "RealignedCallerB"};
  return e;
}

// How many allocations of each size, and from which outermost function,
// the program makes: its main loop replayed.
std::map<std::pair<uint64_t, std::string>, int> ExpectedCounts() {
  std::map<std::pair<uint64_t, std::string>, int> c;
  unsigned x = 12345;
  for (int i = 0; i < 6000; ++i) {
    x = x * 1103515245u + 12345u;
    ++c[{1001 + (x >> 16) % 3, "main"}];
  }
  for (int i = 0; i < 30000; ++i) {
    x = x * 1103515245u + 12345u;
    unsigned pick = (x >> 16) % 12;
    unsigned small = (x >> 8) % 4;
    if (pick <= 4) {
      ++c[{1001 + pick, "main"}];
    } else if (pick == 5 || pick == 6) {
      ++c[{2001 + (pick - 5), "main"}];
    } else if (pick == 7) {
      ++c[{3000 + small, "main"}];
    } else if (pick == 8) {
      ++c[{4000 + (x >> 8) % 3, "main"}];
    } else if (pick == 9 || pick == 10) {
      ++c[{5000 + (pick - 9), "main"}];
    } else if (i % 1000 == 11) {
      for (int w = 0; w < 2000; ++w) ++c[{w % 3 == 0 ? 1001u : w % 3 == 1 ? 2002u : 3002u, "Worker"}];
    }
  }
  return c;
}

// The unwind cache's hits, from the HEAPSIGHT_STATS line; -1 if absent.
int64_t CacheHits(const std::string& err) {
  size_t at = err.find(" lookups, ");
  if (at == std::string::npos) return -1;
  return std::stoll(err.substr(at + 10));
}

// Runs `program` and checks every stack; returns the cache's hits.
int64_t CheckEveryStack(const std::string& program, std::map<std::string, std::string> env) {
  std::string exe = ScenarioProgram(program);
  env["HEAPSIGHT_STATS"] = "1";
  RunResult run = RunTraced({exe}, MakeTempDir(), env);
  int64_t hits = CacheHits(run.err);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.traces.size(), 1u);
  if (run.traces.size() != 1) return hits;
  TraceContents t = ReadTrace(run.traces[0]);
  EXPECT_EQ(t.error, "");
  ProgramSymbols symbols(exe, t);
  EXPECT_EQ(symbols.Error(), "");

  std::map<uint64_t, std::vector<std::string>> expected = ExpectedFrames();
  std::map<std::pair<uint64_t, std::string>, int> counts;
  int wrong = 0;
  for (const auto& r : t.records) {
    if (r.tag != format::RecordTag::kAlloc) continue;
    auto it = expected.find(r.size);
    if (it == expected.end()) continue;
    std::vector<std::string> frames = symbols.Frames(t, r.stack);
    std::vector<std::string> want = it->second;
    bool ok = frames.size() > want.size() &&
              std::equal(want.begin(), want.end(), frames.begin()) &&
              (frames[want.size()] == "main" || frames[want.size()] == "Worker");
    if (!ok) {
      if (++wrong <= 5) {
        std::string got;
        for (const auto& f : frames) got += f + " ";
        ADD_FAILURE() << "size " << r.size << ": wrong stack: " << got;
      }
      continue;
    }
    ++counts[{r.size, frames[want.size()]}];
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(counts, ExpectedCounts());
  return hits;
}

// Phase 1 alone makes 6,000 allocations from three stacks that fit the
// cache: all but the first few of each are hits.
constexpr int64_t kMinHits = 5000;

TEST(UnwindCacheScenario, OptimizedCodeCacheOn) {
  EXPECT_GE(CheckEveryStack("unwind_cache_program", {}), kMinHits);
}

TEST(UnwindCacheScenario, OptimizedCodeCacheOff) {
  EXPECT_EQ(CheckEveryStack("unwind_cache_program", {{"HEAPSIGHT_UNWIND_CACHE", "0"}}), 0);
}

TEST(UnwindCacheScenario, FramePointerCodeCacheOn) {
  EXPECT_GE(CheckEveryStack("unwind_cache_program_fp", {}), kMinHits);
}

TEST(UnwindCacheScenario, FramePointerCodeFramePointerUnwinder) {
  EXPECT_EQ(CheckEveryStack("unwind_cache_program_fp", {{"HEAPSIGHT_UNWIND", "fp"}}), 0);
}

}  // namespace
}  // namespace heapsight::testing
