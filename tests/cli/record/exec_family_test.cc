// tests/cli/record/exec_family_test.cc: `heapsight record` of programs that
// fork and exec (issue 13). An image that ends in a successful exec has no
// leaks: the kernel discards its heap. Shells, make, xargs, find -exec and
// env must pass `--leak-exitcode`, and `heapsight leaks` on their traces
// must count 0 leaked bytes. The record summary names the process of its
// peak heap and the real trace paths.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/run_traced.h"

namespace heapsight::testing {
namespace {

using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

namespace fs = std::filesystem;

std::string Heapsight() { return BuildPath("cli/heapsight"); }

std::vector<std::string> TracesIn(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) out.push_back(entry.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

struct Recorded {
  RunResult record;
  std::vector<std::string> traces;
  RunResult leaks;
};

// Records `command` with --leak-exitcode 7 into a fresh directory, then runs
// `heapsight leaks` on every trace it wrote.
Recorded RecordAndLeaks(const std::vector<std::string>& command) {
  Recorded r;
  std::string dir = MakeTempDir();
  std::vector<std::string> argv = {Heapsight(), "record", "--leak-exitcode", "7", "-o",
                                   dir + "/%e.%p.hst", "--"};
  argv.insert(argv.end(), command.begin(), command.end());
  r.record = RunPlain(argv);
  r.traces = TracesIn(dir);
  std::vector<std::string> leaks = {Heapsight(), "leaks"};
  leaks.insert(leaks.end(), r.traces.begin(), r.traces.end());
  r.leaks = RunPlain(leaks);
  return r;
}

// A forked child that execs is a trace that ends in exec; none of it leaks.
void ExpectNoLeaksAcrossExec(const std::vector<std::string>& command, size_t min_traces) {
  Recorded r = RecordAndLeaks(command);
  EXPECT_EQ(r.record.exit_code, 0) << r.record.err;
  EXPECT_GE(r.traces.size(), min_traces) << r.record.err;
  EXPECT_THAT(r.record.err, HasSubstr("ended in exec: ")) << r.record.err;
  EXPECT_THAT(r.record.err, Not(HasSubstr("not freed at exit"))) << r.record.err;
  EXPECT_EQ(r.leaks.exit_code, 0) << r.leaks.err;
  EXPECT_THAT(r.leaks.out, HasSubstr("\nSUMMARY: heapsight: 0 byte(s) leaked in 0 allocation(s).\n"))
      << r.leaks.out;
  EXPECT_THAT(r.leaks.out, ContainsRegex("heapsight: [a-z]+ ended in exec of [^:]+: [1-9][0-9]* "
                                         "byte\\(s\\) in [1-9][0-9]* block\\(s\\) discarded by exec"))
      << r.leaks.out;
  EXPECT_THAT(r.leaks.out, Not(HasSubstr("older preload")));
  EXPECT_THAT(r.leaks.out, Not(HasSubstr("HEAPSIGHT_LEAK_SCAN=0")));
  EXPECT_THAT(r.leaks.out, Not(HasSubstr("ERROR: heapsight: detected memory leaks")));
}

TEST(RecordExec, ShWithPipesAndSubshells) {
  ExpectNoLeaksAcrossExec({"/bin/sh", "-c", "ls | cat >/dev/null; (ls >/dev/null); ls >/dev/null"},
                          4);
}

TEST(RecordExec, BashWithPipesAndSubshells) {
  ExpectNoLeaksAcrossExec({"bash", "-c", "ls >/dev/null; ls >/dev/null"}, 3);
  ExpectNoLeaksAcrossExec(
      {"bash", "-c", "ls | wc -l >/dev/null; (ls >/dev/null); echo x | cat >/dev/null"}, 5);
}

TEST(RecordExec, Make) {
  std::string dir = MakeTempDir();
  std::ofstream(dir + "/Makefile") << "all:\n\t@ls | wc -l >/dev/null\n\t@(ls >/dev/null)\n";
  ExpectNoLeaksAcrossExec({"make", "-s", "-C", dir}, 3);
}

TEST(RecordExec, Xargs) {
  std::string dir = MakeTempDir();
  std::ofstream(dir + "/list") << "/\n" << dir << "\n";
  ExpectNoLeaksAcrossExec({"xargs", "-a", dir + "/list", "ls", "-d"}, 2);
}

TEST(RecordExec, FindExec) {
  std::string dir = MakeTempDir();
  std::ofstream(dir + "/a.txt") << "a\n";
  std::ofstream(dir + "/b.txt") << "b\n";
  ExpectNoLeaksAcrossExec({"find", dir, "-name", "*.txt", "-exec", "ls", "{}", ";"}, 3);
}

TEST(RecordExec, EnvExecsWithoutFork) {
  Recorded r = RecordAndLeaks({"env", "ls", "-d", "/"});
  ASSERT_THAT(r.traces, SizeIs(2)) << r.record.err;
  EXPECT_EQ(r.record.exit_code, 0) << r.record.err;
  EXPECT_EQ(r.record.out, "/\n");
  EXPECT_THAT(r.leaks.out, HasSubstr("\nSUMMARY: heapsight: 0 byte(s) leaked in 0 allocation(s).\n"))
      << r.leaks.out;
  // env's image, replaced by ls in the same pid: its blocks are discarded.
  EXPECT_THAT(r.leaks.out, ContainsRegex("heapsight: env ended in exec of [^:]*ls: "));
}

TEST(RecordExec, LeaksOfTheLastImageStillCount) {
  // env execs a leaking program: env's image is discarded, the program's
  // leaks are real.
  Recorded r = RecordAndLeaks({"env", BuildPath("tests/cli/record/record_leaky_program")});
  EXPECT_EQ(r.record.exit_code, 7) << r.record.err;
  EXPECT_THAT(r.record.err, HasSubstr("definitely lost: 300 bytes in 3 blocks"));
  EXPECT_THAT(r.leaks.out, HasSubstr("\nSUMMARY: heapsight: 300 byte(s) leaked in 3 allocation(s).\n"));
}

TEST(RecordExec, SummaryNamesThePeakProcessAndTheRealTraces) {
  // bash forks a child that execs the leaky program, then one that execs ls.
  std::string leaky = BuildPath("tests/cli/record/record_leaky_program");
  Recorded r = RecordAndLeaks({"bash", "-c", leaky + "; ls / >/dev/null"});
  ASSERT_GE(r.traces.size(), 5u) << r.record.err;
  EXPECT_EQ(r.record.exit_code, 7) << r.record.err;
  // The peak heap is one process's: its pid and executable are named.
  EXPECT_THAT(r.record.err,
              ContainsRegex("heapsight:    peak heap: [0-9,]+ bytes.* in pid [0-9]+ \\((bash|ls|"
                            "record_leaky_program)\\) at [0-9]+ (ms|us);"));
  std::smatch hint;
  std::regex hint_re("heapsight: run `heapsight leaks ([^`]*)` for the allocation stacks");
  ASSERT_TRUE(std::regex_search(r.record.err, hint, hint_re)) << r.record.err;
  std::string paths = hint[1].str();
  EXPECT_THAT(paths, Not(HasSubstr("TRACE")));
  // Every listed path is a trace record wrote, and the leaky program's is one.
  std::istringstream words(paths);
  std::vector<std::string> listed;
  for (std::string w; words >> w;) listed.push_back(w);
  for (const std::string& w : listed) {
    EXPECT_NE(std::find(r.traces.begin(), r.traces.end(), w), r.traces.end()) << w;
  }
  EXPECT_TRUE(std::any_of(listed.begin(), listed.end(), [](const std::string& w) {
    return w.find("/record_leaky_program.") != std::string::npos;
  })) << paths;
  // The family's leaks are the leaky program's 300 bytes, nothing of bash.
  EXPECT_THAT(r.leaks.out, HasSubstr("\nSUMMARY: heapsight: 300 byte(s) leaked in 3 allocation(s).\n"));
}

}  // namespace
}  // namespace heapsight::testing
