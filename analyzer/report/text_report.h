// analyzer/report/text_report.h: the text of `heapsight report`: per process the
// program, duration, calls per API, bytes allocated, peak heap (time and top
// sites live at the peak), blocks not freed at exit, the trace's markers
// (time since start and live heap at each; the moment the heap limit was
// hit), temporary allocations,
// top call sites by count / bytes / peak and a size histogram; for several
// traces (a fork/exec family) each process and then a total.
#ifndef HEAPSIGHT_ANALYZER_TEXT_REPORT_H_
#define HEAPSIGHT_ANALYZER_TEXT_REPORT_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer {

struct ReportOptions {
  size_t top_sites = 5;        // entries per "top call sites" list
  size_t frames_per_site = 4;  // frames shown per call site
};

std::string FormatReport(const std::vector<const ProcessProfile*>& profiles,
                         const ReportOptions& options = {});

// The program's sites with a non-zero `key`, largest first (ties by stack,
// then API), at most `top`. Every "top call sites" list uses it.
std::vector<const Site*> RankSites(const ProcessProfile& profile, size_t top,
                                   const std::function<uint64_t(const SiteStats&)>& key);

// A stack's frames as CompactFrame text, innermost first, and the index of
// the first that is not library plumbing (IsLibraryFrame; 0 if none is).
struct StackText {
  std::vector<std::string> frames;
  size_t first_own = 0;
};
StackText DescribeFrames(const ProcessProfile& profile, uint64_t stack);

// "alloc_block (direct_leak.c:12) <- leak_one (direct_leak.c:20) <- ...",
// starting at the program's own frame: the standard library's and the
// allocator's frames above it (IsLibraryFrame) are counted, "(below 6
// library frames)", not listed.
std::string DescribeStack(const ProcessProfile& profile, uint64_t stack, size_t max_frames);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_TEXT_REPORT_H_
