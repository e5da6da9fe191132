// analyzer/report/growth_report.h: `heapsight growth`, the call sites whose live
// memory keeps growing (growth_tracker.h), ranked by growth rate.
//
// A site is listed when the line fitted to its live bytes rises by at least
// `min_bytes` over the window, with a fit (r^2, 0 to 1) of at least
// `min_fit`; the list is sorted by bytes per second. The fit tells a steady
// climb (near 1: a cache without eviction, a leak per request) from churn or
// a pool that fills and empties (near 0). The fit ends at a site's last high
// point, so a program that frees everything at exit, after growing all
// along, still shows its growth.
#ifndef HEAPSIGHT_ANALYZER_GROWTH_REPORT_H_
#define HEAPSIGHT_ANALYZER_GROWTH_REPORT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "analyzer/model/site_ranking.h"
#include "analyzer/model/trace_model.h"
#include "analyzer/output/stack_text.h"

namespace heapsight::analyzer {

// The criteria of site_ranking.h (top, min_bytes, min_fit) and how much
// of each stack the text shows.
struct GrowthOptions : GrowthCriteria {
  size_t frames = kDefaultSiteFrames;  // own frames per site (text; SIZE_MAX: all)
};

std::string FormatGrowthText(const std::vector<const ProcessProfile*>& profiles,
                             const GrowthOptions& options);
// {"schema": "heapsight-growth/1", "processes": [{"pid", "exe", "trace",
//   "sampled", "totals", "window_begin_us", "end_us",
//   "sites": [call site of site_json.h + {"bytes_per_second", "fit", "rise",
//             "live_at_begin", "live_max", "live_at_end"}]}]}
// (docs/heapsight-json.schema.json, $defs "growth").
std::string FormatGrowthJson(const std::vector<const ProcessProfile*>& profiles,
                             const GrowthOptions& options);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_GROWTH_REPORT_H_
