// tests/cli/family_commands_test.cc: pprof, collapse and flamegraph of a
// process family (issue 13): several traces, a glob, or --family from one
// trace make one profile with the process on every sample (a root frame in
// folded stacks and flame graphs, pid/executable labels in pprof), and the
// family's totals are the sums of its processes'. The family is a real
// fork/exec one: `heapsight record -- sh -c 'P; P'` with P =
// temporaries_program (200 temporary allocations each, see its header).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "analyzer/model/trace_family.h"
#include "tests/cli/cli_test_util.h"
#include "tests/support/run_traced.h"

namespace heapsight::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::SizeIs;

namespace fs = std::filesystem;

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& entry : fs::directory_iterator(dir)) out.push_back(entry.path().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Folded-stack text -> value per root frame.
std::map<std::string, int64_t> ByRoot(const std::string& folded) {
  std::map<std::string, int64_t> out;
  for (absl::string_view line : absl::StrSplit(folded, '\n', absl::SkipEmpty())) {
    size_t space = line.rfind(' ');
    int64_t value = 0;
    EXPECT_TRUE(absl::SimpleAtoi(line.substr(space + 1), &value)) << line;
    out[std::string(line.substr(0, line.find(';')))] += value;
  }
  return out;
}

int64_t Total(const std::string& folded) {
  int64_t sum = 0;
  for (const auto& [root, value] : ByRoot(folded)) sum += value;
  return sum;
}

class FamilyCommandsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(MakeTempDir());
    const std::string program = BuildPath("tests/cli/temporaries_program");
    RunResult r = RunHeapsight({"record", "-q", "-o", *dir_ + "/%e.%p.hst", "--", "/bin/sh", "-c",
                                program + "; " + program});
    ASSERT_EQ(r.exit_code, 0) << r.err;
    traces_ = new std::vector<std::string>(FilesIn(*dir_));
    program_traces_ = new std::vector<std::string>();
    for (const std::string& t : *traces_) {
      if (t.find("/temporaries_program.") != std::string::npos) program_traces_->push_back(t);
    }
    // An unrelated run in the same directory: not part of the family.
    RunResult other = RunTraced({program}, *dir_, {{"HEAPSIGHT_OUTPUT", *dir_ + "/other.%p.hst"}});
    ASSERT_EQ(other.exit_code, 0) << other.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete traces_;
    delete program_traces_;
  }
  static std::string* dir_;
  static std::vector<std::string>* traces_;          // the family (before `other`)
  static std::vector<std::string>* program_traces_;  // its two temporaries_program traces
};
std::string* FamilyCommandsTest::dir_ = nullptr;
std::vector<std::string>* FamilyCommandsTest::traces_ = nullptr;
std::vector<std::string>* FamilyCommandsTest::program_traces_ = nullptr;

TEST_F(FamilyCommandsTest, FamilyIsFoundFromAnyOfItsTraces) {
  ASSERT_THAT(*program_traces_, SizeIs(2));
  ASSERT_GE(traces_->size(), 3u);  // the shell, and the two programs it ran
  for (const std::string& t : *traces_) {
    absl::StatusOr<std::vector<analyzer::TraceIdentity>> family = analyzer::FindTraceFamily(t);
    ASSERT_TRUE(family.ok()) << family.status();
    std::set<std::string> found;
    for (const analyzer::TraceIdentity& id : *family) found.insert(fs::canonical(id.path).string());
    std::set<std::string> expected;
    for (const std::string& e : *traces_) expected.insert(fs::canonical(e).string());
    EXPECT_EQ(found, expected) << "from " << t;
    // Parents first: the shell started before the programs it ran.
    EXPECT_THAT(family->front().exe, HasSubstr("sh")) << family->front().exe;
  }
}

TEST_F(FamilyCommandsTest, CollapseHasARootFramePerProcess) {
  RunResult r = RunHeapsight({"collapse", "--family", "--metric", "temporary", program_traces_->at(1)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::map<std::string, int64_t> roots = ByRoot(r.out);
  for (const std::string& t : *program_traces_) {
    absl::StatusOr<analyzer::TraceIdentity> id = analyzer::ReadTraceIdentity(t);
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(roots[absl::StrCat("temporaries_program (pid ", id->pid, ")")], 200) << r.out;
  }
  EXPECT_THAT(r.out, HasSubstr(";main;(anonymous namespace)::temp_loop;(anonymous "
                               "namespace)::temp_alloc 100\n"));
  for (const auto& [root, value] : roots) {
    EXPECT_THAT(root, ::testing::MatchesRegex("(temporaries_program|dash|sh|bash) \\(pid [0-9]+\\)"));
  }
}

TEST_F(FamilyCommandsTest, FamilyTotalsAreTheSumsOfTheProcesses) {
  for (const char* metric : {"alloc_count", "alloc_bytes", "leaked_bytes", "peak_bytes", "temporary"}) {
    int64_t sum = 0;
    for (const std::string& t : *traces_) {
      RunResult one = RunHeapsight({"collapse", "--metric", metric, t});
      ASSERT_EQ(one.exit_code, 0) << one.err;
      sum += Total(one.out);
    }
    RunResult family = RunHeapsight({"collapse", "--metric", metric, "--family", traces_->front()});
    ASSERT_EQ(family.exit_code, 0) << family.err;
    EXPECT_EQ(Total(family.out), sum) << metric;
    // A glob and an explicit list name the same traces.
    RunResult glob = RunHeapsight({"collapse", "--metric", metric, *dir_ + "/[!o]*.hst"});
    EXPECT_EQ(glob.out, family.out) << metric;
    std::vector<std::string> args = {"collapse", "--metric", metric};
    args.insert(args.end(), traces_->begin(), traces_->end());
    EXPECT_EQ(RunHeapsight(args).out, family.out) << metric;
  }
  // The unrelated run is in no family of these traces.
  RunResult all = RunHeapsight({"collapse", "--metric", "alloc_count", "--family", traces_->front()});
  EXPECT_THAT(all.out, ::testing::Not(HasSubstr("other")));
  EXPECT_EQ(ByRoot(all.out).size(), traces_->size());
}

TEST_F(FamilyCommandsTest, FlameGraphHasEveryProcess) {
  std::string svg = *dir_ + "/family.svg.out";
  RunResult r = RunHeapsight({"flamegraph", "--family", "--metric", "temporary", "-o", svg,
                              program_traces_->at(0)});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string text = ReadFile(svg);
  for (const std::string& t : *program_traces_) {
    absl::StatusOr<analyzer::TraceIdentity> id = analyzer::ReadTraceIdentity(t);
    ASSERT_TRUE(id.ok());
    EXPECT_THAT(text, HasSubstr(absl::StrCat("temporaries_program (pid ", id->pid, ")")));
  }
  EXPECT_THAT(text, HasSubstr(absl::StrCat("a process family of ", traces_->size())));
}

TEST_F(FamilyCommandsTest, PprofLabelsEverySampleWithItsProcess) {
  std::string go = FindGo();
  if (go.empty()) GTEST_SKIP() << "go is not installed";
  std::string profile = *dir_ + "/family.pb.gz.out";
  RunResult r = RunHeapsight({"pprof", "--family", "-o", profile, traces_->front()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string scratch = MakeTempDir();
  absl::StatusOr<analyzer::TraceIdentity> id = analyzer::ReadTraceIdentity(program_traces_->at(0));
  ASSERT_TRUE(id.ok());
  RunResult tags = GoPprof(go, scratch, {"-tags", profile});
  ASSERT_EQ(tags.exit_code, 0) << tags.err;
  EXPECT_THAT(tags.out, HasSubstr(" pid: Total "));
  EXPECT_THAT(tags.out, HasSubstr(" executable: Total "));
  EXPECT_THAT(tags.out, HasSubstr(BuildPath("tests/cli/temporaries_program")));
  // One process's temporaries, picked by its label.
  RunResult top = GoPprof(go, scratch, {"-top", "-nodefraction=0", "-sample_index=temporary_objects",
                                        absl::StrCat("-tagfocus=pid=", id->pid), profile});
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_THAT(top.out, HasSubstr("Showing nodes accounting for 200, "));
  // The default type and Go's four types are unchanged.
  RunResult raw = GoPprof(go, scratch, {"-raw", profile});
  EXPECT_THAT(raw.out, HasSubstr("alloc_objects/count alloc_space/bytes inuse_objects/count "
                                 "inuse_space/bytes[dflt]"));
  EXPECT_THAT(raw.out, HasSubstr(absl::StrCat("pid:[", id->pid, "]")));
}

TEST_F(FamilyCommandsTest, BadArgumentsAreClearErrors) {
  RunResult none = RunHeapsight({"collapse", *dir_ + "/nothing-*.hst"});
  EXPECT_EQ(none.exit_code, 3);  // bad input (docs/cli.md "Exit status")
  EXPECT_THAT(none.err, HasSubstr("nothing-*.hst: no trace matches this pattern"));
  RunResult missing = RunHeapsight({"pprof", "--family", "-o", *dir_ + "/x.out", "/nonexistent/t.hst"});
  EXPECT_EQ(missing.exit_code, 3);
  EXPECT_THAT(missing.err, HasSubstr("/nonexistent/t.hst"));
}

}  // namespace
}  // namespace heapsight::testing
