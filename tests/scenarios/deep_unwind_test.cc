// tests/scenarios/deep_unwind_test.cc: the unwind cache's spliced stacks are
// exact. deep_unwind_program makes its allocations from stacks built to fool
// an unwinder that reuses the outer frames of earlier stacks (recursion of
// varying depth, callers with identical frames, longjmp, exceptions, signal
// handlers, a swapcontext coroutine, reused thread stacks); each size names
// its stack. Every record's frames are checked by name, with the cache on
// (what it gives is what is recorded) and with HEAPSIGHT_VERIFY_UNWIND
// (libunwind's full unwind compared on every event: zero mismatches), for
// code with and without frame pointers.
#include <gtest/gtest.h>

#include <regex>
#include <string>
#include <vector>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

std::vector<std::string> Repeat(const std::string& name, uint64_t n) {
  return std::vector<std::string>(n, name);
}

std::vector<std::string> Join(std::initializer_list<std::vector<std::string>> parts) {
  std::vector<std::string> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

// The frames a record of `size` may have (its frames outside the program,
// "?", left out); empty if the size is not one of the program's.
std::vector<std::vector<std::string>> Expected(uint64_t size) {
  if (size >= 10000 && size <= 10150) {
    std::vector<std::string> f = Join({{"Leaf"}, Repeat("Recurse", size - 10000 + 1)});
    return {Join({f, {"main"}}), Join({f, {"SigTop", "main"}}), Join({f, {"CoTop", "main"}})};
  }
  if (size == 2001 || size == 2002) {
    return {Join({{"Leaf", "Q", size == 2001 ? "SameP" : "SameR", "TrapLoop"}, Repeat("Base", 41),
                  {"main"}})};
  }
  if (size >= 3000 && size < 3040) {
    return {Join({{"Leaf"}, Repeat("JmpDown", size - 3000 + 1), {"JmpTop", "main"}})};
  }
  if (size >= 4000 && size < 4040) {
    return {Join({{"Leaf"}, Repeat("ThrowDown", size - 4000 + 1), {"ThrowTop", "main"}})};
  }
  if (size == 4500) return {{"Leaf", "ThrowTop", "main"}};
  if ((size >= 5000 && size < 5030) || (size >= 5500 && size < 5530)) {
    uint64_t depth = size % 500;
    return {Join({{"Leaf", "OnSignal"}, Repeat("SigDown", depth + 1), {"SigTop", "main"}})};
  }
  if (size >= 6000 && size < 6030) {
    return {Join({{"Leaf"}, Repeat("CoDown", size - 6000 + 1), {"CoEntry"}})};
  }
  if (size >= 8100 && size < 8200) {
    return {Join({{"Leaf"}, Repeat("BigRecurse", size - 8000 + 1), {"main"}})};
  }
  if (size >= 7000 && size < 7031) {
    return {Join({{"Leaf"}, Repeat("TRecurse", size - 7000 + 1), {"ThreadMain"}})};
  }
  return {};
}

struct Stats {
  int64_t refused = -1;
  int64_t hits = -1;
  int64_t verified = -1;
  int64_t mismatches = -1;
};

// The HEAPSIGHT_STATS line's numbers.
Stats ParseStats(const std::string& err) {
  Stats s;
  std::smatch m;
  if (std::regex_search(err, m, std::regex(R"((\d+) lookups, (\d+) hits)"))) {
    s.hits = std::stoll(m[2]);
  }
  if (std::regex_search(err, m, std::regex(R"((\d+) left to libunwind)"))) {
    s.refused = std::stoll(m[1]);
  }
  if (std::regex_search(err, m, std::regex(R"(verify: (\d+) stacks checked, (\d+) mismatches)"))) {
    s.verified = std::stoll(m[1]);
    s.mismatches = std::stoll(m[2]);
  }
  return s;
}

// Runs the program, checks every record of a known size; returns the stats.
Stats CheckEveryStack(const std::string& program, std::map<std::string, std::string> env) {
  std::string exe = ScenarioProgram(program);
  env["HEAPSIGHT_STATS"] = "1";
  RunResult run = RunTraced({exe}, MakeTempDir(), env);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  std::smatch m;
  EXPECT_TRUE(std::regex_search(run.out, m, std::regex(R"(allocs (\d+))"))) << run.out;
  const int64_t made = m.empty() ? -1 : std::stoll(m[1]);
  EXPECT_EQ(run.traces.size(), 1u);
  if (run.traces.size() != 1) return {};
  TraceContents t = ReadTrace(run.traces[0]);
  EXPECT_EQ(t.error, "");
  ProgramSymbols symbols(exe, t);
  EXPECT_EQ(symbols.Error(), "");
  int64_t checked = 0;
  int wrong = 0;
  for (const auto& r : t.records) {
    if (r.tag != format::RecordTag::kAlloc) continue;
    std::vector<std::vector<std::string>> want = Expected(r.size);
    if (want.empty()) continue;
    std::vector<std::string> frames;
    for (std::string f : symbols.Frames(t, r.stack)) {
      // GCC moves a catch block into "<function>.cold".
      if (f.size() > 5 && f.compare(f.size() - 5, 5, ".cold") == 0) f.resize(f.size() - 5);
      if (f != "?") frames.push_back(f);
    }
    ++checked;
    if (std::find(want.begin(), want.end(), frames) == want.end() && ++wrong <= 5) {
      std::string got;
      for (const auto& f : frames) got += f + " ";
      ADD_FAILURE() << program << ": size " << r.size << ": wrong stack: " << got;
    }
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_EQ(checked, made);
  return ParseStats(run.err);
}

// Most of the program's ~25,000 allocations come from stacks the cache
// splices (all but the coroutine's and the alternate signal stack's, which
// it leaves to libunwind, and the first of each thread's).
constexpr int64_t kMinHits = 15000;

// What the cache must leave to libunwind: the coroutine's 800 events (its
// stack is not the thread's), the 600 in signal handlers (a signal frame's
// rule is refused; 200 of them on the alternate stack), and each thread's
// first 8 (25 threads). The 2,000 events on the grown main stack are not
// among them.
constexpr int64_t kRefused = 800 + 600 + 25 * 8;

void CheckProgram(const std::string& program) {
  Stats cached = CheckEveryStack(program, {});
  EXPECT_GE(cached.hits, kMinHits);
  EXPECT_EQ(cached.refused, kRefused);
  EXPECT_EQ(cached.verified, -1);  // no verify line without the option
  Stats verified = CheckEveryStack(program, {{"HEAPSIGHT_VERIFY_UNWIND", "1"}});
  EXPECT_GE(verified.hits, kMinHits);
  EXPECT_GE(verified.verified, verified.hits);
  EXPECT_EQ(verified.mismatches, 0);
}

TEST(DeepUnwindScenario, OptimizedCode) { CheckProgram("deep_unwind_program"); }

TEST(DeepUnwindScenario, FramePointerCode) { CheckProgram("deep_unwind_program_fp"); }

// Without the cache, the same stacks (the expectations hold for libunwind).
TEST(DeepUnwindScenario, CacheOff) {
  Stats off = CheckEveryStack("deep_unwind_program", {{"HEAPSIGHT_UNWIND_CACHE", "0"}});
  EXPECT_EQ(off.hits, 0);  // no cache: no hits
}

// The HEAPSIGHT_STATS line's unwind-cache counters of one run of
// rotating_sites_program (R rounds over 8 allocating functions called from
// one loop), with libunwind's full unwind compared on every event.
struct RotatingRun {
  int64_t lookups = -1, hits = -1, stepped = -1, rules = -1, mismatches = -1;
};
RotatingRun RunRotatingSites(int rounds) {
  RunResult run = RunTraced({ScenarioProgram("rotating_sites_program"), std::to_string(rounds), "8"},
                            MakeTempDir(), {{"HEAPSIGHT_STATS", "1"}, {"HEAPSIGHT_VERIFY_UNWIND", "1"}});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_NE(run.out.find("allocs " + std::to_string(rounds * 8)), std::string::npos) << run.out;
  RotatingRun r;
  std::smatch m;
  if (std::regex_search(run.err, m,
                        std::regex(R"((\d+) lookups, (\d+) hits, .* (\d+) frames stepped, (\d+) )"
                                   R"(frames spliced, (\d+) frame rules looked up)"))) {
    r.lookups = std::stoll(m[1]);
    r.hits = std::stoll(m[2]);
    r.stepped = std::stoll(m[3]);
    r.rules = std::stoll(m[5]);
  }
  if (std::regex_search(run.err, m, std::regex(R"(verify: \d+ stacks checked, (\d+) mismatches)"))) {
    r.mismatches = std::stoll(m[1]);
  }
  EXPECT_NE(r.lookups, -1) << run.err;
  return r;
}

// 8 call sites at one depth, in turn: each keeps a memo of its own (the
// cache holds 8), so every one of the 8,000 extra allocations of the longer
// run is a memo's stack whole, found at the entry: no frame stepped, no rule
// looked up (with 4 memos, as before, each of them stepped a frame).
TEST(DeepUnwindScenario, RotatingSitesStepNoFrame) {
  RotatingRun a = RunRotatingSites(100);
  RotatingRun b = RunRotatingSites(1100);
  EXPECT_EQ(b.lookups - a.lookups, 8000);
  EXPECT_EQ(b.hits - a.hits, 8000);
  EXPECT_EQ(b.stepped - a.stepped, 0);
  EXPECT_EQ(b.rules - a.rules, 0);
  EXPECT_EQ(a.mismatches, 0);
  EXPECT_EQ(b.mismatches, 0);
}

}  // namespace
}  // namespace heapsight::testing
