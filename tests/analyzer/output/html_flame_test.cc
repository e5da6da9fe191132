// tests/analyzer/output/html_flame_test.cc: the call-site views' data
// (html_flame.h): JSON strings that cannot end the <script> element they
// sit in, the varints the page decodes, and the per-metric totals of a
// hand-made profile. The browser test (tests/browser/) checks the drawn
// page against `heapsight report --format=json` on real traces.
#include "analyzer/output/html_flame.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace heapsight::analyzer::output {
namespace {

// The page's decoder (html_flame_script.cc's varints()), in C++.
std::vector<uint64_t> Varints(const std::string& s) {
  std::vector<uint64_t> out;
  uint64_t v = 0;
  int shift = 0;
  for (char c : s) {
    int d = c >= 'a' ? c - 'a' + 26 : c == '_' ? 63 : c >= 'A' ? c - 'A' : c >= '0' ? c - '0' + 52 : 62;
    v |= static_cast<uint64_t>(d & 31) << shift;
    if (d & 32) {
      shift += 5;
      continue;
    }
    out.push_back(v);
    v = 0;
    shift = 0;
  }
  return out;
}

TEST(HtmlFlameTest, JsonStringsCannotCloseTheScript) {
  EXPECT_EQ(HtmlJsonString("a</script><!--&'\"\\"),
            "\"a\\u003c/script\\u003e\\u003c!--\\u0026\\u0027\\u0022\\u005c\"");
  // Control characters, the JavaScript line separators, invalid UTF-8.
  EXPECT_EQ(HtmlJsonString("\n\x01\xe2\x80\xa8\xe2\x80\xa9"),
            "\"\\u000a\\u0001\\u2028\\u2029\"");
  EXPECT_EQ(HtmlJsonString("x\xff\xc0\xafy"), "\"x\\ufffd\\ufffd\\ufffdy\"");
  EXPECT_EQ(HtmlJsonString("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\"");  // a surrogate
  // Valid multi-byte characters stay as they are.
  EXPECT_EQ(HtmlJsonString("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"),
            "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"");
}

TEST(HtmlFlameTest, VarintsRoundTrip) {
  const std::vector<uint64_t> values = {0,     1,          31,         32,
                                        1023,  1024,       123456789,  (1ull << 53) - 1,
                                        4096,  0xffffffff, 9007199254740991ull};
  std::string s;
  for (uint64_t v : values) AppendVarint(s, v);
  EXPECT_EQ(Varints(s), values);
  std::string one;
  AppendVarint(one, 31);
  EXPECT_EQ(one, "f");  // one digit below 32
  std::string two;
  AppendVarint(two, 32);
  EXPECT_EQ(two, "gB");  // 0 | 32, then 1
  for (char c : s) EXPECT_TRUE(absl::ascii_isalnum(c) || c == '-' || c == '_') << c;
}

TEST(HtmlFlameTest, MetricTotalsAreTheSites) {
  ProcessProfile p;  // no symbolizer: every stack is the empty one (node -1)
  Site a;
  a.stack = 7;
  a.stats.alloc_count = 3;
  a.stats.alloc_bytes = 300;
  a.stats.peak_count = 1;
  a.stats.peak_bytes = 100;
  a.stats.temporary_count = 2;
  a.stats.temporary_bytes = 200;
  Site b = a;
  b.stack = 9;
  b.stats.leaked_count = 1;
  b.stats.leaked_bytes = 100;
  Site runtime = a;
  runtime.kind = SiteKind::kRuntime;  // left out, as by every report
  p.sites = {a, b, runtime};
  p.totals.temporary_known = true;
  HtmlLeaks leaks;
  leaks.known = true;
  leaks.classes[LeakClass::kDefinite] = {100, 1};
  leaks.groups.push_back({LeakClass::kDefinite, {100, 1}, format::Api::kMalloc, 9});
  std::string json = FlameData(p, leaks);
  for (const char* want :
       {"\"key\":\"alloc_bytes\",\"label\":\"bytes allocated\",\"unit\":\"bytes\",\"total\":600,",
        "\"key\":\"alloc_count\",\"label\":\"allocations\",\"unit\":\"allocations\",\"total\":6,",
        "\"key\":\"peak_bytes\",\"label\":\"bytes live at the peak\",\"unit\":\"bytes\","
        "\"total\":200,",
        "\"key\":\"not_freed_bytes\",\"label\":\"bytes not freed at exit\",\"unit\":\"bytes\","
        "\"total\":100,",
        "\"key\":\"temporary_count\",\"label\":\"temporary allocations\",\"unit\":"
        "\"allocations\",\"total\":4,",
        "\"key\":\"definite_bytes\",\"label\":\"leaks: definitely lost bytes\",\"unit\":"
        "\"bytes\",\"total\":100,\"v\":\"AkD\"}"}) {
    EXPECT_TRUE(absl::StrContains(json, want)) << want << "\n" << json;
  }
  // Both sites on node -1: one pair, (distance 0 from -1, 600).
  std::string pair;
  AppendVarint(pair, 0);
  AppendVarint(pair, 600);
  EXPECT_TRUE(absl::StrContains(json, "\"total\":600,\"v\":\"" + pair + "\"")) << json;
  // A sampled trace has no temporary metrics.
  p.totals.temporary_known = false;
  EXPECT_FALSE(absl::StrContains(FlameData(p, leaks), "temporary_count"));
}

// The per-site series (site_timeline.h) for the chart's selection: each
// kept program site's buckets on its node, "other" apart, as (bucket number
// - previous, live, allocated) varints; in a sampled trace each kept
// site's bytes scaled by its estimate / sampled ratio, "other" by the ratio
// of the sites not kept.
TEST(HtmlFlameTest, SiteSeriesForTheSelection) {
  ProcessProfile p;  // no symbolizer: every stack is the empty one (node -1)
  Site a;
  a.stack = 7;
  a.stats.alloc_count = 1;
  a.stats.alloc_bytes = 100;
  Site runtime = a;
  runtime.kind = SiteKind::kRuntime;
  p.sites = {a, runtime};
  p.duration_us = 40;
  p.site_series.bucket_us = 8;
  p.site_series.end_us = 40;
  p.site_series.sites = {SiteSeries{0, {{8, 100, 100}, {32, 0, 0}}},
                         SiteSeries{1, {{0, 5, 5}}}};  // runtime: left out
  p.site_series.other = {{16, 3, 3}};
  std::string json = FlameData(p, HtmlLeaks{});
  std::string site;
  for (uint64_t v : {2, 100, 100, 3, 0, 0}) AppendVarint(site, v);  // buckets 1 and 4
  std::string other;
  for (uint64_t v : {3, 3, 3}) AppendVarint(other, v);  // bucket 2
  EXPECT_TRUE(absl::StrContains(json, "\"series\":{\"w\":8,\"end\":40,\"other\":\"" + other +
                                          "\",\"sites\":[[-1,\"" + site + "\"]]}"))
      << json;
  // Sampled: site a sampled 100 bytes estimated at 250 (x2.5); a second
  // program site, not kept, sampled 10 estimated at 40 (x4) scales "other".
  p.totals.estimated = true;
  p.sites[0].stats.alloc_bytes_estimate = 250;
  Site unkept = a;
  unkept.stack = 8;
  unkept.stats.alloc_bytes = 10;
  unkept.stats.alloc_bytes_estimate = 40;
  p.sites.push_back(unkept);
  json = FlameData(p, HtmlLeaks{});
  site.clear();
  for (uint64_t v : {2, 250, 250, 3, 0, 0}) AppendVarint(site, v);
  other.clear();
  for (uint64_t v : {3, 12, 12}) AppendVarint(other, v);
  EXPECT_TRUE(absl::StrContains(json, "\"series\":{\"w\":8,\"end\":40,\"other\":\"" + other +
                                          "\",\"sites\":[[-1,\"" + site + "\"]]}"))
      << json;
}

}  // namespace
}  // namespace heapsight::analyzer::output
