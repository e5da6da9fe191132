// analyzer/report/trace_diff.h: `heapsight diff BASE NEW`, what changed between two
// traces, per call site.
//
// Sites are matched by what survives a rebuild and address-space layout
// randomization: the allocation API and the function names of the stack,
// inlined frames included (not addresses, not line numbers; a frame without
// a symbol counts as its module's name). Each side's numbers for a key are
// summed over its sites (a function may allocate from several lines). The
// report lists the keys whose chosen metric changed, largest change first,
// with both sides' allocations, bytes allocated, bytes live at the heap's
// peak and bytes not freed at exit, and the whole-program totals.
#ifndef HEAPSIGHT_ANALYZER_TRACE_DIFF_H_
#define HEAPSIGHT_ANALYZER_TRACE_DIFF_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "analyzer/model/trace_model.h"
#include "analyzer/output/stack_text.h"
#include "analyzer/report/site_json.h"
#include "format/trace_format.h"

namespace heapsight::analyzer {

struct DiffValues {
  int64_t allocs = 0;
  int64_t bytes = 0;         // allocated
  int64_t peak_bytes = 0;    // live at the heap's peak
  int64_t leaked_bytes = 0;  // not freed at exit
  int64_t leaked_blocks = 0;
};

struct DiffEntry {
  std::string api;
  format::Api api_id = format::Api::kUnknown;
  std::vector<std::string> functions;  // leaf first: the match key
  std::vector<SiteFrame> frames;       // the same frames in full, from the side first seen
  size_t first_own = 0;                // first frame that is not library plumbing
  DiffValues base, current;            // current = the NEW trace
  StackCut cut;                        // either side's stack was cut at the depth cap
};

// The metrics diff ranks by, named as every --metric names them
// (output/site_metric.h: alloc_bytes, alloc_count, peak_bytes,
// not_freed_bytes, and the older bytes, allocations, leaked_bytes).
enum class DiffMetric { kBytes, kAllocs, kPeakBytes, kLeakedBytes };
absl::StatusOr<DiffMetric> ParseDiffMetric(const std::string& name);
// "alloc_bytes", "alloc_count", "peak_bytes", "not_freed_bytes".
const char* DiffMetricName(DiffMetric metric);
int64_t MetricOf(const DiffValues& v, DiffMetric metric);

struct TraceDiff {
  // Each trace's Totals (runtime blocks included; estimates when sampled),
  // the numbers `report` prints for it.
  DiffValues base_total, current_total;
  bool estimated = false;                // either trace is sampled
  std::vector<DiffEntry> entries;        // every key of either side, unsorted
};

// Matches the program sites (runtime sites left out of the entries, as of
// every call-site list) of two analyzed traces.
TraceDiff DiffProfiles(const ProcessProfile& base, const ProcessProfile& current);

struct DiffOptions {
  DiffMetric metric = DiffMetric::kBytes;
  size_t top = 10;
  size_t frames = kDefaultSiteFrames;  // own frames per site (text; SIZE_MAX: all)
};

// The entries whose metric changed, largest absolute change first (ties:
// larger new value first, then by key), at most options.top.
std::vector<const DiffEntry*> RankChanges(const TraceDiff& diff, const DiffOptions& options);

// The text lists each site's own frames (up to options.frames) below the
// library frames it counts; when two listed sites would read the same (one
// function reaching vector::resize, reserve and push_back), their lines
// start at the library frame that tells them apart.
std::string FormatDiffText(const TraceDiff& diff, const DiffOptions& options,
                           const std::string& base_path, const std::string& current_path);
// {"schema": "heapsight-diff/1", "base", "new", "metric", "totals", "sites":
// [call site of site_json.h + {"functions", "base", "new"}]}, each side's
// numbers named as the report's sites name them (alloc_count, alloc_bytes,
// peak_bytes, not_freed_bytes, not_freed_count); docs/heapsight-json.schema.json.
std::string FormatDiffJson(const TraceDiff& diff, const DiffOptions& options,
                           const std::string& base_path, const std::string& current_path);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_TRACE_DIFF_H_
