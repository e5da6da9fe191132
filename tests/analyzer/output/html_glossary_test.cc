// tests/analyzer/output/html_glossary_test.cc: the HTML page's definitions
// (html_glossary.h) are quoted word for word from docs/glossary.md, so the
// page and the glossary cannot drift apart.
#include "analyzer/output/html_glossary.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "analyzer/output/html_report.h"

namespace heapsight::analyzer::output {
namespace {

std::string ReadGlossary() {
  std::ifstream in(std::string(HEAPSIGHT_SOURCE_ROOT) + "/docs/glossary.md");
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// The glossary as plain text: no emphasis or code quotes, one space
// between words.
std::string Plain(const std::string& markdown) {
  std::string out;
  for (char c : markdown) {
    if (c == '*' || c == '`') continue;
    if (c == '\n' || c == ' ') {
      if (!out.empty() && out.back() != ' ') out += ' ';
      continue;
    }
    out += c;
  }
  return out;
}

TEST(HtmlGlossaryTest, EveryQuoteIsInTheGlossary) {
  const std::string markdown = ReadGlossary();
  ASSERT_FALSE(markdown.empty()) << "docs/glossary.md not found";
  const std::string plain = Plain(markdown);
  for (const GlossaryEntry& e : HtmlGlossary()) {
    std::string term = e.term;
    EXPECT_TRUE(markdown.find("**" + term + "**") != std::string::npos ||
                markdown.find("*" + term + "*") != std::string::npos ||
                markdown.find("## " + term + "\n") != std::string::npos)
        << "docs/glossary.md does not define \"" << term << "\"";
    ASSERT_NE(e.quotes[0], nullptr) << term;
    for (const char* q : e.quotes) {
      if (q == nullptr) break;
      EXPECT_NE(plain.find(q), std::string::npos)
          << "the page's definition of \"" << term << "\" is not in docs/glossary.md: " << q;
    }
  }
}

TEST(HtmlGlossaryTest, DefinitionsJoinTheQuotesAsSentences) {
  EXPECT_EQ(GlossaryDefinition("frees"), "blocks released (free, delete, realloc's old block).");
  EXPECT_EQ(GlossaryDefinition("definitely lost"), "no pointer to the block anywhere.");
  EXPECT_EQ(GlossaryDefinition("no such term"), "");
}

TEST(HtmlGlossaryTest, ThePageShowsEveryDefinition) {
  HtmlReportOptions options;
  std::string page = RenderHtmlReport(std::vector<HtmlProcess>{}, options);
  for (const GlossaryEntry& e : HtmlGlossary()) {
    std::string dd = GlossaryDefinition(e.key);
    // As the page escapes it.
    std::string escaped;
    for (char c : dd) {
      if (c == '"') escaped += "&quot;";
      else if (c == '\'') escaped += "&apos;";
      else if (c == '&') escaped += "&amp;";
      else escaped += c;
    }
    EXPECT_NE(page.find(escaped), std::string::npos) << e.key;
  }
}

}  // namespace
}  // namespace heapsight::analyzer::output
