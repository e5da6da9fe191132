// tests/scenarios/stacks_test.cc: recorded stacks contain the right
// functions. IPs are resolved against the program's ELF symbol table (read
// with nm) through the module record of the executable (load address).
#include <gtest/gtest.h>
#include <stdio.h>
#include <stdlib.h>

#include <set>
#include <sstream>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

struct Symbol {
  uint64_t value = 0, size = 0;
};

std::map<std::string, Symbol> ReadSymbols(const std::string& exe) {
  std::map<std::string, Symbol> out;
  std::string cmd = "nm -S --defined-only '" + exe + "'";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  char line[1024];
  while (fgets(line, sizeof line, p) != nullptr) {
    std::istringstream in(line);
    std::string value, size, type, name;
    if (in >> value >> size >> type >> name) {
      out[name] = Symbol{std::stoull(value, nullptr, 16), std::stoull(size, nullptr, 16)};
    }
  }
  pclose(p);
  return out;
}

void CheckStacks(const std::map<std::string, std::string>& env) {
  std::string exe = ScenarioProgram("stacks_program");
  char* real = realpath(exe.c_str(), nullptr);
  ASSERT_NE(real, nullptr);
  std::string real_exe = real;
  free(real);
  std::map<std::string, Symbol> symbols = ReadSymbols(exe);
  ASSERT_TRUE(symbols.count("AllocateHere")) << "nm did not list AllocateHere";
  ASSERT_TRUE(symbols.count("CallerOfAllocateHere"));
  ASSERT_TRUE(symbols.count("main"));

  std::string dir = MakeTempDir();
  RunResult run = RunTraced({exe}, dir, env);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");

  uint64_t load = 0;
  bool found_module = false;
  for (size_t i = 0; i < t.records.size(); ++i) {
    if (t.records[i].tag == format::RecordTag::kModule && t.strings[2 * i] == real_exe) {
      load = t.records[i].value2;
      found_module = true;
    }
  }
  ASSERT_TRUE(found_module) << "no module record for " << real_exe;

  auto name_of = [&](uint64_t ip) -> std::string {
    uint64_t addr = ip - 1 - load;  // return address -> inside the call
    for (const auto& [name, sym] : symbols) {
      if (addr >= sym.value && addr < sym.value + sym.size) return name;
    }
    return "?";
  };

  int checked = 0;
  for (const auto& r : t.records) {
    if (r.tag != format::RecordTag::kAlloc || r.size != 10001) continue;
    std::vector<std::string> frames;
    for (uint64_t node = r.stack; node != 0;) {
      auto it = t.stack_nodes.find(node);
      ASSERT_NE(it, t.stack_nodes.end());
      frames.push_back(name_of(it->second.second));
      node = it->second.first;
    }
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
  ASSERT_EQ(run.exit_code, 0);
  TraceContents t = ReadTrace(run.traces.at(0));
  for (const auto& r : t.records) {
    if (r.tag != format::RecordTag::kAlloc) continue;
    int depth = 0;
    for (uint64_t node = r.stack; node != 0; node = t.stack_nodes.at(node).first) ++depth;
    EXPECT_LE(depth, 2);
  }
}

}  // namespace
}  // namespace heapsight::testing
