// analyzer/output/site_estimate.h: the per-site numbers the call-site lists
// of `report` and `html` show: a sampled trace's estimates (the same ones
// pprof, collapse and flamegraph give per site, so a list's rows add up to
// the totals as theirs do), the recorded numbers of an exact trace.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_SITE_ESTIMATE_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_SITE_ESTIMATE_H_

#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer {

// EstimatedSiteStats()
//
// `s` itself when `t` is not estimated. Otherwise `s` with
//  - alloc_count, alloc_bytes: the per-allocation estimates
//    (SiteStats::alloc_*_estimate, rounded), as Totals::allocs and
//    bytes_allocated;
//  - live_*, leaked_*, peak_*, inherited_*: Go's per-site scaling
//    (ScaleLiveBlocks with t.sample_period), as Totals' peak and not freed;
//  - temporary_*: unchanged (0: not known in a sampled trace).
SiteStats EstimatedSiteStats(const SiteStats& s, const Totals& t);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_SITE_ESTIMATE_H_
