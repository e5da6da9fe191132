// tests/analyzer/output/html_timeline_test.cc: the HTML heap chart
// (html_timeline.h) on hand-made profiles: the exact step path of a
// two-phase heap, a spike inside one pixel column that must not be lost,
// round axis ticks with units, and hostile marker names escaped in
// well-formed markup. (tests/browser/ checks the drawn page in Chromium.)
#include "analyzer/output/html_timeline.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "absl/strings/match.h"
#include "tests/analyzer/output/xml_checker.h"

namespace heapsight::analyzer::output {
namespace {

using ::heapsight::testing::CheckXmlWellFormed;

// The `d` of the path with class `cls` ("" if none).
std::string PathOf(const std::string& svg, const std::string& cls) {
  std::smatch m;
  std::regex re("<path class=\"" + cls + "\"[^>]* d=\"([^\"]*)\"");
  return std::regex_search(svg, m, re) ? m[1].str() : "";
}

// A profile whose heap changes at the given (time, bytes-after) points.
ProcessProfile Profile(const std::vector<std::pair<uint64_t, uint64_t>>& changes,
                       uint64_t end_us) {
  ProcessProfile p;
  HeapTimelineBuilder b(end_us);
  for (const auto& [t, v] : changes) {
    b.Observe(t, v);
    if (v > p.totals.peak_bytes) {
      p.totals.peak_bytes = v;
      p.totals.peak_time_us = t;
    }
  }
  p.heap_series = b.Finish(end_us);
  p.duration_us = end_us;
  return p;
}

TEST(HtmlTimelineTest, TwoPhasesAreExactSteps) {
  ProcessProfile p = Profile({{100, 10}, {500, 30}, {900, 0}}, 1000);
  std::string html = RenderHeapChart(p, "p0");
  // x = 80 + 900 t / 1000; y = 24 + 240 (1 - v / 30): the axis tops at 30 B.
  EXPECT_EQ(PathOf(html, "heap-line"),
            "M80.00,264.00H170.00V184.00H530.00V24.00H890.00V264.00H980.00");
  EXPECT_EQ(CheckXmlWellFormed(html.substr(html.find("<svg"),
                                           html.find("</svg>") + 6 - html.find("<svg"))),
            "");
  EXPECT_TRUE(absl::StrContains(html, "<g class=\"peak\" data-bytes=\"30\" data-time-us=\"500\">"));
  EXPECT_TRUE(absl::StrContains(html, "<circle cx=\"530.00\" cy=\"24.00\""));
  // Ticks: 0, 10, 20, 30 B and 0..1000 us by 200 (no RSS: no toggle).
  for (const char* label : {">0 B<", ">10 B<", ">20 B<", ">30 B<", ">0 us<", ">1000 us<"}) {
    EXPECT_TRUE(absl::StrContains(html, label)) << label;
  }
  EXPECT_FALSE(absl::StrContains(html, "rss-toggle"));
  EXPECT_TRUE(absl::StrContains(html, "RSS was not sampled"));
}

TEST(HtmlTimelineTest, ASpikeInsideOnePixelIsDrawn) {
  // 10,000 changes over 1 s, 1 MB flat but for one 1 us spike to 5 MB at
  // 777,777 us: 900 columns of ~1.1 ms each.
  std::vector<std::pair<uint64_t, uint64_t>> changes;
  for (uint64_t t = 0; t < 1'000'000; t += 100) {
    changes.push_back({t, 1'000'000});
    if (t == 777'700) {
      changes.push_back({777'777, 5'000'000});
      changes.push_back({777'778, 1'000'000});
    }
  }
  ProcessProfile p = Profile(changes, 1'000'000);
  std::string d = PathOf(RenderHeapChart(p, "p0"), "heap-line");
  // The axis tops at 5 MiB (5,242,880): 1 MB is at y = 24 + 240 (1 -
  // 1e6 / 5242880), the spike at y = 24 + 240 (1 - 5e6 / 5242880), at x = 80
  // + 900 * 0.777777; the columns of changes that keep the level add
  // nothing.
  EXPECT_EQ(d, "M80.00,264.00H80.00V218.22H780.00V35.12V218.22H980.00");
}

TEST(HtmlTimelineTest, TicksAreRoundWithUnits) {
  AxisTicks b = ByteTicks(30'000'000);
  EXPECT_EQ(b.unit_name, "MiB");
  EXPECT_EQ(b.step, 10);
  EXPECT_EQ(b.top, 30);
  EXPECT_EQ(TickLabel(20, b), "20 MiB");
  AxisTicks k = ByteTicks(1'000'000);
  EXPECT_EQ(k.unit_name, "KiB");
  EXPECT_EQ(k.step, 200);
  EXPECT_EQ(k.top, 1000);
  AxisTicks z = ByteTicks(0);
  EXPECT_EQ(z.unit_name, "B");
  EXPECT_EQ(z.top, 1);
  AxisTicks small = ByteTicks(1536);
  EXPECT_EQ(small.unit_name, "KiB");
  EXPECT_EQ(small.step, 0.5);
  EXPECT_EQ(small.top, 1.5);
  EXPECT_EQ(TickLabel(1.5, small), "1.5 KiB");
  AxisTicks t = TimeTicks(728'000);
  EXPECT_EQ(t.unit_name, "ms");
  EXPECT_EQ(t.step, 100);
  EXPECT_EQ(t.top, 700);
  EXPECT_EQ(TickLabel(300, t), "300 ms");
  AxisTicks s = TimeTicks(12'345'678);
  EXPECT_EQ(s.unit_name, "s");
  EXPECT_EQ(s.step, 2);
  EXPECT_EQ(s.top, 12);
}

TEST(HtmlTimelineTest, HostileMarkerNamesAreEscapedAndRssIsLabelled) {
  ProcessProfile p = Profile({{10, 100}, {20, 0}}, 30);
  p.markers.push_back({15, "<script>alert(\"x\")</script>&'", 100, 1});
  p.rss_timeline = {{0, 4096}, {25, 8192}};
  std::string html = RenderHeapChart(p, "p7");
  EXPECT_FALSE(absl::StrContains(html, "<script"));
  EXPECT_TRUE(absl::StrContains(
      html, "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&apos;"));
  EXPECT_TRUE(absl::StrContains(
      html, "<input type=\"checkbox\" class=\"rss-toggle\" id=\"rss-p7\"/><label for=\"rss-p7\"> "
            "show RSS (includes heapsight&apos;s own memory)</label>"));
  EXPECT_TRUE(absl::StrContains(html, "<g class=\"rss\">"));
  EXPECT_EQ(PathOf(html, "rss-line"), "M80.00,144.00H830.00V24.00H980.00");
  size_t svg = html.find("<svg");
  EXPECT_EQ(CheckXmlWellFormed(html.substr(svg, html.find("</svg>") + 6 - svg)), "");
}

TEST(HtmlTimelineTest, NoChangeNoChart) {
  ProcessProfile p;
  p.duration_us = 100;
  EXPECT_TRUE(absl::StrContains(RenderHeapChart(p, "p0"), "nothing to chart"));
}

}  // namespace
}  // namespace heapsight::analyzer::output
