// analyzer/output/html_report.cc: see html_report.h.
#include "analyzer/output/html_report.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "analyzer/model/family_totals.h"
#include "analyzer/model/site_ranking.h"
#include "analyzer/output/flamegraph_svg.h"  // XmlEscape
#include "analyzer/output/html_flame.h"
#include "analyzer/output/attach_window.h"
#include "analyzer/output/html_glossary.h"
#include "analyzer/output/html_timeline.h"
#include "analyzer/output/site_estimate.h"
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
h3 { font-size: 1.05em; margin-top: 1.2em; }
section.process { border-top: 2px solid #1f62b4; margin-top: 1.5em; }
ul.tree a.current { font-weight: bold; }
details.glossary { margin: 1em 0; } details.glossary dt { font-weight: bold; }
figure.heap-chart { margin: 0.5em 0; }
figure.heap-chart .rss { display: none; }
figure.heap-chart .rss-toggle:checked ~ svg .rss { display: inline; }
svg.timeline text { fill: #333; }
pre.lsan, pre.free-error { background: #f8f8f8; border-left: 3px solid #c0392b; padding: 0.3em 0.6em; overflow-x: auto; }
h4.leak-class { font-size: 1em; margin: 0.8em 0 0.3em; }
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

// One site's number in a table (of its EstimatedSiteStats: a sampled
// trace's estimates, site_estimate.h).
struct SiteNumber {
  uint64_t count = 0;
  uint64_t bytes = 0;
};
using SiteNumberFn = std::function<SiteNumber(const SiteStats&)>;

SiteNumberFn Numbers(const Totals& t, uint64_t SiteStats::*count, uint64_t SiteStats::*bytes) {
  return [&t, count, bytes](const SiteStats& s) {
    SiteStats e = EstimatedSiteStats(s, t);
    return SiteNumber{e.*count, e.*bytes};
  };
}

void SiteTable(std::string& out, const ProcessProfile& p, const HtmlReportOptions& options,
               std::string_view title, std::string_view id, std::string_view bytes_header,
               std::string_view count_header, const SiteNumberFn& number) {
  const bool estimated = p.totals.estimated;
  absl::StrAppend(&out, "<h3>", E(title), "</h3>\n");
  std::vector<const Site*> sites =
      RankSites(p, options.top, [&](const SiteStats& s) { return number(s).bytes; });
  if (sites.empty()) {
    absl::StrAppend(&out, "<p class=\"note\">none</p>\n");
    return;
  }
  if (estimated) {
    absl::StrAppend(&out, "<p class=\"note estimate\">Estimates: each site&apos;s sampled "
                          "numbers scaled up as the totals are (see <a href=\"#def-estimates\">"
                          "estimates</a>).</p>\n");
  }
  const char* suffix = estimated ? " (estimate)" : "";
  absl::StrAppend(&out, "<table class=\"sites\" id=\"", E(id), "\"><tr><th>", E(bytes_header),
                  suffix, "</th><th>", E(count_header), suffix,
                  "</th><th>API</th><th>call stack (innermost first)</th></tr>\n");
  for (const Site* s : sites) {
    const char* api = format::ApiName(s->api);
    SiteNumber n = number(s->stats);
    absl::StrAppend(&out, "<tr><td class=\"n\">", E(Thousands(n.bytes)),
                    "</td><td class=\"n\">", E(Thousands(n.count)), "</td><td>",
                    E(api != nullptr ? api : "?"), "</td><td class=\"s\">",
                    StackCell(p, s->stack, options.frames), "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table>\n");
}

// heaptrack's "most temporary allocations", with our definition
// (docs/temporaries.md): exact traces only.
void TemporaryTable(std::string& out, const ProcessProfile& p, const HtmlReportOptions& options,
                    std::string_view id) {
  absl::StrAppend(&out, "<h3>Most temporary allocations</h3>\n");
  if (!p.totals.temporary_known) {
    absl::StrAppend(&out, "<p class=\"note\">not known in a sampled trace (see <a "
                          "href=\"#def-temporary\">temporary</a>)</p>\n");
    return;
  }
  std::vector<const Site*> sites =
      RankSites(p, options.top, [](const SiteStats& s) { return s.temporary_count; });
  if (sites.empty()) {
    absl::StrAppend(&out, "<p class=\"note\">none</p>\n");
    return;
  }
  absl::StrAppend(&out, "<table class=\"sites\" id=\"", E(id),
                  "\"><tr><th>temporary</th><th>of allocations</th><th>share</th>"
                  "<th>temporary bytes</th><th>API</th><th>call stack (innermost first)</th>"
                  "</tr>\n");
  for (const Site* s : sites) {
    const char* api = format::ApiName(s->api);
    const SiteStats& st = s->stats;
    double share = st.alloc_count == 0 ? 0 : 100.0 * st.temporary_count / st.alloc_count;
    absl::StrAppend(&out, "<tr><td class=\"n\">", E(Thousands(st.temporary_count)),
                    "</td><td class=\"n\">", E(Thousands(st.alloc_count)),
                    "</td><td class=\"n\">", absl::StrFormat("%.1f%%", share),
                    "</td><td class=\"n\">", E(Thousands(st.temporary_bytes)), "</td><td>",
                    E(api != nullptr ? api : "?"), "</td><td class=\"s\">",
                    StackCell(p, s->stack, options.frames), "</td></tr>\n");
  }
  absl::StrAppend(&out, "</table>\n");
}

void GrowthTable(std::string& out, const ProcessProfile& p, const HtmlReportOptions& options) {
  absl::StrAppend(&out, "<h3>Call sites whose memory keeps growing</h3>\n");
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

std::string Define(std::string_view key) { return GlossaryDefinition(key); }

// A summary row whose header carries its definition as a tooltip.
void DefinedRow(std::string& out, std::string_view label, std::string_view term,
                const std::string& value) {
  absl::StrAppend(&out, "<tr><th title=\"", E(Define(term)), "\">", E(label),
                  "</th><td class=\"n\">", E(value), "</td></tr>\n");
}

void GlossarySection(std::string& out) {
  absl::StrAppend(&out, "<details class=\"glossary\" id=\"glossary\"><summary>What these numbers "
                        "mean</summary>\n<dl>\n");
  // The definitions are quoted from docs/glossary.md (html_glossary.h).
  for (const GlossaryEntry& e : HtmlGlossary()) {
    absl::StrAppend(&out, "<dt id=\"def-", E(absl::StrReplaceAll(e.key, {{" ", "-"}})), "\">",
                    E(e.term), "</dt><dd>", E(GlossaryDefinition(e.key)), "</dd>\n");
  }
  absl::StrAppend(&out, "</dl>\n<p class=\"note\">Quoted from the glossary, "
                        "<code>docs/glossary.md</code> in heapsight&apos;s sources (also "
                        "installed with its documentation), which has the full "
                        "definitions.</p></details>\n");
}

std::string CommandLine(const ProcessProfile& p) {
  std::string command = p.exe.empty() ? "(unknown program)" : p.exe;
  for (size_t i = 1; i < p.argv.size(); ++i) absl::StrAppend(&command, " ", p.argv[i]);
  return command;
}

// The executable's base name, and whether exec replaced this image (the
// image before an exec and the one after share a pid).
std::string ShortName(const ProcessProfile& p) {
  std::string exe = p.exe.empty() ? "(unknown program)" : p.exe;
  size_t slash = exe.rfind('/');
  if (slash != std::string::npos) exe = exe.substr(slash + 1);
  return p.EndedInExec() ? exe + " (until exec)" : exe;
}

// One process's section: its totals, chart, tables and flame graph.
void ProcessSection(std::string& out, const HtmlProcess& hp, size_t index,
                    const HtmlReportOptions& options) {
  const ProcessProfile& p = *hp.trace;
  ClockResolution res = ResolutionOf(p.header.flags);
  bool exec = p.EndedInExec();
  // A segment closed by `record --rotate-*`: the process ran on, its blocks
  // live at the cut go on in the next segment (as report and leaks say).
  bool rotated = p.EndedInRotation();
  absl::StrAppend(&out, "<section class=\"process\" id=\"proc-", index, "\" data-proc=\"", index,
                  "\" data-pid=\"", p.pid, "\">\n");
  absl::StrAppend(&out, "<h2>Process ", p.pid, ": ", E(CommandLine(p)), "</h2>\n");
  absl::StrAppend(&out, "<p class=\"note\">trace ", E(p.trace_path), ", parent ", p.ppid, ", ",
                  E(p.complete ? "complete" : "cut short"), ", ", E(Seconds(p.duration_us, res)),
                  ", ", p.threads, p.threads == 1 ? " thread" : " threads");
  if (exec) absl::StrAppend(&out, ", ended by exec of ", E(p.exec_path));
  if (rotated) {
    absl::StrAppend(&out, ", <span class=\"rotated\">segment closed by rotation; the run "
                          "continues in ",
                    E(NextSegmentName(p)), "</span>");
  }
  absl::StrAppend(&out, "</p>\n");
  if (std::string window = AttachWindowText(p); !window.empty()) {
    absl::StrAppend(&out, "<p class=\"note window\">", E(window), "</p>\n");
  }
  // The totals every command prints (trace_model.h, docs/glossary.md),
  // marked as estimates in a sampled trace (totals_text.h).
  const Totals& t = p.totals;
  if (t.estimated) absl::StrAppend(&out, "<p class=\"note\">", E(EstimateNote(t)), "</p>\n");
  if (t.compact_frees) {
    absl::StrAppend(&out, "<p class=\"note compact\">", E(CompactNote(t)), "</p>\n");
  }
  absl::StrAppend(&out, "<h3>Summary</h3>\n<table class=\"summary\">\n");
  DefinedRow(out, "allocations", "allocated",
             TotalCount(t, t.allocs, static_cast<int64_t>(t.allocs_error)));
  DefinedRow(out, "frees", "frees", TotalCount(t, t.frees));
  DefinedRow(out, "bytes allocated", "allocated",
             TotalBytes(t, t.bytes_allocated, static_cast<int64_t>(t.bytes_allocated_error)));
  DefinedRow(out, "peak heap", "peak heap",
             absl::StrCat(TotalBytes(t, t.peak_bytes, static_cast<int64_t>(t.peak_bytes_error)),
                          " in ", Thousands(t.peak_blocks), " blocks at ",
                          Seconds(t.peak_time_us, res)));
  // The blocks live at the end: discarded by exec, or not freed at exit.
  const std::string live_at_end =
      absl::StrCat(TotalBytes(t, t.leaked_bytes, static_cast<int64_t>(t.leaked_bytes_error)),
                   " in ", Thousands(t.leaked_blocks), " blocks");
  if (exec) {
    DefinedRow(out, "heap discarded by exec", "discarded by exec",
               absl::StrCat(live_at_end, " (not leaks)"));
  } else if (rotated) {
    DefinedRow(out, "live at the segment's end", "carried by rotation",
               absl::StrCat(live_at_end, " (carried into ", NextSegmentName(p), "; not leaks)"));
  } else {
    DefinedRow(out, "not freed at exit", "not freed at exit", live_at_end);
    if (hp.leaks_known) {
      DefinedRow(out, "leaked", "leaked",
                 absl::StrCat(Bytes(hp.leaked.bytes), " in ", Thousands(hp.leaked.blocks),
                              " blocks"));
    }
  }
  DefinedRow(out, "temporary allocations", "temporary",
             t.temporary_known ? Thousands(t.temporary)
                               : std::string("not known in a sampled trace"));
  if (t.failed_allocs != 0) Row(out, "failed allocations", Thousands(t.failed_allocs));
  if (t.bad_frees != 0) Row(out, "invalid or double frees", Thousands(t.bad_frees));
  absl::StrAppend(&out, "</table>\n");

  absl::StrAppend(&out, "<h3>Heap over time</h3>\n");
  absl::StrAppend(&out, RenderHeapChart(p, absl::StrCat("p", index)));
  std::string id = absl::StrCat("p", index);
  SiteTable(out, p, options, "Top call sites by bytes allocated", id + "-allocated", "bytes",
            "allocations", Numbers(t, &SiteStats::alloc_count, &SiteStats::alloc_bytes));
  SiteTable(out, p, options, "Top call sites live at the peak", id + "-peak", "bytes", "blocks",
            Numbers(t, &SiteStats::peak_count, &SiteStats::peak_bytes));
  SiteTable(out, p, options,
            exec      ? "Heap discarded by exec (not leaks: the kernel freed it with the image)"
            : rotated ? "Live at the segment's end (carried into the next segment by rotation: "
                        "not leaks)"
                      : "Not freed at exit",
            id + "-not-freed", "bytes", "blocks",
            Numbers(t, &SiteStats::leaked_count, &SiteStats::leaked_bytes));
  TemporaryTable(out, p, options, id + "-temporary");
  absl::StrAppend(&out, RenderLeaksSection(p, hp.leaks, options.top, options.frames,
                                           id + "-leaks"));
  GrowthTable(out, p, options);
  absl::StrAppend(&out, FlameSection(p, hp.leaks, absl::StrCat("flame-data-p", index)));
  absl::StrAppend(&out, "</section>\n");
}

// Index of each process's parent in the page (-1: none given). A parent is
// the process whose trace the child's kProcess record names: the same file,
// or a file of the same name (traces are named by pid, and a family may be
// analyzed from another directory than it was recorded in).
std::vector<int> Parents(const std::vector<HtmlProcess>& processes) {
  std::vector<int> parent(processes.size(), -1);
  auto base = [](const std::string& path) {
    return std::filesystem::path(path).filename().string();
  };
  for (size_t i = 0; i < processes.size(); ++i) {
    const std::string& want = processes[i].trace->parent_trace;
    if (want.empty()) continue;
    for (size_t j = 0; j < processes.size() && parent[i] < 0; ++j) {
      if (j != i && processes[j].trace->trace_path == want) parent[i] = static_cast<int>(j);
    }
    for (size_t j = 0; j < processes.size() && parent[i] < 0; ++j) {
      if (j != i && base(processes[j].trace->trace_path) == base(want)) {
        parent[i] = static_cast<int>(j);
      }
    }
  }
  // A cycle (hostile traces naming each other) would make a tree without
  // a root: cut every link that leads back to where it started.
  for (size_t i = 0; i < processes.size(); ++i) {
    int at = parent[i];
    for (size_t steps = 0; at >= 0 && steps <= processes.size(); ++steps) {
      if (at == static_cast<int>(i)) {
        parent[i] = -1;
        break;
      }
      at = parent[at];
    }
  }
  return parent;
}

void TreeNode(std::string& out, const std::vector<HtmlProcess>& processes,
              const std::vector<int>& parent, size_t i) {
  const ProcessProfile& p = *processes[i].trace;
  absl::StrAppend(&out, "<li>");
  int up = parent[i];
  if (up >= 0) {
    absl::StrAppend(&out, processes[up].trace->pid == p.pid ? "exec: " : "fork: ");
  }
  absl::StrAppend(&out, "<a href=\"#proc-", i, "\" class=\"proc-link\" data-proc=\"", i,
                  "\">pid ", p.pid, " ", E(ShortName(p)), "</a> <span class=\"note\">peak ",
                  E(Bytes(p.totals.peak_bytes)),
                  p.EndedInExec()       ? ", ended in exec (heap discarded)"
                  : p.EndedInRotation() ? ", segment closed by rotation (heap carried on)"
                                        : "",
                  "</span>");
  std::string children;
  for (size_t c = 0; c < processes.size(); ++c) {
    if (parent[c] == static_cast<int>(i)) TreeNode(children, processes, parent, c);
  }
  if (!children.empty()) absl::StrAppend(&out, "\n<ul>\n", children, "</ul>");
  absl::StrAppend(&out, "</li>\n");
}

// The family: the tree, the selector and the totals, summed the way
// `heapsight report` sums them (text_report.cc): never more than the sum
// of the processes, the peak as the largest single one.
void FamilySection(std::string& out, const std::vector<HtmlProcess>& processes) {
  absl::StrAppend(&out, "<section id=\"family\">\n<h2>Processes (", processes.size(),
                  ")</h2>\n<label for=\"process-select\">Show process: </label>"
                  "<select id=\"process-select\">\n");
  for (size_t i = 0; i < processes.size(); ++i) {
    const ProcessProfile& p = *processes[i].trace;
    absl::StrAppend(&out, "<option value=\"", i, "\">pid ", p.pid, ": ", E(ShortName(p)),
                    "</option>\n");
  }
  absl::StrAppend(&out, "</select>\n<ul class=\"tree\">\n");
  std::vector<int> parent = Parents(processes);
  for (size_t i = 0; i < processes.size(); ++i) {
    if (parent[i] < 0) TreeNode(out, processes, parent, i);
  }
  absl::StrAppend(&out, "</ul>\n<table class=\"family\"><tr><th>process</th><th>allocations</th>"
                        "<th>bytes allocated</th><th title=\"", E(Define("peak heap")),
                        "\">peak heap</th><th title=\"", E(Define("not freed at exit")),
                        "\">not freed at exit</th><th title=\"", E(Define("leaked")),
                        "\">leaked</th></tr>\n");
  // The family's totals as every command sums them (family_totals.h).
  std::vector<const ProcessProfile*> profiles;
  for (const HtmlProcess& hp : processes) profiles.push_back(hp.trace);
  const FamilyTotals family = SumTotals(profiles);
  const Totals& sum = family.sum;
  uint64_t leaked_bytes = 0;
  bool leaks_known = true;
  for (size_t i = 0; i < processes.size(); ++i) {
    const HtmlProcess& hp = processes[i];
    const ProcessProfile& p = *hp.trace;
    bool exec = p.EndedInExec();
    leaks_known = leaks_known && hp.leaks_known;
    if (hp.leaks_known) leaked_bytes += hp.leaked.bytes;
    absl::StrAppend(&out, "<tr data-proc=\"", i, "\"><td>pid ", p.pid, " ", E(ShortName(p)),
                    "</td><td class=\"n\">", E(Thousands(p.totals.allocs)),
                    "</td><td class=\"n\">", E(Thousands(p.totals.bytes_allocated)),
                    "</td><td class=\"n\">", E(Thousands(p.totals.peak_bytes)),
                    "</td><td class=\"n\">",
                    exec ? absl::StrCat("none: ", E(Thousands(p.totals.leaked_bytes)),
                                        " discarded by exec")
                    : p.EndedInRotation()
                        ? absl::StrCat("none: ", E(Thousands(p.totals.leaked_bytes)),
                                       " carried by rotation")
                        : E(Thousands(p.totals.leaked_bytes)),
                    "</td><td class=\"n\">",
                    hp.leaks_known ? E(Thousands(hp.leaked.bytes)) : "?", "</td></tr>\n");
  }
  absl::StrAppend(&out, "<tr class=\"total\"><th>family</th><td class=\"n\">",
                  E(Thousands(sum.allocs)), "</td><td class=\"n\">",
                  E(Thousands(sum.bytes_allocated)),
                  "</td><td class=\"n\">largest of one process: ", E(Thousands(sum.peak_bytes)),
                  "</td><td class=\"n\">", E(Thousands(sum.leaked_bytes)),
                  "</td><td class=\"n\">", leaks_known ? E(Thousands(leaked_bytes)) : "?",
                  "</td></tr>\n</table>\n<p class=\"note\">Bytes. The processes may not "
                  "have peaked at the same moment, so the family&apos;s peak is not a sum.</p>\n"
                  "</section>\n");
}

// The process selector: shows one process section at a time. Without
// script every section stays visible. No trace string appears in here.
constexpr char kSelectorScript[] = R"(
(function () {
  var select = document.getElementById('process-select');
  var sections = document.querySelectorAll('section.process');
  var links = document.querySelectorAll('a.proc-link');
  if (!select || sections.length < 2) return;
  function show(index) {
    index = String(index);
    for (var i = 0; i < sections.length; i++) {
      sections[i].hidden = sections[i].getAttribute('data-proc') !== index;
    }
    for (var k = 0; k < links.length; k++) {
      links[k].classList.toggle('current', links[k].getAttribute('data-proc') === index);
    }
    select.value = index;
  }
  select.addEventListener('change', function () { show(select.value); });
  for (var k = 0; k < links.length; k++) {
    links[k].addEventListener('click', function (e) {
      e.preventDefault();
      show(this.getAttribute('data-proc'));
    });
  }
  var m = /^#proc-(\d+)$/.exec(window.location.hash);
  show(m && document.getElementById('proc-' + m[1]) ? m[1] : '0');
})();
)";

}  // namespace

std::string RenderHtmlReport(const std::vector<HtmlProcess>& processes,
                             const HtmlReportOptions& options) {
  std::string title = processes.empty() ? "no traces" : CommandLine(*processes[0].trace);
  std::string out = "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"/>\n";
  // Nothing is fetched: no network, no other file; only data: URLs (the
  // flame graph is a data: URL object, whose document inherits this policy)
  // and inline style and script.
  absl::StrAppend(&out,
                  "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src data: "
                  "'unsafe-inline'\"/>\n");
  absl::StrAppend(&out, "<title>heapsight: ", E(title), "</title>\n<style>", kStyle,
                  FlameStyle(), "</style></head>\n<body>\n");
  absl::StrAppend(&out, "<h1>heapsight: ", E(title), "</h1>\n");
  if (processes.size() > 1) FamilySection(out, processes);
  GlossarySection(out);
  for (size_t i = 0; i < processes.size(); ++i) ProcessSection(out, processes[i], i, options);
  absl::StrAppend(&out, "<p class=\"note\">Written by heapsight.</p>\n");
  // (The CDATA markers, commented out for the script, keep the page
  // well-formed XML.)
  absl::StrAppend(&out, "<script>//<![CDATA[", HeapChartScript(), "//]]></script>\n");
  // The selection's script defines what the views' script calls.
  absl::StrAppend(&out, "<script>//<![CDATA[", SelectionScript(), FlameScript(),
                  "//]]></script>\n");
  if (processes.size() > 1) {
    absl::StrAppend(&out, "<script>//<![CDATA[", kSelectorScript, "//]]></script>\n");
  }
  absl::StrAppend(&out, "</body></html>\n");
  return out;
}

std::string RenderHtmlReport(const ProcessProfile& trace, const HtmlReportOptions& options) {
  HtmlProcess p;
  p.trace = &trace;
  return RenderHtmlReport({p}, options);
}

}  // namespace heapsight::analyzer::output
