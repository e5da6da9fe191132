// analyzer/output/site_metric.h: the one vocabulary of per-site numbers
// every `--metric` of the command line uses (collapse, flamegraph, diff;
// docs/glossary.md "Metrics"), and which number a folded-stack file or
// flame graph shows.
//
// The names are those of the JSON outputs' call sites (alloc_bytes,
// alloc_count, peak_bytes, not_freed_bytes, temporary_count,
// temporary_bytes). Older spellings stay accepted so scripts keep working:
// bytes, allocations, leaked_bytes, temporary (kSiteMetricAliases).
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_SITE_METRIC_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_SITE_METRIC_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "analyzer/output/heap_profile.h"

namespace heapsight::analyzer::output {

enum class SiteMetric {
  kAllocBytes,   // bytes allocated over the whole trace
  kAllocCount,   // allocation calls over the whole trace
  kLeakedBytes,  // bytes not freed at exit ("not_freed_bytes"; --leak-kinds narrows
                 // them to leaks of some classes)
  kPeakBytes,    // bytes live at the heap's peak
  kTemporaryCount,  // temporary allocations (trace_model.h); exact traces only
  kTemporaryBytes,  // their bytes
};

// The metric names, for help texts: "alloc_bytes|alloc_count|...".
inline constexpr std::string_view kSiteMetricNames =
    "alloc_bytes|alloc_count|peak_bytes|not_freed_bytes|temporary_count|temporary_bytes";

// The older names still accepted, "alias=name" pairs for help texts.
inline constexpr std::string_view kSiteMetricAliases =
    "bytes=alloc_bytes, allocations=alloc_count, leaked_bytes=not_freed_bytes, "
    "temporary=temporary_count";

// ParseSiteMetric()
//
// "alloc_bytes" -> kAllocBytes, ..., "temporary_count" -> kTemporaryCount,
// and the aliases of kSiteMetricAliases; InvalidArgument for anything else.
absl::StatusOr<SiteMetric> ParseSiteMetric(std::string_view name);

// SiteMetricName()  The metric's one name: "alloc_bytes", ..., "temporary_bytes".
std::string_view SiteMetricName(SiteMetric metric);

// SiteMetricUnit()  "bytes" or "allocations", for titles and hover texts.
std::string_view SiteMetricUnit(SiteMetric metric);

// SiteMetricValue()
//
// The metric's number for one site. For a sampled trace (sample_period > 1)
// the estimate ScaleHeapSample() gives for the metric's (count, bytes)
// pair, as in the pprof profile; the raw number otherwise. The temporary
// metrics have no estimate (SiteMetricNeedsExactTrace()): their raw number.
// SiteMetricNeedsExactTrace()
//
// True for the temporary metrics: whether an allocation is temporary
// depends on the calls next to it, which a sampled trace does not record,
// so a sampled trace has no such number (the commands refuse the metric).
bool SiteMetricNeedsExactTrace(SiteMetric metric);

int64_t SiteMetricValue(const SiteValues& values, SiteMetric metric, int64_t sample_period = 0);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_SITE_METRIC_H_
