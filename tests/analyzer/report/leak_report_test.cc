// tests/analyzer/report/leak_report_test.cc: leak groups, LSan-shaped text (golden),
// JSON checked against docs/leak-report.schema.json, suppressions.
#include "analyzer/report/leak_report.h"

#include <fstream>
#include <sstream>

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

}  // namespace
}  // namespace heapsight::analyzer
