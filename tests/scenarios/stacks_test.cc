// tests/scenarios/stacks_test.cc: recorded stacks contain the right
// functions. IPs are resolved against the program's ELF symbol table
// (ProgramSymbols, scenario_util.h).
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

// The stack's ips, innermost first (the root node last).
std::vector<uint64_t> StackIps(const TraceContents& t, uint64_t leaf) {
  std::vector<uint64_t> ips;
  for (uint64_t node = leaf; node != 0; node = t.stack_nodes.at(node).first) {
    ips.push_back(t.stack_nodes.at(node).second);
  }
  return ips;
}

void CheckStacks(const std::map<std::string, std::string>& env) {
  std::string exe = ScenarioProgram("stacks_program");
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({exe}, dir, env);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  ProgramSymbols symbols(exe, t);
  ASSERT_EQ(symbols.Error(), "");
  ASSERT_TRUE(symbols.Has("AllocateHere")) << "nm did not list AllocateHere";
  ASSERT_TRUE(symbols.Has("CallerOfAllocateHere"));
  ASSERT_TRUE(symbols.Has("main"));

  int checked = 0;
  for (const auto& r : t.records) {
    if (r.tag != format::RecordTag::kAlloc || r.size != 10001) continue;
    std::vector<std::string> frames = symbols.Frames(t, r.stack);
    ASSERT_GE(frames.size(), 3u);
    // Innermost recorded frame is the program's function: heapsight's own
    // frames were dropped.
    EXPECT_EQ(frames[0], "AllocateHere");
    EXPECT_EQ(frames[1], "CallerOfAllocateHere");
    EXPECT_EQ(frames[2], "main");
    ++checked;
  }
  EXPECT_EQ(checked, 3);
  // The three allocations share one stack: each unique stack is written once.
  std::set<uint64_t> stacks;
  for (const auto& r : t.records) {
    if (r.tag == format::RecordTag::kAlloc && r.size == 10001) stacks.insert(r.stack);
  }
  EXPECT_EQ(stacks.size(), 1u);
}

TEST(StacksScenario, LibunwindNamesTheAllocatingFunction) { CheckStacks({}); }

TEST(StacksScenario, FramePointerUnwinderNamesTheAllocatingFunction) {
  CheckStacks({{"HEAPSIGHT_UNWIND", "fp"}});
}

TEST(StacksScenario, MaxDepthCapsStacksAndMarksThemCut) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("stacks_program")}, dir, {{"HEAPSIGHT_MAX_DEPTH", "2"}});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  ProgramSymbols symbols(ScenarioProgram("stacks_program"), t);
  ASSERT_EQ(symbols.Error(), "");
  int capped = 0;
  for (const auto& r : t.records) {
    if (r.tag != format::RecordTag::kAlloc) continue;
    int depth = 0;
    for (uint64_t node = r.stack; node != 0; node = t.stack_nodes.at(node).first) ++depth;
    EXPECT_LE(depth, 3);  // two frames and, if cut, the marker
    if (r.size != 10001) continue;
    // main -> CallerOfAllocateHere -> AllocateHere: the two innermost
    // frames, then the root node saying the stack was cut.
    ++capped;
    std::vector<uint64_t> ips = StackIps(t, r.stack);
    ASSERT_EQ(ips.size(), 3u);
    EXPECT_EQ(symbols.NameOf(ips[0]), "AllocateHere");
    EXPECT_EQ(symbols.NameOf(ips[1]), "CallerOfAllocateHere");
    EXPECT_TRUE(format::IsStackCutMarker(ips[2])) << std::hex << ips[2];
  }
  EXPECT_EQ(capped, 3);
}

// The leak at the bottom of deep_stack_program's 200-deep recursion.
struct DeepLeak {
  std::vector<std::string> names;  // innermost first, the marker as "<cut>"
  int found = 0;
};

DeepLeak RunDeepStack(const std::map<std::string, std::string>& env) {
  DeepLeak out;
  std::string exe = ScenarioProgram("deep_stack_program");
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({exe}, dir, env);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  if (run.traces.size() != 1) {
    ADD_FAILURE() << run.traces.size() << " traces";
    return out;
  }
  TraceContents t = ReadTrace(run.traces[0]);
  EXPECT_EQ(t.error, "");
  ProgramSymbols symbols(exe, t);
  EXPECT_EQ(symbols.Error(), "");
  for (const auto& r : t.records) {
    if (r.tag != format::RecordTag::kAlloc || r.size != 4242) continue;
    ++out.found;
    for (uint64_t ip : StackIps(t, r.stack)) {
      out.names.push_back(format::IsStackCutMarker(ip) ? "<cut>" : symbols.NameOf(ip));
    }
  }
  return out;
}

TEST(StacksScenario, DefaultDepthRecordsA200DeepRecursionUpToMain) {
  for (const char* unwind : {"libunwind", "fp"}) {
    SCOPED_TRACE(unwind);
    DeepLeak leak = RunDeepStack({{"HEAPSIGHT_UNWIND", unwind}});
    ASSERT_EQ(leak.found, 1);
    // LeakAtTheBottom, 200 x Recurse, main; not cut.
    ASSERT_EQ(leak.names.size(), 202u);
    EXPECT_EQ(leak.names.front(), "LeakAtTheBottom");
    EXPECT_EQ(std::count(leak.names.begin(), leak.names.end(), "Recurse"), 200);
    EXPECT_EQ(leak.names.back(), "main");
  }
}

TEST(StacksScenario, ShallowMaxDepthCutsTheDeepStackAndSaysSo) {
  for (const char* unwind : {"libunwind", "fp"}) {
    SCOPED_TRACE(unwind);
    DeepLeak leak = RunDeepStack({{"HEAPSIGHT_MAX_DEPTH", "16"}, {"HEAPSIGHT_UNWIND", unwind}});
    ASSERT_EQ(leak.found, 1);
    // LeakAtTheBottom, 15 x Recurse, the marker.
    ASSERT_EQ(leak.names.size(), 17u);
    EXPECT_EQ(leak.names.front(), "LeakAtTheBottom");
    EXPECT_EQ(std::count(leak.names.begin(), leak.names.end(), "Recurse"), 15);
    EXPECT_EQ(leak.names.back(), "<cut>");
  }
}

}  // namespace
}  // namespace heapsight::testing
