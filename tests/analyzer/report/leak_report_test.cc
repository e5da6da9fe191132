// tests/analyzer/report/leak_report_test.cc: leak groups, LSan-shaped text (golden),
// JSON checked against docs/leak-report.schema.json, suppressions.
#include "analyzer/report/leak_report.h"

#include <fstream>
#include <sstream>

#include "analyzer/output/stack_text.h"
#include "gtest/gtest.h"
#include "tests/analyzer/golden.h"
#include "tests/analyzer/json_schema_check.h"
#include "tests/analyzer/sample_trace.h"

namespace heapsight::analyzer {
namespace {

nlohmann::json LoadSchema() {
  std::ifstream in(HEAPSIGHT_LEAK_SCHEMA);
  EXPECT_TRUE(in) << HEAPSIGHT_LEAK_SCHEMA;
  return nlohmann::json::parse(in);
}

// Trace paths vary per run: replace them for golden comparisons.
std::string Normalize(std::string text, const std::string& path) {
  for (size_t pos; (pos = text.find(path)) != std::string::npos;) text.replace(pos, path.size(), "TRACE");
  return text;
}

TEST(LeakReportTest, GroupsSortedByBytesWithKindAndRuntimeExcluded) {
  std::string path = testing::WriteSampleTrace("leaks");
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok()) << p.status();
  LeakReport report = BuildLeakReport({&*p}, Suppressions());
  ASSERT_EQ(report.groups.size(), 2u);
  EXPECT_EQ(report.groups[0].counts.bytes, 5000u);
  EXPECT_EQ(report.groups[0].counts.blocks, 1u);
  EXPECT_EQ(report.groups[0].kind, LeakClass::kUnclassified);  // no scan in the trace
  EXPECT_EQ(report.groups[1].counts.bytes, 1200u);
  EXPECT_EQ(report.groups[1].counts.blocks, 2u);
  EXPECT_EQ(report.groups[1].api, format::Api::kMalloc);
  ASSERT_EQ(report.groups[1].frames.size(), 3u);
  EXPECT_EQ(report.groups[1].frames[0].module, "/nonexistent/sample_prog");
  EXPECT_EQ(report.groups[1].frames[0].offset, 0x1200u);
  EXPECT_EQ(report.totals.leaked.bytes, 6200u);
  EXPECT_EQ(report.totals.leaked.blocks, 3u);
  EXPECT_EQ(report.totals.runtime.bytes, 72704u);
  EXPECT_EQ(report.totals.runtime.blocks, 1u);
  EXPECT_TRUE(report.complete);

  testing::ExpectGolden("leaks_sample.txt", Normalize(FormatLeakText(report), path));
  std::string json = FormatLeakJson(report);
  testing::ExpectGolden("leaks_sample.json", Normalize(json, path));
  EXPECT_EQ(testing::JsonSchemaCheck(LoadSchema()).Validate(LeakReportToJson(report)),
            std::vector<std::string>{});
}

// Issue 16: the text says once how many addresses stayed unsymbolized and
// why, with the JSON's "symbols" numbers (the sample's modules are under
// /nonexistent: every address is in a module file that cannot be read).
TEST(LeakReportTest, TextSaysOnceHowManyAddressesStayedUnsymbolized) {
  std::string path = testing::WriteSampleTrace("leaks_unsymbolized");
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok()) << p.status();
  LeakReport report = BuildLeakReport({&*p}, Suppressions());
  EXPECT_EQ(report.symbols.addresses, 4u);
  EXPECT_EQ(report.symbols.module_unreadable, 4u);
  EXPECT_EQ(report.symbols.unsymbolized(), 4u);
  std::string text = FormatLeakText(report);
  const std::string line = "heapsight: 4 of 4 addresses unsymbolized (4 module file unreadable).\n";
  size_t at = text.find(line);
  ASSERT_NE(at, std::string::npos) << text;
  EXPECT_EQ(text.find("unsymbolized", at + line.size()), std::string::npos) << text;
  EXPECT_EQ(text.find("unsymbolized"), at + line.find("unsymbolized")) << text;
  // Before the summary, which stays the last line.
  EXPECT_LT(at, text.find("SUMMARY: heapsight: 6200 byte(s) leaked in 3 allocation(s).\n"));
}

TEST(LeakReportTest, UnsymbolizedTextNamesEachReasonThatOccurs) {
  SymbolStats stats;
  stats.addresses = 1234;
  EXPECT_EQ(UnsymbolizedText(stats), "");  // every address got a name: nothing to say
  stats.no_module = 1;
  EXPECT_EQ(UnsymbolizedText(stats), "1 of 1,234 addresses unsymbolized (1 in no recorded module)");
  stats.module_unreadable = 2;
  stats.no_debug_info = 1000;
  stats.no_symbol = 4;
  EXPECT_EQ(UnsymbolizedText(stats),
            "1,007 of 1,234 addresses unsymbolized (1 in no recorded module, 2 module file "
            "unreadable, 1,000 no symbols or debug info, 4 no function in the debug info)");
}

TEST(LeakReportTest, SuppressionsMoveGroupsAside) {
  std::string path = testing::WriteSampleTrace("leaks_supp");
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok());
  auto rules = Suppressions::Parse("leak:libsample.so\n", "test");
  ASSERT_TRUE(rules.ok());
  LeakReport report = BuildLeakReport({&*p}, *rules);
  ASSERT_EQ(report.groups.size(), 1u);
  EXPECT_EQ(report.groups[0].counts.bytes, 1200u);
  ASSERT_EQ(report.suppressed.size(), 1u);
  EXPECT_EQ(report.suppressed[0].suppressed_by, "libsample.so");
  EXPECT_EQ(report.totals.suppressed.bytes, 5000u);
  EXPECT_EQ(report.totals.leaked.bytes, 1200u);
  EXPECT_EQ(report.totals.classes[LeakClass::kUnclassified].bytes, 1200u);
  nlohmann::json j = LeakReportToJson(report);
  EXPECT_EQ(j["suppressed"][0]["suppressed_by"], "libsample.so");
  EXPECT_TRUE(testing::JsonSchemaCheck(LoadSchema()).Validate(j).empty());
}

// `report` asks for totals only (with_frames false): with no suppressions
// no stack is symbolized (nothing would print its frames), and the groups,
// classes and totals are the full report's; with suppressions the stacks
// are symbolized to match them.
TEST(LeakReportTest, TotalsOnlySymbolizeNothingUnlessSuppressionsNeedFrames) {
  std::string path = testing::WriteSampleTrace("leaks_totals_only");
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok()) << p.status();
  const uint64_t before = p->symbolizer->Stats().addresses;
  LeakReport totals = BuildLeakReport({&*p}, Suppressions(), /*with_frames=*/false);
  EXPECT_EQ(p->symbolizer->Stats().addresses, before);
  ASSERT_EQ(totals.groups.size(), 2u);
  EXPECT_TRUE(totals.groups[0].frames.empty());
  EXPECT_TRUE(totals.groups[1].frames.empty());
  EXPECT_EQ(totals.totals.leaked.bytes, 6200u);
  EXPECT_EQ(totals.totals.leaked.blocks, 3u);
  EXPECT_EQ(FormatLeakClassSummary(totals),
            FormatLeakClassSummary(BuildLeakReport({&*p}, Suppressions())));
  // The full report symbolized the two groups' stacks (3 frames and more).
  const uint64_t after_full = p->symbolizer->Stats().addresses;
  EXPECT_GE(after_full, before + 3);

  absl::StatusOr<ProcessProfile> q = AnalyzeTrace(path);
  ASSERT_TRUE(q.ok()) << q.status();
  auto rules = Suppressions::Parse("leak:libsample.so\n", "test");
  ASSERT_TRUE(rules.ok());
  LeakReport suppressed = BuildLeakReport({&*q}, *rules, /*with_frames=*/false);
  EXPECT_EQ(q->symbolizer->Stats().addresses, after_full);
  ASSERT_EQ(suppressed.suppressed.size(), 1u);
  EXPECT_EQ(suppressed.suppressed[0].suppressed_by, "libsample.so");
  EXPECT_TRUE(suppressed.suppressed[0].frames.empty());
  EXPECT_EQ(suppressed.totals.leaked.bytes, 1200u);
}

TEST(LeakReportTest, CutShortTraceSaysSo) {
  std::string path = testing::WriteSampleTrace("leaks_cut", /*with_end=*/false);
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok());
  LeakReport report = BuildLeakReport({&*p}, Suppressions());
  EXPECT_FALSE(report.complete);
  std::string text = FormatLeakText(report);
  EXPECT_NE(text.find("was cut short (no end record)"), std::string::npos) << text;
  EXPECT_EQ(LeakReportToJson(report)["totals"]["complete"], false);
}

TEST(LeakReportTest, SchemaCheckerRejectsBadDocuments) {
  testing::JsonSchemaCheck check(LoadSchema());
  nlohmann::json doc = {{"schema", "heapsight-leaks/1"}, {"totals", nlohmann::json::object()}};
  std::vector<std::string> errors = check.Validate(doc);
  EXPECT_FALSE(errors.empty());
  std::string path = testing::WriteSampleTrace("leaks_schema");
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  nlohmann::json good = LeakReportToJson(BuildLeakReport({&*p}, Suppressions()));
  good["groups"][0]["kind"] = "bogus";
  good["groups"][1]["frames"][0]["line"] = "12";
  good["totals"].erase("leaked_bytes");
  EXPECT_EQ(check.Validate(good).size(), 3u);
}

// The sample program's image, replaced by exec (or not, when the exec
// failed) instead of exiting.
std::string WriteExecTrace(const std::string& name, bool exec_fails) {
  testing::TestTraceWriter w(/*pid=*/4343, /*ppid=*/1);
  testing::BuildSampleTrace(w, /*with_end=*/false);
  w.ExecEnd(1, 400, "/bin/ls");
  if (exec_fails) {
    w.ExecFailed(1, 410);
    w.End(1, 420, 0);
  }
  std::string path = ::testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".hst";
  w.WriteFile(path);
  return path;
}

TEST(LeakReportTest, AnImageThatEndedInExecHasNoLeaks) {
  std::string path = WriteExecTrace("exec_ok", /*exec_fails=*/false);
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_TRUE(p->EndedInExec());
  EXPECT_EQ(p->exec_path, "/bin/ls");
  LeakReport report = BuildLeakReport({&*p}, Suppressions());
  EXPECT_TRUE(report.groups.empty());
  EXPECT_EQ(report.totals.leaked.blocks, 0u);
  EXPECT_EQ(report.totals.leaked.bytes, 0u);
  EXPECT_EQ(report.totals.runtime.blocks, 0u);
  // 1000 + 200 + 5000 bytes of the program and 72704 of the runtime.
  EXPECT_EQ(report.totals.discarded_by_exec.bytes, 78904u);
  EXPECT_EQ(report.totals.discarded_by_exec.blocks, 4u);
  LeakKinds all = *ParseLeakKinds("all");
  EXPECT_EQ(CountedLeaks(report, all).blocks, 0u);
  std::string text = FormatLeakText(report);
  EXPECT_NE(text.find("==4343==heapsight: sample_prog ended in exec of /bin/ls: 78904 byte(s) in "
                      "4 block(s) discarded by exec"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("WARNING"), std::string::npos) << text;
  EXPECT_NE(text.find("SUMMARY: heapsight: 0 byte(s) leaked in 0 allocation(s)."),
            std::string::npos);
  nlohmann::json j = LeakReportToJson(report);
  EXPECT_EQ(j["totals"]["leaked_bytes"], 0);
  EXPECT_EQ(j["totals"]["discarded_by_exec_bytes"], 78904);
  EXPECT_EQ(j["processes"][0]["ended_in_exec"], true);
  EXPECT_EQ(j["processes"][0]["exec_path"], "/bin/ls");
  EXPECT_TRUE(testing::JsonSchemaCheck(LoadSchema()).Validate(j).empty());
  EXPECT_EQ(FormatLeakClassSummary(report),
            "leaks: none, the image ended in exec (4 blocks discarded by exec)\n");
}

TEST(LeakReportTest, AFailedExecIsNotTheEnd) {
  std::string path = WriteExecTrace("exec_failed", /*exec_fails=*/true);
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->EndedInExec());
  EXPECT_TRUE(p->complete);
  LeakReport report = BuildLeakReport({&*p}, Suppressions());
  EXPECT_EQ(report.totals.leaked.bytes, 6200u);
  EXPECT_EQ(report.totals.discarded_by_exec.blocks, 0u);
}

TEST(LeakReportTest, NoScanWarningNamesTheRealReason) {
  std::string complete = testing::WriteSampleTrace("noscan_complete");
  std::string cut = testing::WriteSampleTrace("noscan_cut", /*with_end=*/false);
  absl::StatusOr<ProcessProfile> a = AnalyzeTrace(complete);
  absl::StatusOr<ProcessProfile> b = AnalyzeTrace(cut);
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_EQ(NoScanReason(*a), "recorded with HEAPSIGHT_LEAK_SCAN=0");
  EXPECT_EQ(NoScanReason(*b),
            "the trace was cut short before the scan at exit: the process was killed, is still "
            "running, or could not write");
  testing::TestTraceWriter w(/*pid=*/4444, /*ppid=*/1);
  w.EditHeader([](format::FileHeader& h) {
    h.flags |= format::kFileFlagSampled;
    h.sample_period_bytes = 4096;
  });
  testing::BuildSampleTrace(w);
  std::string sampled = ::testing::TempDir() + "/noscan_sampled." + std::to_string(getpid()) + ".hst";
  w.WriteFile(sampled);
  absl::StatusOr<ProcessProfile> c = AnalyzeTrace(sampled);
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(NoScanReason(*c),
            "the trace is sampled (HEAPSIGHT_SAMPLE_BYTES); the preload scans only traces of "
            "every allocation");
  std::string text = FormatLeakText(BuildLeakReport({&*c}, Suppressions()));
  EXPECT_NE(text.find("no reachability scan in this trace (the trace is sampled"),
            std::string::npos)
      << text;
  EXPECT_EQ(text.find("older preload"), std::string::npos) << text;
}

}  // namespace
}  // namespace heapsight::analyzer
