// analyzer/output/html_report.h: `heapsight html`, one self-contained HTML
// page per trace or per process family (everything one `heapsight record`
// wrote: fork children and exec'd images): the process tree with a
// selector and the family's totals, then per process its totals, the heap
// (and RSS) over time as an inline SVG step chart (html_timeline.h), the top
// call sites by bytes allocated, by bytes live at the peak and by bytes not
// freed at exit, the most temporary allocations, the leaks per class with
// their stacks and the free errors (html_leaks.h), the call sites whose
// memory keeps growing
// (growth_tracker.h), and the call-site views: flame graph or icicle,
// top-down and bottom-up trees, callers and callees, behind one metric
// switch and a search box, drawn by script from one compact table per
// process (html_flame.h). The "what these numbers mean" section quotes
// docs/glossary.md (html_glossary.h).
//
// No external resources: the page works offline and from a CI artifact (a
// Content-Security-Policy forbids every fetch). Every string that comes
// from the trace or its ELF files (function and file names, paths, the
// command line, marker names) is escaped (C++ names are full of '<', '>'
// and '&'), trace strings reach a <script> element only as the views' JSON
// data (html_flame.h: '<', '>' and '&' written as \u escapes, so nothing in
// it can end the element), and the page is well-formed XML as well as HTML.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_HTML_REPORT_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_HTML_REPORT_H_

#include <cstddef>
#include <string>
#include <vector>

#include "analyzer/model/leak_class_data.h"
#include "analyzer/model/trace_model.h"
#include "analyzer/output/html_leaks.h"

namespace heapsight::analyzer::output {

struct HtmlReportOptions {
  size_t top = 10;     // rows per table
  size_t frames = 8;   // frames per call site
};

// One process of the page. `trace` analyzed with AnalyzeOptions::track_growth
// (for the growth table; without it the table says so). The leak numbers come from the leak report
// (report/leak_report.h: BuildLeakReport decides which blocks are leaks; an
// image that ended in exec has none, its heap was discarded), which this
// layer cannot call: the caller copies them here.
struct HtmlProcess {
  const ProcessProfile* trace = nullptr;
  bool leaks_known = false;       // the two fields below were filled
  ClassCounts leaked;             // LeakTotals::leaked (lost blocks, unsuppressed)
  ClassCounts discarded_by_exec;  // LeakTotals::discarded_by_exec
  HtmlLeaks leaks;                // the "Leaks" section (html_leaks.h)
};

// The page for one process or a family, the processes in the order given
// (the first is shown first). Empty `processes`: a page that says so.
std::string RenderHtmlReport(const std::vector<HtmlProcess>& processes,
                             const HtmlReportOptions& options);

// One process without leak-report numbers.
std::string RenderHtmlReport(const ProcessProfile& trace, const HtmlReportOptions& options);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_HTML_REPORT_H_
