// analyzer/output/site_metric.cc: see site_metric.h.
#include "analyzer/output/site_metric.h"

#include "absl/strings/str_cat.h"
#include "analyzer/output/heap_unsampling.h"

namespace heapsight::analyzer::output {

absl::StatusOr<SiteMetric> ParseSiteMetric(std::string_view name) {
  if (name == "alloc_bytes" || name == "bytes") return SiteMetric::kAllocBytes;
  if (name == "alloc_count" || name == "allocations") return SiteMetric::kAllocCount;
  if (name == "not_freed_bytes" || name == "leaked_bytes") return SiteMetric::kLeakedBytes;
  if (name == "peak_bytes") return SiteMetric::kPeakBytes;
  if (name == "temporary" || name == "temporary_count") return SiteMetric::kTemporaryCount;
  if (name == "temporary_bytes") return SiteMetric::kTemporaryBytes;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown metric \"", std::string(name), "\" (expected ",
                   std::string(kSiteMetricNames), "; older names: ",
                   std::string(kSiteMetricAliases), ")"));
}

std::string_view SiteMetricName(SiteMetric metric) {
  switch (metric) {
    case SiteMetric::kAllocBytes: return "alloc_bytes";
    case SiteMetric::kAllocCount: return "alloc_count";
    case SiteMetric::kLeakedBytes: return "not_freed_bytes";
    case SiteMetric::kPeakBytes: return "peak_bytes";
    case SiteMetric::kTemporaryCount: return "temporary_count";
    case SiteMetric::kTemporaryBytes: return "temporary_bytes";
  }
  return "?";
}

std::string_view SiteMetricUnit(SiteMetric metric) {
  return metric == SiteMetric::kAllocCount || metric == SiteMetric::kTemporaryCount
             ? "allocations"
             : "bytes";
}

bool SiteMetricNeedsExactTrace(SiteMetric metric) {
  return metric == SiteMetric::kTemporaryCount || metric == SiteMetric::kTemporaryBytes;
}

int64_t SiteMetricValue(const SiteValues& values, SiteMetric metric, int64_t sample_period) {
  switch (metric) {
    case SiteMetric::kAllocBytes:
      return ScaleAllocs(values, sample_period).bytes;
    case SiteMetric::kAllocCount:
      return ScaleAllocs(values, sample_period).count;
    case SiteMetric::kLeakedBytes:
      return ScaleHeapSample(values.leaked_count, values.leaked_bytes, sample_period).bytes;
    case SiteMetric::kPeakBytes:
      return ScaleHeapSample(values.peak_count, values.peak_bytes, sample_period).bytes;
    case SiteMetric::kTemporaryCount:
      return values.temporary_count;
    case SiteMetric::kTemporaryBytes:
      return values.temporary_bytes;
  }
  return 0;
}

}  // namespace heapsight::analyzer::output
