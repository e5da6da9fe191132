// tests/scenarios/lifecycle_test.cc: fork, exec, dlopen/dlclose, _exit,
// SIGKILL and late static destructors.
#include <gtest/gtest.h>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

using format::RecordTag;

const format::Record* FindTag(const TraceContents& t, RecordTag tag) {
  for (const auto& r : t.records) {
    if (r.tag == tag) return &r;
  }
  return nullptr;
}

// The string fields of record i are strings[2i] and strings[2i+1].
std::string Text(const TraceContents& t, const format::Record* r) {
  size_t i = static_cast<size_t>(r - t.records.data());
  return t.strings[2 * i];
}
std::string Text2(const TraceContents& t, const format::Record* r) {
  size_t i = static_cast<size_t>(r - t.records.data());
  return t.strings[2 * i + 1];
}

TEST(ForkScenario, ChildHasItsOwnTraceWithInheritedBlocks) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("fork_program")}, dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ForkTraces traces = ReadForkTraces(run.traces);
  ASSERT_EQ(traces.error, "");
  const TraceContents& parent = traces.parent;
  const TraceContents& child = traces.child;
  EXPECT_TRUE(child.header.flags & format::kFileFlagForkChild);
  EXPECT_FALSE(parent.header.flags & format::kFileFlagForkChild);
  EXPECT_EQ(child.header.ppid, parent.header.pid);
  EXPECT_TRUE(parent.complete);
  EXPECT_TRUE(child.complete);

  const format::Record* fork = FindTag(parent, RecordTag::kFork);
  ASSERT_NE(fork, nullptr);
  EXPECT_EQ(fork->child_pid, child.header.pid);

  // Child: kProcess names the parent and its trace.
  const format::Record* process = FindTag(child, RecordTag::kProcess);
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(process->process.parent_pid, parent.header.pid);
  EXPECT_EQ(Text2(child, process), traces.parent_path);

  MagicCounts pc = CountMagic(parent, 4000, 4010);
  MagicCounts cc = CountMagic(child, 4000, 4010);
  EXPECT_EQ(pc.by_size, (std::map<uint64_t, int>{{4001, 1}, {4002, 1}, {4004, 1}, {4005, 1}}));
  // No parent event is duplicated in the child: it allocated only 4003.
  EXPECT_EQ(cc.by_size, (std::map<uint64_t, int>{{4003, 1}}));
  // Inherited: 4001 and 4005 (4002 was freed before fork).
  EXPECT_EQ(cc.inherited, 2);
  // The child's free of 4001 pairs with its inherited id, which is the
  // parent's allocation id.
  uint64_t kept_id = 0;
  for (const auto& r : parent.records) {
    if (r.tag == RecordTag::kAlloc && r.size == 4001) kept_id = r.id;
  }
  bool inherited_kept = false;
  for (const auto& r : child.records) {
    if (r.tag == RecordTag::kInherited && r.size == 4001) {
      inherited_kept = r.id == kept_id && r.api == format::Api::kMalloc;
    }
  }
  EXPECT_TRUE(inherited_kept);
  EXPECT_EQ(cc.live.size(), 1u);  // 4005
  EXPECT_EQ(pc.live.size(), 1u);  // 4005
  EXPECT_EQ(UnpairedFrees(child), 0u);
  EXPECT_EQ(UnpairedFrees(parent), 0u);
  // The child redefines the stacks and modules it needs.
  EXPECT_GT(child.stack_nodes.size(), 0u);
  EXPECT_NE(FindTag(child, RecordTag::kModule), nullptr);
}

TEST(ForkScenario, ForkWhileOtherThreadsAllocate) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("fork_threads_program")}, dir);
  ASSERT_EQ(run.exit_code, 0) << run.out << run.err;
  EXPECT_EQ(run.out, "failures 0\n");
  ASSERT_EQ(run.traces.size(), 21u);
  int children = 0;
  for (const auto& path : run.traces) {
    TraceContents t = ReadTrace(path);
    EXPECT_EQ(t.error, "") << path;
    EXPECT_TRUE(t.complete) << path;
    EXPECT_EQ(UnpairedFrees(t), 0u) << path;
    if (t.header.flags & format::kFileFlagForkChild) {
      ++children;
      EXPECT_EQ(CountMagic(t, 12000, 12001).by_size[12000], 100) << path;
      // The workers' blocks live at fork time are inherited, not re-allocated.
      EXPECT_EQ(CountMagic(t, 11000, 11007).allocs.size(), 0u) << path;
    }
  }
  EXPECT_EQ(children, 20);
}

TEST(ExecScenario, NewImageGetsItsOwnFile) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("exec_program")}, dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "stage2\n");
  ASSERT_EQ(run.traces.size(), 2u) << "traces: " << run.traces.size();
  // Same pid: the second image gets the .1 suffix.
  bool second_is_0 = run.traces[0].find(".1.hst") != std::string::npos;
  std::string one_path = run.traces[second_is_0 ? 1 : 0];
  std::string two_path = run.traces[second_is_0 ? 0 : 1];
  ASSERT_NE(two_path.find(".1.hst"), std::string::npos) << two_path;
  TraceContents one = ReadTrace(one_path);
  TraceContents two = ReadTrace(two_path);
  ASSERT_EQ(one.error, "");
  ASSERT_EQ(two.error, "");
  EXPECT_EQ(one.header.pid, two.header.pid);
  EXPECT_TRUE(two.header.flags & format::kFileFlagExeced);
  EXPECT_EQ(CountTag(one, RecordTag::kExec), 2);  // failed one + real one
  EXPECT_EQ(CountTag(one, RecordTag::kExecFailed), 1);
  EXPECT_TRUE(one.complete);
  EXPECT_TRUE(two.complete);
  // The last kEnd of the first image says exec.
  const format::Record* end = nullptr;
  for (const auto& r : one.records) {
    if (r.tag == RecordTag::kEnd) end = &r;
  }
  ASSERT_NE(end, nullptr);
  EXPECT_EQ(end->end.reason, format::EndReason::kExec);
  EXPECT_EQ(CountMagic(one, 5000, 5010).by_size,
            (std::map<uint64_t, int>{{5001, 1}, {5003, 1}}));
  EXPECT_EQ(CountMagic(two, 5000, 5010).by_size, (std::map<uint64_t, int>{{5002, 1}}));
  const format::Record* process = FindTag(two, RecordTag::kProcess);
  ASSERT_NE(process, nullptr);
  EXPECT_EQ(Text2(two, process), one_path);
}

TEST(DlopenScenario, ModuleRecordsAndAllocations) {
  std::string dir = MakeTempDir();
  std::string plugin = ScenarioProgram("libscenario_plugin.so");
  RunResult run = RunTraced({ScenarioProgram("dlopen_program"), plugin}, dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);
  const format::Record* module = nullptr;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kModule && Text(t, &r) == plugin) module = &r;
  }
  ASSERT_NE(module, nullptr) << "no module record for " << plugin;
  // Its PT_LOAD segments, one of them executable (PF_X) for plugin.c's code.
  ASSERT_FALSE(module->module.segments.empty());
  bool has_code = false;
  for (const format::SegmentInfo& s : module->module.segments) {
    has_code = has_code || (s.flags & 1) != 0;
  }
  EXPECT_TRUE(has_code);
  bool unloaded = false;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kModuleUnload && r.module.id == module->module.id) unloaded = true;
  }
  EXPECT_TRUE(unloaded);
  MagicCounts c = CountMagic(t, 6000, 6010);
  EXPECT_EQ(c.by_size, (std::map<uint64_t, int>{{6001, 1}, {6002, 1}}));
  EXPECT_EQ(c.live.size(), 1u);
  // The plugin's allocation stack has a frame inside the plugin.
  uint64_t stack = 0;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kAlloc && r.size == 6001) stack = r.stack;
  }
  ASSERT_NE(stack, 0u);
  // A return address inside one of the plugin's executable segments
  // (load address + vaddr, memsz), as the module record gives them.
  bool in_plugin = false;
  for (uint64_t node = stack; node != 0;) {
    auto it = t.stack_nodes.find(node);
    ASSERT_NE(it, t.stack_nodes.end());
    uint64_t ip = it->second.second;
    for (const format::SegmentInfo& s : module->module.segments) {
      uint64_t lo = module->module.load_address + s.vaddr;
      if ((s.flags & 1) != 0 && ip > lo && ip <= lo + s.memsz) in_plugin = true;
    }
    node = it->second.first;
  }
  EXPECT_TRUE(in_plugin);
}

TEST(DlopenScenario, CallerRunpathStillApplies) {
  // heapsight's dlopen hook must not become "the caller" of dlopen: the
  // bare name resolves only through dlopen_program's own RUNPATH.
  std::map<std::string, std::string> env = {{"LD_LIBRARY_PATH", ""}};
  std::vector<std::string> argv = {ScenarioProgram("dlopen_program"), "libscenario_plugin.so"};
  RunResult plain = RunPlain(argv, env);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  std::string dir = MakeTempDir();
  RunResult run = RunTraced(argv, dir, env);
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, plain.out);
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  EXPECT_EQ(CountMagic(t, 6000, 6010).by_size, (std::map<uint64_t, int>{{6001, 1}, {6002, 1}}));
}

TEST(ExitScenario, UnderscoreExitTraceIsComplete) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("exit_program"), "_exit"}, dir);
  EXPECT_EQ(run.exit_code, 3);
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);
  EXPECT_FALSE(t.truncated);
  const format::Record* end = FindTag(t, RecordTag::kEnd);
  ASSERT_NE(end, nullptr);
  EXPECT_EQ(end->end.reason, format::EndReason::kUnderscoreExit);
  EXPECT_EQ(end->end.exit_status, 3);
  EXPECT_EQ(CountMagic(t, 8001, 8002).by_size[8001], 100);
}

TEST(ExitScenario, SigkillLeavesReadableIncompleteTrace) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("exit_program"), "kill"}, dir);
  EXPECT_EQ(run.exit_code, 128 + 9);
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  EXPECT_EQ(t.error, "");
  EXPECT_FALSE(t.complete);  // no kEnd: the trace says it was cut short
  // Whatever was flushed is there: full chunks of the loop.
  MagicCounts c = CountMagic(t, 8002, 8003);
  EXPECT_GT(c.by_size[8002], 10000);
  EXPECT_LE(c.by_size[8002], 200000);
  EXPECT_EQ(UnpairedFrees(t), 0u);
}

TEST(ExitScenario, LateDestructorFreesAreRecorded) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("exit_program"), "dtor"}, dir);
  ASSERT_EQ(run.exit_code, 0);
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);
  // 9001/9002: the executable's destructor function (run by _dl_fini).
  // 9003/9004: an atexit handler registered by a library constructor that
  // ran before heapsight's, so it runs after heapsight's exit handler.
  MagicCounts c = CountMagic(t, 9001, 9005);
  EXPECT_EQ(c.by_size, (std::map<uint64_t, int>{{9001, 1}, {9002, 1}, {9003, 1}, {9004, 1}}));
  EXPECT_EQ(c.live.size(), 0u) << "a late free became a false leak";
  // The handler's events come after kEnd in file order (write-through).
  size_t end_index = 0, late_index = 0;
  for (size_t i = 0; i < t.records.size(); ++i) {
    if (t.records[i].tag == RecordTag::kEnd) end_index = i;
    if (t.records[i].tag == RecordTag::kAlloc && t.records[i].size == 9004) late_index = i;
  }
  EXPECT_GT(late_index, end_index);
}

TEST(ExitScenario, ExitStatusIsRecorded) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("exit_program"), "exit"}, dir);
  ASSERT_EQ(run.exit_code, 6);
  TraceContents t = ReadTrace(run.traces.at(0));
  const format::Record* end = FindTag(t, RecordTag::kEnd);
  ASSERT_NE(end, nullptr);
  EXPECT_EQ(end->end.reason, format::EndReason::kExit);
  EXPECT_EQ(end->end.exit_status, 6);
}

// Returning from main reaches exit() inside libc, past our exit hook; the
// status must still be the one main returned.
TEST(ExitScenario, StatusReturnedFromMainIsRecorded) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("exit_program"), "return"}, dir);
  ASSERT_EQ(run.exit_code, 5);
  TraceContents t = ReadTrace(run.traces.at(0));
  const format::Record* end = FindTag(t, RecordTag::kEnd);
  ASSERT_NE(end, nullptr);
  EXPECT_EQ(end->end.reason, format::EndReason::kExit);
  EXPECT_EQ(end->end.exit_status, 5);
}

}  // namespace
}  // namespace heapsight::testing
