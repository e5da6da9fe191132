// analyzer/report/leak_summary.cc: see leak_summary.h.
#include "analyzer/report/leak_summary.h"

#include <algorithm>

#include "analyzer/report/leak_classes.h"
#include "analyzer/report/leak_report.h"
#include "analyzer/report/suppressions.h"
#include "analyzer/output/text_util.h"
#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer {

absl::StatusOr<LeakSummary> SummarizeTraces(const std::vector<std::string>& paths,
                                            const std::string& suppressions) {
  absl::StatusOr<Suppressions> rules = Suppressions::Load(suppressions);
  if (!rules.ok()) return rules.status();
  LeakSummary summary;
  summary.classified = !paths.empty();
  for (const std::string& path : paths) {
    absl::StatusOr<ProcessProfile> profile = AnalyzeTrace(path);
    if (!profile.ok()) return profile.status();
    // Reachability classes (issue 5): leaked_* become the lost blocks.
    const LeakClassData& classes = profile->leak_classes;
    ClassifiedLeakReport classified =
        ClassifyLeakReport(BuildLeakReport({&*profile}, *rules), {&*profile}, {classes});
    summary.classified = summary.classified && classes.scanned;
    for (int c = 0; c < 4; ++c) {
      summary.class_bytes[c] += classified.classes[c].bytes;
      summary.class_blocks[c] += classified.classes[c].blocks;
    }
    summary.free_errors += classified.errors.size();
    const LeakReport& report = classified.report;
    ++summary.processes;
    summary.leaked_bytes += report.leaked_bytes;
    summary.leaked_blocks += report.leaked_blocks;
    summary.suppressed_bytes += report.suppressed_bytes;
    summary.suppressed_blocks += report.suppressed_blocks;
    summary.runtime_bytes += report.runtime_bytes;
    summary.runtime_blocks += report.runtime_blocks;
    summary.peak_bytes = std::max(summary.peak_bytes, profile->totals.peak_bytes);
    summary.allocs += profile->totals.allocs;
    summary.frees += profile->totals.frees;
    summary.bytes_allocated += profile->totals.bytes_allocated;
    summary.complete = summary.complete && profile->complete;
    if ((profile->header.flags & format::kFileFlagSampled) != 0) {
      summary.sample_period_bytes =
          std::max(summary.sample_period_bytes, profile->header.sample_period_bytes);
    }
  }
  return summary;
}

void PrintLeakSummary(std::FILE* out, const LeakSummary& s) {
  std::fprintf(out, "heapsight: LEAK SUMMARY (%s)\n",
               (Thousands(s.processes) + (s.processes == 1 ? " process" : " processes")).c_str());
  if (s.classified) {
    const char* labels[] = {"definitely lost", "indirectly lost", "  possibly lost",
                            "still reachable"};
    for (int c = 0; c < 4; ++c) {
      std::fprintf(out, "heapsight:    %s: %s in %s\n", labels[c], Bytes(s.class_bytes[c]).c_str(),
                   (Thousands(s.class_blocks[c]) + (s.class_blocks[c] == 1 ? " block" : " blocks"))
                       .c_str());
    }
  } else {
    std::fprintf(out, "heapsight:    not freed at exit: %s in %s\n", Bytes(s.leaked_bytes).c_str(),
                 (Thousands(s.leaked_blocks) + (s.leaked_blocks == 1 ? " block" : " blocks")).c_str());
  }
  if (s.free_errors != 0) {
    std::fprintf(out, "heapsight:    free errors (invalid, double, mismatched): %s\n",
                 Thousands(s.free_errors).c_str());
  }
  if (s.suppressed_blocks != 0) {
    std::fprintf(out, "heapsight:    suppressed: %s in %s blocks\n", Bytes(s.suppressed_bytes).c_str(),
                 Thousands(s.suppressed_blocks).c_str());
  }
  std::fprintf(out, "heapsight:    peak heap: %s; %s allocations, %s frees, %s allocated\n",
               Bytes(s.peak_bytes).c_str(), Thousands(s.allocs).c_str(), Thousands(s.frees).c_str(),
               Bytes(s.bytes_allocated).c_str());
  if (!s.complete) {
    std::fprintf(out, "heapsight:    WARNING: a trace was cut short; numbers cover the recorded part\n");
  }
  if (s.sample_period_bytes != 0) {
    std::fprintf(out,
                 "heapsight:    sampled trace (one allocation per %s on average): the numbers "
                 "count sampled allocations only\n",
                 Bytes(s.sample_period_bytes).c_str());
  }
  if (s.leaked_blocks != 0 || s.free_errors != 0 || s.class_blocks[3] != 0) {
    std::fprintf(out, "heapsight: run `heapsight leaks TRACE` for the allocation stacks\n");
  }
}

}  // namespace heapsight::analyzer
