// analyzer/report/text_report.h: the text of `heapsight report`: per process the
// program, duration, calls per API, bytes allocated, peak heap (time and top
// sites live at the peak), blocks not freed at exit, the trace's markers
// (time since start and live heap at each; the moment the heap limit was
// hit), temporary allocations,
// top call sites by count / bytes / peak / temporary allocations (exact
// traces) / not freed at exit and a size histogram; for several
// traces (a fork/exec family) each process and then a total.
#ifndef HEAPSIGHT_ANALYZER_TEXT_REPORT_H_
#define HEAPSIGHT_ANALYZER_TEXT_REPORT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "analyzer/model/trace_model.h"
#include "analyzer/output/stack_text.h"

namespace heapsight::analyzer {

struct ReportOptions {
  size_t top_sites = 5;        // entries per "top call sites" list
  size_t frames_per_site = kDefaultSiteFrames;  // frames shown per call site (SIZE_MAX: all)
};

std::string FormatReport(const std::vector<const ProcessProfile*>& profiles,
                         const ReportOptions& options = {});

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_TEXT_REPORT_H_
