// tests/scenarios/robustness_test.cc: hostile hosts (closed fds, chdir,
// dup2 over our fd), unchanged output and exit status, unwritable output,
// HEAPSIGHT_DISABLE and the manifest.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

TEST(RobustnessScenario, ClosedFdsChdirAndDup2StillGiveCompleteTrace) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("fds_program")}, dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);
  MagicCounts c = CountMagic(t, 7000, 7003);
  EXPECT_EQ(c.by_size, (std::map<uint64_t, int>{{7000, 1}, {7001, 1000}, {7002, 1}}));
  EXPECT_EQ(c.live.size(), 2u);
  EXPECT_EQ(UnpairedFrees(t), 0u);
}

TEST(RobustnessScenario, RelativeOutputIsResolvedAtStart) {
  // A relative HEAPSIGHT_OUTPUT is relative to the start directory, even
  // though the program chdir()s to / before it allocates.
  std::string dir = MakeTempDir();
  std::string cwd_before(4096, '\0');
  ASSERT_NE(getcwd(cwd_before.data(), cwd_before.size()), nullptr);
  ASSERT_EQ(chdir(dir.c_str()), 0);
  RunResult run = RunTraced({ScenarioProgram("fds_program")}, dir,
                            {{"HEAPSIGHT_OUTPUT", "relative.%p.hst"}});
  ASSERT_EQ(chdir(cwd_before.c_str()), 0);
  ASSERT_EQ(run.traces.size(), 1u);
  EXPECT_TRUE(ReadTrace(run.traces[0]).complete);
}

TEST(RobustnessScenario, OutputAndExitStatusUnchanged) {
  for (const char* status : {"0", "7"}) {
    std::string dir = MakeTempDir();
    std::vector<std::string> argv = {ScenarioProgram("output_program"), status};
    RunResult plain = RunPlain(argv);
    RunResult traced = RunTraced(argv, dir);
    EXPECT_EQ(traced.exit_code, plain.exit_code);
    EXPECT_EQ(traced.out, plain.out);
    EXPECT_EQ(traced.err, plain.err);
    ASSERT_EQ(traced.traces.size(), 1u);
    EXPECT_TRUE(ReadTrace(traced.traces[0]).complete);
  }
}

TEST(RobustnessScenario, ShellPipelineUnchanged) {
  std::string dir = MakeTempDir();
  std::vector<std::string> argv = {"/bin/sh", "-c", "echo one; ls / >/dev/null; echo two; exit 5"};
  RunResult plain = RunPlain(argv);
  RunResult traced = RunTraced(argv, dir);
  EXPECT_EQ(traced.exit_code, 5);
  EXPECT_EQ(traced.out, plain.out);
  EXPECT_EQ(traced.err, plain.err);
  ASSERT_GE(traced.traces.size(), 2u);  // sh + ls at least
  for (const auto& path : traced.traces) {
    TraceContents t = ReadTrace(path);
    EXPECT_EQ(t.error, "") << path;
    EXPECT_TRUE(t.complete) << path;
    EXPECT_EQ(UnpairedFrees(t), 0u) << path;
  }
}

TEST(RobustnessScenario, UnwritableOutputWarnsOnceAndStepsAside) {
  std::vector<std::string> argv = {ScenarioProgram("output_program"), "4"};
  RunResult plain = RunPlain(argv);
  std::string dir = MakeTempDir();
  RunResult traced =
      RunTraced(argv, dir, {{"HEAPSIGHT_OUTPUT", "/nonexistent-dir/trace.%p.hst"}});
  EXPECT_EQ(traced.exit_code, 4);
  EXPECT_EQ(traced.out, plain.out);
  std::string prefix = "heapsight: cannot write trace /nonexistent-dir/trace.";
  ASSERT_EQ(traced.err.rfind(prefix, 0), 0u) << traced.err;
  // One warning line, then exactly the program's own stderr.
  size_t nl = traced.err.find('\n');
  ASSERT_NE(nl, std::string::npos);
  EXPECT_NE(traced.err.find("No such file or directory"), std::string::npos);
  EXPECT_EQ(traced.err.substr(nl + 1), plain.err);
  EXPECT_TRUE(traced.traces.empty());
  // Quiet mode: not even the warning.
  RunResult quiet = RunTraced(
      argv, dir, {{"HEAPSIGHT_OUTPUT", "/nonexistent-dir/t.hst"}, {"HEAPSIGHT_QUIET", "1"}});
  EXPECT_EQ(quiet.err, plain.err);
}

// glibc aborts on these frees; the kBadFree record must already be on disk.
void CheckBadFree(const char* mode, format::Api api, format::FreeError error, bool stack_block) {
  std::string dir = MakeTempDir();
  std::vector<std::string> argv = {ScenarioProgram("badfree_program"), mode};
  RunResult plain = RunPlain(argv);
  RunResult run = RunTraced(argv, dir);
  EXPECT_EQ(run.exit_code, plain.exit_code) << mode;
  EXPECT_EQ(run.exit_code, 128 + 6) << mode;  // SIGABRT from glibc
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  EXPECT_EQ(t.error, "");
  EXPECT_FALSE(t.complete);
  // The program printed the heap block's and the stack buffer's addresses.
  std::istringstream in(run.out);
  std::string heap_text, stack_text;
  in >> heap_text >> stack_text;
  uint64_t expected = std::stoull(stack_block ? stack_text : heap_text, nullptr, 16);
  int bad = 0;
  for (const auto& r : t.records) {
    if (r.tag != format::RecordTag::kBadFree) continue;
    ++bad;
    EXPECT_EQ(r.address, expected) << mode;
    EXPECT_EQ(r.api, api) << mode;
    EXPECT_EQ(r.code, static_cast<uint8_t>(error)) << mode;
    EXPECT_NE(r.stack, 0u);
  }
  EXPECT_EQ(bad, 1) << mode;
}

TEST(RobustnessScenario, DoubleFreeIsRecordedBeforeGlibcAborts) {
  CheckBadFree("double", format::Api::kFree, format::FreeError::kDoubleFree, false);
}

TEST(RobustnessScenario, InvalidFreeIsRecordedBeforeGlibcAborts) {
  CheckBadFree("invalid", format::Api::kFree, format::FreeError::kInvalidFree, true);
}

TEST(RobustnessScenario, InvalidReallocIsRecordedBeforeGlibcAborts) {
  CheckBadFree("realloc", format::Api::kRealloc, format::FreeError::kInvalidFree, true);
}

TEST(RobustnessScenario, DisableMeansNoTrace) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("output_program")}, dir, {{"HEAPSIGHT_DISABLE", "1"}});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_TRUE(run.traces.empty());
}

TEST(RobustnessScenario, ManifestListsEveryTrace) {
  std::string dir = MakeTempDir();
  std::string manifest = dir + "/manifest.txt";
  RunResult run = RunTraced({ScenarioProgram("fork_program")}, dir,
                            {{"HEAPSIGHT_MANIFEST", manifest}});
  ASSERT_EQ(run.exit_code, 0);
  std::ifstream in(manifest);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, run.traces);
}

TEST(RobustnessScenario, ExistingFileIsNeverOverwritten) {
  std::string dir = MakeTempDir();
  std::string fixed = dir + "/fixed.hst";
  { std::ofstream(fixed) << "not a trace"; }
  RunResult run = RunTraced({ScenarioProgram("output_program")}, dir,
                            {{"HEAPSIGHT_OUTPUT", fixed}});
  EXPECT_EQ(run.exit_code, 0);
  std::stringstream ss;
  ss << std::ifstream(fixed).rdbuf();
  EXPECT_EQ(ss.str(), "not a trace");
  ASSERT_EQ(run.traces.size(), 2u);
  EXPECT_EQ(run.traces[0], dir + "/fixed.1.hst");
  EXPECT_TRUE(ReadTrace(run.traces[0]).complete);
}

}  // namespace
}  // namespace heapsight::testing
