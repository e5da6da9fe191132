// analyzer/report/leak_summary.cc: see leak_summary.h.
#include "analyzer/report/leak_summary.h"

#include <algorithm>

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
  // One trace at a time: a family's profiles are not all held at once.
  for (const std::string& path : paths) {
    absl::StatusOr<ProcessProfile> profile = AnalyzeTrace(path);
    if (!profile.ok()) return profile.status();
    LeakReport report = BuildLeakReport({&*profile}, *rules);
    ++summary.processes;
    summary.totals += report.totals;
    summary.classified = summary.classified && report.processes[0].scanned;
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

namespace {

std::string BlocksText(uint64_t blocks) {
  return Thousands(blocks) + (blocks == 1 ? " block" : " blocks");
}

}  // namespace

void PrintLeakSummary(std::FILE* out, const LeakSummary& s) {
  std::fprintf(out, "heapsight: LEAK SUMMARY (%s)\n",
               (Thousands(s.processes) + (s.processes == 1 ? " process" : " processes")).c_str());
  const LeakTotals& t = s.totals;
  if (s.classified) {
    const char* labels[] = {"definitely lost", "indirectly lost", "  possibly lost",
                            "still reachable"};
    for (int i = 0; i < format::kLeakClassCount; ++i) {
      const ClassCounts& c = t.classes[kLeakClassesInOrder[i]];
      std::fprintf(out, "heapsight:    %s: %s in %s\n", labels[i], Bytes(c.bytes).c_str(),
                   BlocksText(c.blocks).c_str());
    }
  } else {
    std::fprintf(out, "heapsight:    not freed at exit: %s in %s\n", Bytes(t.leaked.bytes).c_str(),
                 BlocksText(t.leaked.blocks).c_str());
  }
  if (uint64_t errors = t.FreeErrorCount(); errors != 0) {
    std::fprintf(out, "heapsight:    free errors (invalid, double, mismatched): %s\n",
                 Thousands(errors).c_str());
  }
  if (t.suppressed.blocks != 0) {
    std::fprintf(out, "heapsight:    suppressed: %s in %s blocks\n", Bytes(t.suppressed.bytes).c_str(),
                 Thousands(t.suppressed.blocks).c_str());
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
  if (t.leaked.blocks != 0 || t.FreeErrorCount() != 0 ||
      t.classes[LeakClass::kReachable].blocks != 0) {
    std::fprintf(out, "heapsight: run `heapsight leaks TRACE` for the allocation stacks\n");
  }
}

}  // namespace heapsight::analyzer
