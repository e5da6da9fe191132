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
    // The reference itself: equal outputs below must not be two empty ones.
    EXPECT_EQ(plain.exit_code, std::stoi(status));
    EXPECT_EQ(plain.out, "1000 words, last word999\n");
    EXPECT_EQ(plain.err, "to stderr\n");
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
  EXPECT_EQ(plain.out, "one\ntwo\n");
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
  ASSERT_EQ(plain.err, "to stderr\n");
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

// Issue 5: bad frees are recorded as kFreeError. By default
// (HEAPSIGHT_ON_BAD_FREE=skip) they are not passed to glibc, so the program
// keeps running and exits 0, as under memcheck; with =pass glibc aborts as
// without heapsight, with =abort heapsight aborts; the record is on disk in
// every case.
void CheckBadFree(const char* mode, format::Api api, format::FreeError error, bool stack_block,
                  const char* policy) {
  std::string dir = MakeTempDir();
  std::vector<std::string> argv = {ScenarioProgram("badfree_program"), mode};
  RunResult plain = RunPlain(argv);
  std::map<std::string, std::string> env;
  if (policy != nullptr) env["HEAPSIGHT_ON_BAD_FREE"] = policy;
  RunResult run = RunTraced(argv, dir, env);
  bool skipped = policy == nullptr || std::string(policy) == "skip";
  if (skipped) {
    EXPECT_EQ(run.exit_code, 0) << mode;
  } else {
    EXPECT_EQ(run.exit_code, plain.exit_code) << mode;
    EXPECT_EQ(run.exit_code, 128 + 6) << mode;  // SIGABRT (glibc's, or ours)
  }
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  EXPECT_EQ(t.error, "");
  EXPECT_EQ(t.complete, skipped);
  // The program printed the heap block's and the stack buffer's addresses.
  std::istringstream in(run.out);
  std::string heap_text, stack_text;
  in >> heap_text >> stack_text;
  uint64_t expected = std::stoull(stack_block ? stack_text : heap_text, nullptr, 16);
  auto action = skipped ? format::FreeAction::kSkipped
                : std::string(policy) == "abort" ? format::FreeAction::kAborted
                                                 : format::FreeAction::kPassed;
  int bad = 0;
  uint64_t alloc_id = 0;
  for (const auto& r : t.records) {
    if (r.tag == format::RecordTag::kAlloc && r.size == 13001) alloc_id = r.id;
  }
  for (const auto& r : t.records) {
    if (r.tag != format::RecordTag::kFreeError) continue;
    ++bad;
    EXPECT_EQ(r.address, expected) << mode;
    EXPECT_EQ(r.api, api) << mode;
    EXPECT_EQ(r.code, static_cast<uint8_t>(error)) << mode;
    EXPECT_EQ(r.code2, static_cast<uint8_t>(action)) << mode;
    EXPECT_NE(r.stack, 0u);
    // A double free names the block (its allocation stack); an invalid one cannot.
    EXPECT_EQ(r.id, error == format::FreeError::kDoubleFree ? alloc_id : 0u) << mode;
  }
  EXPECT_EQ(bad, 1) << mode;
}

TEST(RobustnessScenario, DoubleFreeIsRecordedAndSkipped) {
  CheckBadFree("double", format::Api::kFree, format::FreeError::kDoubleFree, false, nullptr);
}

TEST(RobustnessScenario, InvalidFreeIsRecordedAndSkipped) {
  CheckBadFree("invalid", format::Api::kFree, format::FreeError::kInvalidFree, true, nullptr);
}

TEST(RobustnessScenario, InvalidReallocIsRecordedAndSkipped) {
  CheckBadFree("realloc", format::Api::kRealloc, format::FreeError::kInvalidFree, true, "skip");
}

TEST(RobustnessScenario, BadFreePassedToGlibcAborts) {
  CheckBadFree("double", format::Api::kFree, format::FreeError::kDoubleFree, false, "pass");
  CheckBadFree("invalid", format::Api::kFree, format::FreeError::kInvalidFree, true, "pass");
}

TEST(RobustnessScenario, BadFreeAbortOption) {
  CheckBadFree("double", format::Api::kFree, format::FreeError::kDoubleFree, false, "abort");
  CheckBadFree("realloc", format::Api::kRealloc, format::FreeError::kInvalidFree, true, "abort");
}

TEST(RobustnessScenario, DisableMeansNoTrace) {
  // Control: the same run without HEAPSIGHT_DISABLE leaves one trace (so
  // "no trace" below is the option's doing, not a preload that never loaded).
  RunResult control = RunTraced({ScenarioProgram("output_program")}, MakeTempDir());
  EXPECT_EQ(control.exit_code, 0) << control.err;
  EXPECT_EQ(control.traces.size(), 1u) << control.err;
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("output_program")}, dir, {{"HEAPSIGHT_DISABLE", "1"}});
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.err, control.err);
  EXPECT_TRUE(run.traces.empty());
}

TEST(RobustnessScenario, ManifestListsEveryTrace) {
  std::string dir = MakeTempDir();
  // The manifest must exist, in a directory only we can enter (mkdtemp's
  // 0700); entries end in NUL.
  std::string manifest = dir + "/manifest.txt";
  { std::ofstream create(manifest); }
  RunResult run = RunTraced({ScenarioProgram("fork_program")}, dir,
                            {{"HEAPSIGHT_MANIFEST", manifest}});
  ASSERT_EQ(run.exit_code, 0);
  ASSERT_EQ(run.traces.size(), 2u);  // parent and fork child
  std::ifstream in(manifest);
  ASSERT_TRUE(in) << manifest;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line, '\0');) lines.push_back(line);
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
