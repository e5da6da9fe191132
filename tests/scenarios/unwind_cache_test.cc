// tests/scenarios/unwind_cache_test.cc: the unwind cache never hands out a
// wrong stack. unwind_cache_program enters malloc from one point (same
// return address, same stack pointer) with a dozen different stacks above
// it, in pseudo-random order, plus recursion, a variable-sized frame, a
// realigned frame and a second thread; each allocation's size names the
// stack it came from. Every record's frames are checked by name, with the
// cache on (the default) and off, for code with and without frame pointers.
#include <gtest/gtest.h>

#include <set>
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

using Counts = std::map<std::pair<uint64_t, std::string>, int>;

// How many allocations of each size, and from which outermost function,
// the program makes: its loops replayed. *child receives the fork child's.
Counts ExpectedCounts(Counts* child) {
  Counts c;
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
  const uint64_t kChildSizes[] = {1001, 1002, 2001, 2002};
  for (int i = 0; i < 3000; ++i) {
    x = x * 1103515245u + 12345u;
    ++(*child)[{kChildSizes[(x >> 16) % 4], "main"}];
  }
  return c;
}

// Checks every stack of one trace against ExpectedFrames; returns the
// counts by (size, outermost function).
Counts CountCheckedStacks(const std::string& exe, const std::string& trace) {
  TraceContents t = ReadTrace(trace);
  EXPECT_EQ(t.error, "") << trace;
  ProgramSymbols symbols(exe, t);
  EXPECT_EQ(symbols.Error(), "") << trace;
  std::map<uint64_t, std::vector<std::string>> expected = ExpectedFrames();
  Counts counts;
  int wrong = 0;
  for (const auto& r : t.records) {
    if (r.tag != format::RecordTag::kAlloc) continue;
    auto it = expected.find(r.size);
    if (it == expected.end()) continue;
    std::vector<std::string> frames = symbols.Frames(t, r.stack);
    const std::vector<std::string>& want = it->second;
    bool ok = frames.size() > want.size() &&
              std::equal(want.begin(), want.end(), frames.begin()) &&
              (frames[want.size()] == "main" || frames[want.size()] == "Worker");
    if (!ok) {
      if (++wrong <= 5) {
        std::string got;
        for (const auto& f : frames) got += f + " ";
        ADD_FAILURE() << trace << ": size " << r.size << ": wrong stack: " << got;
      }
      continue;
    }
    ++counts[{r.size, frames[want.size()]}];
  }
  EXPECT_EQ(wrong, 0) << trace;
  return counts;
}

// The unwind cache's hits per process, from the HEAPSIGHT_STATS lines
// (one per process, in the order they ended).
std::vector<int64_t> CacheHits(const std::string& err) {
  std::vector<int64_t> hits;
  for (size_t at = err.find(" lookups, "); at != std::string::npos;
       at = err.find(" lookups, ", at + 1)) {
    hits.push_back(std::stoll(err.substr(at + 10)));
  }
  return hits;
}

// Runs `program` and checks every stack of it and its fork child; returns
// the cache's hits per process (the child's first: it ends first).
std::vector<int64_t> CheckEveryStack(const std::string& program, std::map<std::string, std::string> env) {
  std::string exe = ScenarioProgram(program);
  env["HEAPSIGHT_STATS"] = "1";
  RunResult run = RunTraced({exe}, MakeTempDir(), env);
  std::vector<int64_t> hits = CacheHits(run.err);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  // The parent's trace and its fork child's (named by pid: the parent's
  // pid is smaller, but tell them apart by their header instead).
  EXPECT_EQ(run.traces.size(), 2u);
  if (run.traces.size() != 2) return hits;
  std::string parent = run.traces[0], child = run.traces[1];
  if ((ReadTrace(parent).header.flags & format::kFileFlagForkChild) != 0) std::swap(parent, child);
  Counts want_child;
  Counts want_parent = ExpectedCounts(&want_child);
  EXPECT_EQ(CountCheckedStacks(exe, parent), want_parent);
  EXPECT_EQ(CountCheckedStacks(exe, child), want_child);
  return hits;
}

// Phase 1 alone makes 6,000 allocations from three stacks that fit the
// cache: all but the first few of each are hits. The fork child inherits
// the learnt stacks: most of its 3,000 allocations hit too.
constexpr int64_t kMinParentHits = 5000;
constexpr int64_t kMinChildHits = 2000;

// Checks every stack with the cache on, and that both processes hit it.
void CheckEveryStackWithCacheHits(const std::string& program) {
  std::vector<int64_t> hits = CheckEveryStack(program, {});
  ASSERT_EQ(hits.size(), 2u);
  EXPECT_GE(hits[0], kMinChildHits);
  EXPECT_GE(hits[1], kMinParentHits);
}

TEST(UnwindCacheScenario, OptimizedCodeCacheOn) {
  CheckEveryStackWithCacheHits("unwind_cache_program");
}

TEST(UnwindCacheScenario, OptimizedCodeCacheOff) {
  EXPECT_EQ(CheckEveryStack("unwind_cache_program", {{"HEAPSIGHT_UNWIND_CACHE", "0"}}),
            (std::vector<int64_t>{0, 0}));
}

TEST(UnwindCacheScenario, FramePointerCodeCacheOn) {
  CheckEveryStackWithCacheHits("unwind_cache_program_fp");
}

TEST(UnwindCacheScenario, FramePointerCodeFramePointerUnwinder) {
  EXPECT_EQ(CheckEveryStack("unwind_cache_program_fp", {{"HEAPSIGHT_UNWIND", "fp"}}),
            (std::vector<int64_t>{0, 0}));
}

// thread_unwind_program: `threads` threads of `per_thread` allocations each,
// alive at once. Checks every allocation of size 7000/7001 is
// Allocate <- Worker and that all of them share one stack node (the
// unwinds by unw_step and by unw_backtrace gave the same return
// addresses); returns the most memory libunwind held at once
// (HEAPSIGHT_STATS), -1 if the line is missing.
int64_t CheckThreadStacks(int threads, int per_thread, std::map<std::string, std::string> env) {
  std::string exe = ScenarioProgram("thread_unwind_program");
  env["HEAPSIGHT_STATS"] = "1";
  RunResult run =
      RunTraced({exe, std::to_string(threads), std::to_string(per_thread)}, MakeTempDir(), env);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.traces.size(), 1u);
  if (run.traces.size() != 1) return -1;
  TraceContents t = ReadTrace(run.traces[0]);
  EXPECT_EQ(t.error, "");
  ProgramSymbols symbols(exe, t);
  EXPECT_EQ(symbols.Error(), "");
  std::set<uint64_t> stacks;
  int allocations = 0;
  for (const auto& r : t.records) {
    if (r.tag != format::RecordTag::kAlloc || (r.size != 7000 && r.size != 7001)) continue;
    ++allocations;
    stacks.insert(r.stack);
    std::vector<std::string> frames = symbols.Frames(t, r.stack);
    EXPECT_TRUE(frames.size() >= 2 && frames[0] == "Allocate" && frames[1] == "Worker")
        << "stack " << r.stack << ": " << (frames.empty() ? "(none)" : frames[0]);
  }
  EXPECT_EQ(allocations, threads * per_thread);
  EXPECT_EQ(stacks.size(), 1u);
  size_t at = run.err.find(", libunwind ");
  if (at == std::string::npos) return -1;
  at = run.err.find(" (at most ", at);
  if (at == std::string::npos) return -1;
  return std::stoll(run.err.substr(at + 10));
}

constexpr int64_t kTraceCacheBytes = 256 * 1024;  // unw_backtrace's, per thread

// A pool of threads that allocate a little: the unwind cache takes each
// thread's stacks after its first few, which libunwind steps with a
// cursor, so no thread maps unw_backtrace's 256 KiB trace cache (before:
// 32 x 256 KiB resident, and 64 page faults per thread).
TEST(UnwindCacheScenario, ShortThreadsMapNoTraceCache) {
  int64_t bytes = CheckThreadStacks(32, 40, {});
  EXPECT_GE(bytes, 0);
  EXPECT_LT(bytes, kTraceCacheBytes);
}

// Every stack left to libunwind (cache off): each thread's first 64 are
// stepped, the rest unw_backtrace's (so both threads map its trace cache),
// and every stack is the same node either way.
TEST(UnwindCacheScenario, ThreadsSwitchToBacktraceAfterSteppedUnwinds) {
  int64_t bytes = CheckThreadStacks(2, 300, {{"HEAPSIGHT_UNWIND_CACHE", "0"}});
  EXPECT_GE(bytes, 2 * kTraceCacheBytes);
}

}  // namespace
}  // namespace heapsight::testing
