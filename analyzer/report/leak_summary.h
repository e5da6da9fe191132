// analyzer/report/leak_summary.h: the short Valgrind-style summary that
// `heapsight record` prints after the program exits, and the numbers behind
// `--leak-exitcode`.
//
// API for cli/record/: after the traced program exits, call
// SummarizeTraces with every trace it left (a fork/exec family is summed),
// print it with PrintLeakSummary, and exit with the leak exit code when
// summary.totals.leaked.blocks > 0.
#ifndef HEAPSIGHT_ANALYZER_LEAK_SUMMARY_H_
#define HEAPSIGHT_ANALYZER_LEAK_SUMMARY_H_

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "analyzer/output/text_util.h"
#include "analyzer/report/leak_report.h"

namespace heapsight::analyzer {

struct LeakSummary {
  uint64_t processes = 0;
  // Summed over the processes, as the leak report counts them
  // (leak_report.h): totals.leaked is what --leak-exitcode looks at.
  LeakTotals totals;
  // Every trace holds the preload's reachability scan: the classes are
  // shown (else only the blocks not freed at exit).
  bool classified = false;
  // The largest peak heap of the processes (each process has its own
  // heap, so a family has no single peak): which process, and when.
  uint64_t peak_bytes = 0;
  uint64_t peak_pid = 0;
  std::string peak_exe;            // "" if the trace does not name it
  uint64_t peak_time_us = 0;
  ClockResolution peak_resolution = ClockResolution::kMicroseconds;
  // Processes whose image ended in exec (their blocks are discarded, not
  // leaked; totals.discarded_by_exec).
  uint64_t execs = 0;
  // The traces `heapsight leaks` has something to show for (leaks, free
  // errors, still-reachable blocks), in the order given.
  std::vector<std::string> traces_to_inspect;
  // Summed Totals (trace_model.h): estimates in sampled traces.
  uint64_t allocs = 0;
  uint64_t frees = 0;
  uint64_t bytes_allocated = 0;
  bool complete = true;            // every trace had its kEnd record
  // Largest mean sampling period of the traces (HEAPSIGHT_SAMPLE_BYTES);
  // 0 when every trace recorded every allocation.
  uint64_t sample_period_bytes = 0;
};

// Analyzes `paths` and sums them. `suppressions` is a path to a
// LeakSanitizer-style suppressions file, or "" for none.
absl::StatusOr<LeakSummary> SummarizeTraces(const std::vector<std::string>& paths,
                                            const std::string& suppressions = "");

// Prints, e.g.:
//   heapsight: LEAK SUMMARY (1 process)
//   heapsight:    leaked: 1,224 bytes in 3 blocks
//   heapsight:    peak heap: 2,048 bytes in pid 42 (prog) at 12 ms; 10 allocations, 7 frees, 1,945 bytes allocated
//   heapsight: run `heapsight leaks /tmp/prog.42.hst` for the allocation stacks
void PrintLeakSummary(std::FILE* out, const LeakSummary& summary);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_LEAK_SUMMARY_H_
