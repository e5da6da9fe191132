// analyzer/output/trace_heap_profile.h: fills a HeapProfile (the output
// formats' model) from an analyzed trace, symbolizing every stack.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_TRACE_HEAP_PROFILE_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_TRACE_HEAP_PROFILE_H_

#include <string>

#include "absl/status/statusor.h"
#include "analyzer/output/heap_profile.h"
#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer::output {

struct TraceHeapProfileOptions {
  // Also include blocks the C/C++ runtime made for itself (SiteKind::kRuntime).
  bool include_runtime = false;
  // Text for HeapProfile::moment, e.g. "end of the trace".
  std::string moment;
};

// CutFrameName()
//
// "[... N more frames not recorded]" ("[... more frames not recorded]"
// when N is unknown): the root frame of a cut stack.
std::string CutFrameName(const StackCut& cut);

// HeapProfileFromTrace()
//
// One sample per site of `trace` (runtime sites only if asked): the stack is
// symbolized with trace.symbolizer, allocator frames dropped, leaf first;
// inuse = SiteStats::live_*. One location per distinct address; one mapping
// per module segment hit, the main executable's first. Every location gets
// at least one frame (an unknown one is named "module+0xoffset"), so
// consumers never need to symbolize again. A stack the preload cut at its
// depth cap ends (at the root) in a pseudo location named CutFrameName(),
// e.g. "[... 44 more frames not recorded]", so pprof, folded stacks and
// flame graphs show that the callers are missing. Fails only if the trace
// has no symbolizer.
absl::StatusOr<HeapProfile> HeapProfileFromTrace(const ProcessProfile& trace,
                                                 const TraceHeapProfileOptions& options);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_TRACE_HEAP_PROFILE_H_
