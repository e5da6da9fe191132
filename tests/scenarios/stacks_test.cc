// tests/scenarios/stacks_test.cc: recorded stacks contain the right
// functions. IPs are resolved against the program's ELF symbol table
// (ProgramSymbols, scenario_util.h).
#include <gtest/gtest.h>

#include <set>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

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

TEST(StacksScenario, MaxDepthCapsStacks) {
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
    EXPECT_LE(depth, 2);
    if (r.size != 10001) continue;
    // main -> CallerOfAllocateHere -> AllocateHere: the two innermost frames.
    ++capped;
    EXPECT_EQ(symbols.Frames(t, r.stack),
              (std::vector<std::string>{"AllocateHere", "CallerOfAllocateHere"}));
  }
  EXPECT_EQ(capped, 3);
}

}  // namespace
}  // namespace heapsight::testing
