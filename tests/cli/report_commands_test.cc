// tests/cli/report_commands_test.cc: the `report`, `leaks` and `dump`
// subcommands of the built `heapsight` binary: output, exit codes, errors.
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "gtest/gtest.h"
#include "tests/analyzer/sample_trace.h"
#include "tests/support/run_traced.h"

namespace heapsight::analyzer {
namespace {

std::string Heapsight() { return testing::BuildPath("cli/heapsight"); }

TEST(ReportCommandsTest, ReportAndLeaksOnASyntheticTrace) {
  std::string path = testing::WriteSampleTrace("cmd");
  testing::RunResult report = testing::RunPlain({Heapsight(), "report", path});
  EXPECT_EQ(report.exit_code, 0) << report.err;
  EXPECT_TRUE(absl::StrContains(report.out, "== process 4242 (parent 1): /nonexistent/sample_prog --flag"));
  EXPECT_TRUE(absl::StrContains(report.out, "not freed at exit: 6,200 bytes in 3 blocks"));
  // The modules do not exist: one warning each, on stderr.
  EXPECT_TRUE(absl::StrContains(report.err, "heapsight: warning: /nonexistent/sample_prog: no such file"))
      << report.err;

  testing::RunResult leaks = testing::RunPlain({Heapsight(), "leaks", path, "--leak-exitcode=9"});
  EXPECT_EQ(leaks.exit_code, 9);
  EXPECT_TRUE(absl::StrContains(leaks.out, "Direct leak of 5000 byte(s) in 1 object(s) allocated from:\n"
                                           "    #0 0x7f0000001234 (/nonexistent/libsample.so+0x1234)\n"))
      << leaks.out;
  EXPECT_TRUE(absl::EndsWith(leaks.out, "SUMMARY: heapsight: 6200 byte(s) leaked in 3 allocation(s).\n"));

  testing::RunResult json = testing::RunPlain({Heapsight(), "leaks", "--format", "json", path});
  EXPECT_EQ(json.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(json.out, "\"schema\": \"heapsight-leaks/1\"")) << json.out;

  testing::RunResult dump = testing::RunPlain({Heapsight(), "dump", path});
  EXPECT_EQ(dump.exit_code, 0);
  EXPECT_TRUE(absl::StrContains(dump.out, "alloc id=2:0 api=malloc size=5000"));
}

TEST(ReportCommandsTest, BadInputGivesOneClearErrorLine) {
  std::string empty = ::testing::TempDir() + "/cmd_empty.hst";
  std::ofstream(empty).close();
  for (const char* command : {"report", "leaks", "dump"}) {
    testing::RunResult r = testing::RunPlain({Heapsight(), command, empty});
    EXPECT_EQ(r.exit_code, 3) << command;  // bad input (docs/cli.md "Exit status")
    EXPECT_EQ(r.err, "heapsight: " + empty + ": empty file, not a heapsight trace\n") << command;
  }
  testing::RunResult missing = testing::RunPlain({Heapsight(), "leaks", "/nonexistent/t.hst"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_EQ(missing.err, "heapsight: /nonexistent/t.hst: No such file or directory\n");
  std::string path = testing::WriteSampleTrace("cmd_supp");
  testing::RunResult supp =
      testing::RunPlain({Heapsight(), "leaks", "--suppressions", "/nonexistent/supp", path});
  EXPECT_EQ(supp.exit_code, 1);
  EXPECT_EQ(supp.err, "heapsight: /nonexistent/supp: cannot read suppressions file\n");
}

TEST(ReportCommandsTest, CutShortTraceIsReported) {
  std::string path = testing::WriteSampleTrace("cmd_cut", /*with_end=*/false);
  testing::RunResult report = testing::RunPlain({Heapsight(), "report", path});
  EXPECT_EQ(report.exit_code, 4);  // truncated input: output written (docs/cli.md)
  EXPECT_TRUE(absl::StrContains(report.out, "status: TRACE CUT SHORT")) << report.out;
  EXPECT_TRUE(absl::StrContains(report.err, "trace cut short (no end record")) << report.err;
  testing::RunResult leaks = testing::RunPlain({Heapsight(), "leaks", path});
  EXPECT_TRUE(absl::StrContains(leaks.out, "was cut short")) << leaks.out;
}

// Issue 13: `heapsight --help` and every command that prints numbers name
// the glossary that defines them, and the glossary defines each number.
TEST(ReportCommandsTest, HelpNamesTheGlossary) {
  for (const char* command : {"", "record", "report", "leaks", "growth", "diff", "pprof",
                              "collapse", "flamegraph", "html"}) {
    std::vector<std::string> args = {Heapsight()};
    if (*command != '\0') args.push_back(command);
    args.push_back("--help");
    testing::RunResult help = testing::RunPlain(args);
    EXPECT_EQ(help.exit_code, 0) << command;
    EXPECT_TRUE(absl::StrContains(help.out, "docs/glossary.md")) << command << ":\n" << help.out;
  }
  std::ifstream in(std::string(HEAPSIGHT_SOURCE_ROOT) + "/docs/glossary.md");
  ASSERT_TRUE(in);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const char* term : {"**Allocated**", "**Peak**", "**Live at a moment**",
                           "**Not freed at exit**", "**Temporary**", "**definitely lost**",
                           "**indirectly lost**", "**possibly lost**", "**still reachable**",
                           "**Runtime blocks**", "**estimate**", "**Discarded by exec**"}) {
    EXPECT_TRUE(absl::StrContains(text, term)) << term;
  }
}

}  // namespace
}  // namespace heapsight::analyzer
