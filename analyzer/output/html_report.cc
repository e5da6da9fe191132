// analyzer/output/html_report.cc: see html_report.h.
#include "analyzer/output/html_report.h"

#include <algorithm>
#include <functional>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analyzer/model/site_ranking.h"
#include "analyzer/output/flamegraph_svg.h"
#include "analyzer/output/folded_stacks.h"
#include "analyzer/output/site_metric.h"
#include "analyzer/output/stack_text.h"
#include "analyzer/output/text_util.h"
#include "analyzer/output/totals_text.h"
#include "format/trace_format.h"

namespace heapsight::analyzer::output {
namespace {

constexpr char kStyle[] = R"(
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.5em 0; }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; vertical-align: top; }
th { background: #f0f0f0; text-align: left; }
td.n { text-align: right; white-space: nowrap; font-variant-numeric: tabular-nums; }
td.s { font-family: monospace; font-size: 0.9em; }
.note { color: #666; }
)";

std::string E(std::string_view text) { return XmlEscape(text); }

// A call stack cell: the program's own frames first, the standard library's
// allocation plumbing (std::allocator, std::vector's growth, operator new)
// folded away, and the whole stack one click away.
std::string StackCell(const ProcessProfile& p, uint64_t stack, size_t max_frames) {
  StackText st = DescribeFrames(p, stack);
  if (st.frames.empty()) return "(no stack)";
  std::string out = "<b>";
  size_t shown = 0;
  for (size_t i = st.first_own; i < st.frames.size() && shown < max_frames; ++i, ++shown) {
    if (shown != 0) out += " &lt;- ";
    out += E(st.frames[i]);
  }
  out += "</b>";
  if (st.first_own + shown < st.frames.size()) {
    absl::StrAppend(&out, " &lt;- ... (", st.frames.size() - st.first_own - shown, " more)");
  }
  if (st.first_own != 0) {
    absl::StrAppend(&out, " <span class=\"note\">(below ", st.first_own,
                    st.first_own == 1 ? " library frame" : " library frames", ")</span>");
  }
  absl::StrAppend(&out, "<details><summary>all ", st.frames.size(), " frames</summary>");
  for (const std::string& f : st.frames) absl::StrAppend(&out, E(f), "<br/>");
  return out + "</details>";
}

void Row(std::string& out, std::string_view label, const std::string& value) {
  absl::StrAppend(&out, "<tr><th>", E(label), "</th><td class=\"n\">", E(value), "</td></tr>\n");
}

void SiteTable(std::string& out, const ProcessProfile& p, const HtmlReportOptions& options,
               std::string_view title, std::string_view bytes_header, std::string_view count_header,
               const std::function<uint64_t(const SiteStats&)>& bytes,
               const std::function<uint64_t(const SiteStats&)>& count) {
  absl::StrAppend(&out, "<h2>", E(title), "</h2>\n");
  std::vector<const Site*> sites = RankSites(p, options.top, bytes);
  if (sites.empty()) {
    absl::StrAppend(&out, "<p class=\"note\">none</p>\n");
    return;
  }
  absl::StrAppend(&out, "<table><tr><th>", E(bytes_header), "</th><th>", E(count_header),
                  "</th><th>API</th><th>call stack (innermost first)</th></tr>\n");
  for (const Site* s : sites) {
    const char* api = format::ApiName(s->api);
    absl::StrAppend(&out, "<tr><td class=\"n\">", E(Thousands(bytes(s->stats))),
                    "</td><td class=\"n\">", E(Thousands(count(s->stats))), "</td><td>",
                    E(api != nullptr ? api : "?"), "</td><td class=\"s\">",
                    StackCell(p, s->stack, options.frames), "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table>\n");
}

// Live heap bytes (and RSS) over time as an SVG line chart.
void TimelineChart(std::string& out, const ProcessProfile& p) {
  absl::StrAppend(&out, "<h2>Heap over time</h2>\n");
  if (p.heap_timeline.size() < 2 || p.duration_us == 0) {
    absl::StrAppend(&out, "<p class=\"note\">too short to chart</p>\n");
    return;
  }
  constexpr double kWidth = 900, kHeight = 220, kLeft = 10, kTop = 10;
  uint64_t max_value = 1;
  for (const TimePoint& t : p.heap_timeline) max_value = std::max(max_value, t.value);
  for (const TimePoint& t : p.rss_timeline) max_value = std::max(max_value, t.value);
  auto points = [&](const std::vector<TimePoint>& series) {
    std::string pts;
    for (const TimePoint& t : series) {
      double x = kLeft + kWidth * static_cast<double>(std::min(t.time_us, p.duration_us)) /
                             static_cast<double>(p.duration_us);
      double y = kTop + kHeight * (1.0 - static_cast<double>(t.value) / static_cast<double>(max_value));
      absl::StrAppendFormat(&pts, "%.1f,%.1f ", x, y);
    }
    return pts;
  };
  absl::StrAppendFormat(&out,
                        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
                        "role=\"img\">\n",
                        kWidth + 2 * kLeft, kHeight + 2 * kTop + 20);
  absl::StrAppendFormat(&out,
                        "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#fafafa\" "
                        "stroke=\"#ccc\"/>\n",
                        kLeft, kTop, kWidth, kHeight);
  if (p.rss_timeline.size() >= 2) {
    absl::StrAppend(&out, "<polyline fill=\"none\" stroke=\"#999\" stroke-width=\"1\" points=\"",
                    points(p.rss_timeline), "\"/>\n");
  }
  absl::StrAppend(&out, "<polyline fill=\"none\" stroke=\"#1f62b4\" stroke-width=\"1.5\" points=\"",
                  points(p.heap_timeline), "\"/>\n");
  absl::StrAppendFormat(&out, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\">0</text>\n", kLeft,
                        kTop + kHeight + 16);
  absl::StrAppendFormat(&out,
                        "<text x=\"%.0f\" y=\"%.0f\" font-size=\"12\" text-anchor=\"end\">%s</text>\n",
                        kLeft + kWidth, kTop + kHeight + 16, E(Seconds(p.duration_us, ResolutionOf(p.header.flags))));
  absl::StrAppend(&out, "</svg>\n<p class=\"note\">Blue: live heap (top of the chart: ",
                  E(Bytes(max_value)), "); grey: resident set size",
                  p.rss_timeline.size() >= 2 ? "" : " (not sampled)", ".</p>\n");
}

void GrowthTable(std::string& out, const ProcessProfile& p, const HtmlReportOptions& options) {
  absl::StrAppend(&out, "<h2>Call sites whose memory keeps growing</h2>\n");
  if (p.growth.empty()) {
    absl::StrAppend(&out, "<p class=\"note\">not analyzed</p>\n");
    return;
  }
  GrowthCriteria g;
  g.top = options.top;
  std::vector<GrowingSite> ranked = RankGrowth(p, g);
  absl::StrAppend(&out, "<p class=\"note\">From ", E(Seconds(p.growth_window_begin_us, ResolutionOf(p.header.flags))), " to ",
                  E(Seconds(p.growth_window_end_us, ResolutionOf(p.header.flags))),
                  ": each site's live bytes fitted by a line (fit: r^2, 1 = steady "
                  "growth).</p>\n");
  if (ranked.empty()) {
    absl::StrAppend(&out, "<p class=\"note\">none grew</p>\n");
    return;
  }
  absl::StrAppend(&out, "<table><tr><th>bytes/s</th><th>fit</th><th>live at start</th>"
                        "<th>most live</th><th>live at end</th><th>call stack</th></tr>\n");
  for (const GrowingSite& gs : ranked) {
    absl::StrAppendFormat(&out,
                          "<tr><td class=\"n\">%s</td><td class=\"n\">%.2f</td><td class=\"n\">%s"
                          "</td><td class=\"n\">%s</td><td class=\"n\">%s</td><td class=\"s\">%s"
                          "</td></tr>\n",
                          E(Thousands(static_cast<uint64_t>(gs.growth.bytes_per_second))),
                          gs.growth.fit,
                          E(Thousands(gs.growth.live_at_begin)), E(Thousands(gs.growth.live_max)),
                          E(Thousands(gs.growth.live_at_end)),
                          StackCell(p, p.sites[gs.site].stack, options.frames));
  }
  absl::StrAppend(&out, "</table>\n");
}

void FlameGraph(std::string& out, const HeapProfile& profile) {
  absl::StrAppend(&out, "<h2>Flame graph: bytes allocated</h2>\n");
  std::vector<FoldedStack> stacks = CollapseProfile(profile, SiteMetric::kAllocBytes);
  FlameGraphOptions options;
  options.title = "bytes allocated";
  options.subtitle = "click a frame to zoom, the root to reset";
  std::string svg = RenderFlameGraphSvg(stacks, options);
  // A data URL gives the graph its own document, where its script expects
  // to run (it takes the SVG root as document.documentElement).
  // The object takes the graph's own height (its <svg> tag says it), so
  // the page scrolls instead of the graph.
  std::string height = "600";
  if (size_t tag = svg.find("<svg"); tag != std::string::npos) {
    constexpr std::string_view kHeight = " height=\"";
    size_t at = svg.find(kHeight, tag);
    size_t end = at == std::string::npos ? at : svg.find('"', at + kHeight.size());
    if (end != std::string::npos && end - (at + kHeight.size()) <= 7) {
      height = svg.substr(at + kHeight.size(), end - (at + kHeight.size()));
    }
  }
  absl::StrAppend(&out, "<object type=\"image/svg+xml\" width=\"100%\" height=\"", E(height),
                  "\" data=\"data:image/svg+xml;base64,", absl::Base64Escape(svg),
                  "\">flame graph (needs SVG)</object>\n");
}

}  // namespace

std::string RenderHtmlReport(const ProcessProfile& p, const HeapProfile& profile,
                             const HtmlReportOptions& options) {
  std::string command = p.exe.empty() ? "(unknown program)" : p.exe;
  for (size_t i = 1; i < p.argv.size(); ++i) absl::StrAppend(&command, " ", p.argv[i]);
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\n";
  absl::StrAppend(&out, "<title>heapsight: ", E(command), "</title>\n<style>", kStyle,
                  "</style></head>\n<body>\n");
  absl::StrAppend(&out, "<h1>heapsight: ", E(command), "</h1>\n");
  absl::StrAppend(&out, "<p class=\"note\">trace ", E(p.trace_path), ", process ", p.pid,
                  " (parent ", p.ppid, "), ", E(p.complete ? "complete" : "cut short"), ", ",
                  E(Seconds(p.duration_us, ResolutionOf(p.header.flags))), ", ", p.threads, p.threads == 1 ? " thread" : " threads",
                  "</p>\n");
  // The totals every command prints (trace_model.h, docs/glossary.md),
  // marked as estimates in a sampled trace (totals_text.h).
  const Totals& t = p.totals;
  if (t.estimated) absl::StrAppend(&out, "<p class=\"note\">", E(EstimateNote(t)), "</p>\n");
  absl::StrAppend(&out, "<h2>Summary</h2>\n<table>\n");
  Row(out, "allocations", TotalCount(t, t.allocs, static_cast<int64_t>(t.allocs_error)));
  Row(out, "frees", TotalCount(t, t.frees));
  Row(out, "bytes allocated",
      TotalBytes(t, t.bytes_allocated, static_cast<int64_t>(t.bytes_allocated_error)));
  Row(out, "peak heap", absl::StrCat(TotalBytes(t, t.peak_bytes, static_cast<int64_t>(t.peak_bytes_error)),
                                     " in ", Thousands(t.peak_blocks), " blocks at ",
                                     Seconds(t.peak_time_us, ResolutionOf(p.header.flags))));
  Row(out, p.EndedInExec() ? "ended in exec" : "not freed at exit",
      absl::StrCat(TotalBytes(t, t.leaked_bytes, static_cast<int64_t>(t.leaked_bytes_error)), " in ",
                   Thousands(t.leaked_blocks),
                   p.EndedInExec() ? " blocks discarded by exec (not leaks)" : " blocks"));
  Row(out, "temporary allocations",
      t.temporary_known ? Thousands(t.temporary) : std::string("not known in a sampled trace"));
  if (t.failed_allocs != 0) Row(out, "failed allocations", Thousands(t.failed_allocs));
  if (t.bad_frees != 0) Row(out, "invalid or double frees", Thousands(t.bad_frees));
  absl::StrAppend(&out, "</table>\n");

  TimelineChart(out, p);
  SiteTable(out, p, options, "Top call sites by bytes allocated", "bytes", "allocations",
            [](const SiteStats& s) { return s.alloc_bytes; },
            [](const SiteStats& s) { return s.alloc_count; });
  SiteTable(out, p, options, "Top call sites live at the peak", "bytes", "blocks",
            [](const SiteStats& s) { return s.peak_bytes; },
            [](const SiteStats& s) { return s.peak_count; });
  SiteTable(out, p, options, "Not freed at exit", "bytes", "blocks",
            [](const SiteStats& s) { return s.leaked_bytes; },
            [](const SiteStats& s) { return s.leaked_count; });
  GrowthTable(out, p, options);
  FlameGraph(out, profile);
  absl::StrAppend(&out, "<p class=\"note\">Written by heapsight.</p>\n</body></html>\n");
  return out;
}

}  // namespace heapsight::analyzer::output
