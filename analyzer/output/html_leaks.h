// analyzer/output/html_leaks.h: the HTML page's "Leaks" section of one
// process: a part per leak class (definitely, indirectly, possibly lost,
// still reachable, and "not freed" for a trace without a scan), each with
// its total and its call sites as LSan-style stacks ("Direct leak of 48
// byte(s) in 1 object(s) allocated from: #0 ..."), then the free errors
// (invalid, double, mismatched) with the free's and the allocation's stacks.
//
// The leak report (report/leak_report.h) decides what is a leak, applying
// suppressions and leaving out the runtime's blocks; this layer cannot call
// it, so the caller (cli/html_command.cc) copies its groups and errors into
// HtmlLeaks. The numbers are therefore the ones `heapsight leaks` prints.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_HTML_LEAKS_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_HTML_LEAKS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "analyzer/model/leak_class_data.h"
#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer::output {

// One call site's blocks of one class (report's LeakGroup, unsuppressed).
struct HtmlLeakGroup {
  LeakClass kind = LeakClass::kUnclassified;
  ClassCounts counts;
  format::Api api = format::Api::kUnknown;
  uint64_t stack = 0;  // leaf stack node in the process's trace
};

struct HtmlLeaks {
  bool known = false;     // the fields below were filled
  bool scanned = false;   // the trace holds a reachability scan
  std::string no_scan_reason;  // why not, in words ("" if scanned)
  bool estimated = false;      // a sampled trace: the counts are estimates
  LeakClassCounts classes;     // per class, unsuppressed program blocks
  ClassCounts suppressed;
  std::vector<HtmlLeakGroup> groups;     // by class, then bytes descending
  std::vector<FreeErrorEvent> errors;    // in time order
};

// The section (<section class="leaks">) for `p`: every class with its
// total, at most `top` call sites per class with at most `frames` frames
// each, and at most `top` free errors of each kind. An image that ended in
// exec gets a note instead (its heap was discarded, not leaked).
std::string RenderLeaksSection(const ProcessProfile& p, const HtmlLeaks& leaks, size_t top,
                               size_t frames, std::string_view id);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_HTML_LEAKS_H_
