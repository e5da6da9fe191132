// analyzer/output/html_report.h: `heapsight html`, one self-contained HTML
// page per trace: the program and its totals, the heap (and RSS) over time
// as an inline SVG chart, the top call sites by bytes allocated, by bytes
// live at the peak and by bytes not freed at exit, the call sites whose
// memory keeps growing (growth_tracker.h), and the interactive flame graph
// of bytes allocated (flamegraph_svg.h, embedded as an SVG data URL so its
// script runs in its own document).
//
// No external resources: the page works offline and from a CI artifact.
// Every string that comes from the trace or its ELF files (function and
// file names, paths, the command line) is escaped (C++ names are full of
// '<' and '>'), and the page is well-formed XML as well as HTML.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_HTML_REPORT_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_HTML_REPORT_H_

#include <cstddef>
#include <string>

#include "analyzer/output/heap_profile.h"
#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer::output {

struct HtmlReportOptions {
  size_t top = 10;     // rows per table
  size_t frames = 8;   // frames per call site
};

// `trace` analyzed with AnalyzeOptions::track_growth (for the growth table;
// without it the table says so), `profile` built from it
// (HeapProfileFromTrace).
std::string RenderHtmlReport(const ProcessProfile& trace, const HeapProfile& profile,
                             const HtmlReportOptions& options);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_HTML_REPORT_H_
