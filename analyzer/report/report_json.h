// analyzer/report/report_json.h: `heapsight report --format json`, the
// machine-readable form of text_report.h: per process its identity, status,
// totals and the top call sites by allocations, bytes allocated, peak heap,
// temporary allocations (heaptrack's "most temporary allocations"; exact
// traces only, docs/temporaries.md) and bytes not freed at exit; for several
// traces also their sums. Schema "heapsight-report/2" (docs/heapsight-json.schema.json;
// /2: a site's frames are the shared frame objects of site_json.h, not
// strings); every string from a trace is valid UTF-8 (invalid bytes replaced).
#ifndef HEAPSIGHT_ANALYZER_REPORT_REPORT_JSON_H_
#define HEAPSIGHT_ANALYZER_REPORT_REPORT_JSON_H_

#include <string>
#include <vector>

#include "analyzer/model/trace_model.h"
#include "analyzer/report/text_report.h"

namespace heapsight::analyzer {

// One JSON document (ends with a newline). options.top_sites entries per
// list; each site is a call site of site_json.h (every frame, leaf first,
// "first_own", "frames_not_recorded") with its numbers.
std::string FormatReportJson(const std::vector<const ProcessProfile*>& profiles,
                             const ReportOptions& options = {});

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_REPORT_REPORT_JSON_H_
