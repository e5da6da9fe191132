// tests/analyzer/output/flamegraph_svg_test.cc: the SVG flame graph is well-formed,
// escapes every name, sizes frames by value and is deterministic.
#include "analyzer/output/flamegraph_svg.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/analyzer/output/xml_checker.h"

namespace heapsight::analyzer::output {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::vector<FoldedStack> Stacks() {
  return {
      {{"main", "std::vector<int, std::allocator<int> >::reserve"}, 300},
      {{"main", "make<A&B>", "operator\"quoted\" 'single'"}, 100},
      {{"main"}, 600},
      {{"other"}, 1000},
  };
}

TEST(XmlCheckerTest, CatchesErrors) {
  EXPECT_EQ(testing::CheckXmlWellFormed("<a><b x=\"1\"/></a>"), "");
  EXPECT_NE(testing::CheckXmlWellFormed("<a><b></a>"), "");
  EXPECT_NE(testing::CheckXmlWellFormed("<a>x < y</a>"), "");
  EXPECT_NE(testing::CheckXmlWellFormed("<a>x & y</a>"), "");
  EXPECT_NE(testing::CheckXmlWellFormed("<a x=\"<\"/>"), "");
  EXPECT_NE(testing::CheckXmlWellFormed("<a x=1/>"), "");
  EXPECT_NE(testing::CheckXmlWellFormed("<a>\xff</a>"), "");
  EXPECT_EQ(testing::CheckXmlWellFormed("<a><![CDATA[ if (a < b && c) ]]></a>"), "");
}

TEST(XmlEscapeTest, EscapesAndRepairs) {
  EXPECT_EQ(XmlEscape("std::vector<int, std::allocator<int> >"),
            "std::vector&lt;int, std::allocator&lt;int&gt; &gt;");
  EXPECT_EQ(XmlEscape("a&b\"c'd"), "a&amp;b&quot;c&apos;d");
  EXPECT_EQ(XmlEscape("tab\tnl\n\x01"), "tab nl  ");
  EXPECT_EQ(XmlEscape("bad\xff\xc0z"), "bad\xEF\xBF\xBD\xEF\xBF\xBDz");
  EXPECT_EQ(XmlEscape("caf\xC3\xA9"), "caf\xC3\xA9");  // valid UTF-8 kept
  EXPECT_EQ(XmlEscape("\xED\xA0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
}

TEST(FlameGraphSvgTest, WellFormedEscapedAndSized) {
  FlameGraphOptions options;
  options.title = "Heap <alloc_bytes> & more";
  options.subtitle = "trace.hst";
  std::string svg = RenderFlameGraphSvg(Stacks(), options);
  EXPECT_EQ(testing::CheckXmlWellFormed(svg), "") << svg;
  EXPECT_THAT(svg, HasSubstr("<text id=\"title\" x=\"600.00\" y=\"24\">Heap &lt;alloc_bytes&gt; "
                             "&amp; more</text>"));
  EXPECT_THAT(svg, HasSubstr("<title>std::vector&lt;int, std::allocator&lt;int&gt; "
                             "&gt;::reserve (300 bytes, 15.00%)</title>"));
  EXPECT_THAT(svg, HasSubstr("<title>make&lt;A&amp;B&gt; (100 bytes, 5.00%)</title>"));
  EXPECT_THAT(svg, HasSubstr("<title>operator&quot;quoted&quot; &apos;single&apos; (100 bytes, "
                             "5.00%)</title>"));
  EXPECT_THAT(svg, HasSubstr("<title>all (2,000 bytes, 100.00%)</title>"));
  EXPECT_THAT(svg, HasSubstr("<title>main (1,000 bytes, 50.00%)</title>"));
  EXPECT_THAT(svg, Not(HasSubstr("<int")));
  // Widths: usable 1180 px for 2000 bytes; main = 590 px at x 10, other
  // after it at x 600; the root spans everything.
  EXPECT_THAT(svg, HasSubstr("data-x=\"0\" data-w=\"2000\" data-d=\"0\">"));
  EXPECT_THAT(svg, HasSubstr("data-x=\"0\" data-w=\"1000\" data-d=\"1\"><title>main"));
  EXPECT_THAT(svg, HasSubstr("data-x=\"1000\" data-w=\"1000\" data-d=\"1\"><title>other"));
  std::smatch m;
  ASSERT_TRUE(std::regex_search(svg, m, std::regex("<title>other [^<]*</title><rect x=\"([0-9.]+)\" "
                                                   "y=\"[0-9.]+\" width=\"([0-9.]+)\"")));
  EXPECT_EQ(m[1], "600.00");
  EXPECT_EQ(m[2], "590.00");
  // The interactive parts are there.
  EXPECT_THAT(svg, HasSubstr("<script type=\"text/ecmascript\"><![CDATA["));
  EXPECT_THAT(svg, HasSubstr("function zoom("));
  EXPECT_THAT(svg, HasSubstr("id=\"unzoom\""));
  EXPECT_THAT(svg, HasSubstr("id=\"search\""));
}

TEST(FlameGraphSvgTest, Deterministic) {
  FlameGraphOptions options;
  std::vector<FoldedStack> reversed = Stacks();
  std::reverse(reversed.begin(), reversed.end());
  EXPECT_EQ(RenderFlameGraphSvg(Stacks(), options), RenderFlameGraphSvg(Stacks(), options));
  // Input order does not matter either.
  EXPECT_EQ(RenderFlameGraphSvg(Stacks(), options), RenderFlameGraphSvg(reversed, options));
}

TEST(FlameGraphSvgTest, EmptyGarbageAndDeepInputs) {
  FlameGraphOptions options;
  std::string empty = RenderFlameGraphSvg({}, options);
  EXPECT_EQ(testing::CheckXmlWellFormed(empty), "");
  EXPECT_THAT(empty, HasSubstr("No data"));
  std::string negative = RenderFlameGraphSvg({{{"a"}, -5}, {{"b"}, 0}}, options);
  EXPECT_THAT(negative, HasSubstr("No data"));

  std::string garbage;
  for (int c = 0; c < 256; ++c) garbage.push_back(static_cast<char>(c));
  std::string svg = RenderFlameGraphSvg({{{garbage, "]]>", "<!--"}, 7}}, options);
  EXPECT_EQ(testing::CheckXmlWellFormed(svg), "");

  FoldedStack deep;
  for (int i = 0; i < 20000; ++i) deep.frames.push_back("f" + std::to_string(i % 7));
  deep.value = 1;
  std::string deep_svg = RenderFlameGraphSvg({deep}, options);
  EXPECT_EQ(testing::CheckXmlWellFormed(deep_svg), "");

  // Huge values do not overflow into garbage.
  std::string big = RenderFlameGraphSvg({{{"a"}, INT64_MAX}, {{"b"}, INT64_MAX}}, options);
  EXPECT_EQ(testing::CheckXmlWellFormed(big), "");
}

TEST(FlameGraphSvgTest, TinyFramesAreLeftOut) {
  FlameGraphOptions options;
  std::string svg = RenderFlameGraphSvg({{{"big"}, 1000000}, {{"tiny"}, 1}}, options);
  EXPECT_THAT(svg, HasSubstr("<title>big "));
  EXPECT_THAT(svg, Not(HasSubstr("<title>tiny ")));
}

// `node` on PATH, or "".
std::string FindNode() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path != nullptr ? path : "");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && access((dir + "/node").c_str(), X_OK) == 0) return dir + "/node";
  }
  return "";
}

std::string RunCommand(const std::string& command) {
  std::string out;
  if (std::FILE* p = popen(command.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
  }
  return out;
}

// Runs the embedded script in node against a small DOM built from the SVG
// (tests/analyzer/output/flamegraph_script_check.js): click-to-zoom, search, reset.
TEST(FlameGraphSvgTest, ScriptZoomsSearchesAndResets) {
  std::string node = FindNode();
  if (node.empty()) GTEST_SKIP() << "node not found on PATH; the script check needs it";
  const char* tmp = std::getenv("TMPDIR");
  std::string svg_path = std::string(tmp != nullptr && *tmp ? tmp : "/tmp") + "/heapsight_fg_" +
                         std::to_string(getpid()) + ".svg";
  std::ofstream(svg_path) << RenderFlameGraphSvg(Stacks(), FlameGraphOptions{});
  std::string out = RunCommand(node + " " HEAPSIGHT_SOURCE_ROOT
                               "/tests/analyzer/output/flamegraph_script_check.js " + svg_path +
                               " click:main 'search:make|vector' unzoom: 2>&1");
  std::remove(svg_path.c_str());
  // Zoomed into main: main fills the width, its children scale by 1180/1000,
  // "other" is hidden, the root is a faded full-width ancestor.
  EXPECT_THAT(out, HasSubstr("== click:main\n"
                             "all x=10.00 width=1180.00 display=- opacity=0.5 "
                             "fill=rgb(200,200,200) label=all\n"
                             "main x=10.00 width=1180.00 display=- opacity=- "));
  EXPECT_THAT(out, HasSubstr("make<A&B> x=10.00 width=118.00 display=- opacity=- "));
  EXPECT_THAT(out, HasSubstr("operator\"quoted\" 'single' x=10.00 width=118.00 display=- "));
  EXPECT_THAT(out, HasSubstr("std::vector<int, std::allocator<int> >::reserve x=128.00 "
                             "width=354.00 display=- opacity=- "));
  EXPECT_THAT(out, ::testing::ContainsRegex("== click:main\n(.*\n)*other x=[0-9.]+ width=[0-9.]+ "
                                            "display=none "));
  // Search marks make<A&B> and the vector frame: 400 of 2000 bytes.
  EXPECT_THAT(out, HasSubstr("make<A&B> x=10.00 width=118.00 display=- opacity=- "
                             "fill=rgb(230,0,230)"));
  EXPECT_THAT(out, HasSubstr("matched=Matched: 20.00% (400 bytes)\n== unzoom:"));
  // Reset: back to the original layout.
  size_t reset = out.find("== unzoom:");
  ASSERT_NE(reset, std::string::npos) << out;
  std::string after = out.substr(reset);
  EXPECT_THAT(after, HasSubstr("\nmain x=10.00 width=590.00 display=- opacity=- "));
  EXPECT_THAT(after, HasSubstr("\nother x=600.00 width=590.00 display=- opacity=- "));
  EXPECT_THAT(out, Not(HasSubstr("ALERT"))) << out;
  EXPECT_THAT(out, Not(HasSubstr("Error"))) << out;
}

}  // namespace
}  // namespace heapsight::analyzer::output
