// tests/cli/record/option_table_test.cc: the analyzer's view of
// preload/options.inc: name lookup, --option parsing and the generated text.
#include "cli/record/option_table.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace heapsight::record {
namespace {

using ::testing::HasSubstr;
using ::testing::Pair;

TEST(OptionTable, HasTheRowsTheRecordCommandRelies) {
  ASSERT_NE(FindOption("OUTPUT"), nullptr);
  ASSERT_NE(FindOption("MANIFEST"), nullptr);
  ASSERT_NE(FindOption("QUIET"), nullptr);
  for (const OptionRow& row : OptionRows()) {
    EXPECT_TRUE(row.type == "String" || row.type == "Int" || row.type == "Bool") << row.name;
    EXPECT_FALSE(row.description.empty()) << row.name;
  }
}

TEST(OptionTable, NamesAreFoundInAnySpelling) {
  const OptionRow* row = FindOption("MAX_DEPTH");
  ASSERT_NE(row, nullptr);
  EXPECT_EQ(FindOption("max-depth"), row);
  EXPECT_EQ(FindOption("heapsight_max_depth"), row);
  EXPECT_EQ(EnvName(*row), "HEAPSIGHT_MAX_DEPTH");
  EXPECT_EQ(FindOption("no-such"), nullptr);
}

TEST(OptionTable, ParsesAssignmentsByType) {
  EXPECT_THAT(*ParseOptionAssignment("max-depth=12"), Pair("HEAPSIGHT_MAX_DEPTH", "12"));
  EXPECT_THAT(*ParseOptionAssignment("quiet=true"), Pair("HEAPSIGHT_QUIET", "1"));
  EXPECT_THAT(*ParseOptionAssignment("QUIET=off"), Pair("HEAPSIGHT_QUIET", "0"));
  EXPECT_THAT(*ParseOptionAssignment("unwind=fp"), Pair("HEAPSIGHT_UNWIND", "fp"));
  // Values the preload would refuse (and replace by the default) are refused here.
  EXPECT_FALSE(ParseOptionAssignment("unwind=").ok());
  EXPECT_FALSE(ParseOptionAssignment("max-depth=0").ok());
  EXPECT_FALSE(ParseOptionAssignment("max-depth=257").ok());
  EXPECT_THAT(*ParseOptionAssignment("max-depth=256"), Pair("HEAPSIGHT_MAX_DEPTH", "256"));
  EXPECT_THAT(*ParseOptionAssignment("zstd-level=0"), Pair("HEAPSIGHT_ZSTD_LEVEL", "0"));
  EXPECT_FALSE(ParseOptionAssignment("on-bad-free=ignore").ok());
  EXPECT_FALSE(ParseOptionAssignment("max-depth=x").ok());
  EXPECT_FALSE(ParseOptionAssignment("quiet=maybe").ok());
  EXPECT_FALSE(ParseOptionAssignment("max-depth").ok());
  EXPECT_FALSE(ParseOptionAssignment("=3").ok());
  EXPECT_THAT(std::string(ParseOptionAssignment("bogus=1").status().message()),
              HasSubstr("unknown option 'bogus'"));
}

TEST(OptionTable, TextAndMarkdownHaveEveryRow) {
  std::string text = OptionsText(), markdown = OptionsMarkdown();
  for (const OptionRow& row : OptionRows()) {
    EXPECT_THAT(text, HasSubstr(EnvName(row)));
    EXPECT_THAT(markdown, HasSubstr("| `" + EnvName(row) + "` | " + std::string(row.type)));
  }
  EXPECT_THAT(markdown, HasSubstr("| `HEAPSIGHT_MAX_DEPTH` | Int | `256` |"));
  EXPECT_THAT(markdown, HasSubstr("| `HEAPSIGHT_MANIFEST` | String | `(empty)` |"));
}

}  // namespace
}  // namespace heapsight::record
