// analyzer/report/leak_classes.h: the preload's reachability classification and
// free errors (issue 5), read from a trace and applied to the leak report.
//
// The preload scans the live heap at exit (and on demand) and writes
// kLeakScan + kBlockClasses records: every live block's class by memcheck's
// definitions (definitely / indirectly / possibly lost, still reachable). It
// writes kFreeError for invalid, double and mismatched frees. The analysis
// pass (leak_class_data.h) takes the last scan of a trace, keeps the blocks
// of it that are still not freed when the trace ends, and sums them per site
// (stack, api) and class; it resolves each free error's allocation (stack,
// api, size) from its id.
//
// ClassifyLeakReport splits the groups of a LeakReport (one per site) into
// one group per class present (kind definite, indirect, possible or
// reachable); blocks no scan classified (no scan ran, or allocated after it
// by threads still running at exit) keep kind "unfreed". leaked_* become the
// *lost* numbers (definite + indirect + possible, + unfreed only in a trace
// without a scan); still-reachable blocks are listed but not counted.
#ifndef HEAPSIGHT_ANALYZER_LEAK_CLASSES_H_
#define HEAPSIGHT_ANALYZER_LEAK_CLASSES_H_

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "analyzer/model/leak_class_data.h"
#include "analyzer/report/leak_report.h"
#include "analyzer/model/trace_model.h"
#include "format/trace_format.h"
#include "nlohmann/json.hpp"

namespace heapsight::analyzer {

// The leak classes and free errors of one trace. AnalyzeTrace collects them
// in its single pass (ProcessProfile::leak_classes); this runs that pass for
// callers that only need them.
absl::StatusOr<LeakClassData> ReadLeakClasses(const std::string& trace_path);

// "definite", "indirect", "possible", "reachable".
const char* LeakKindName(format::LeakClass c);
// "invalid_free", "double_free", "mismatched_free".
const char* FreeErrorName(format::FreeError e);

// Parses a --leak-kinds list: comma-separated kinds, "all", or "none";
// memcheck's spellings work too (definite/indirect/possible/reachable).
// "unfreed" (blocks no scan classified) is always counted.
absl::StatusOr<std::set<std::string>> ParseLeakKinds(const std::string& list);

struct ClassifiedProcess {
  ClassArray classes{};      // unsuppressed program blocks per class
  ClassCounts unfreed;       // not classified (no scan / allocated after it)
  bool scanned = false;
  uint64_t scan_duration_us = 0;
  uint64_t threads_missed = 0;
};

struct ClassifiedLeakReport {
  LeakReport report;  // groups split by class; leaked_* = lost (not reachable)
  std::vector<ClassifiedProcess> processes;  // parallel to report.processes
  ClassArray classes{};
  ClassCounts unfreed;
  // Free errors with their symbolized stacks, per process.
  struct Error {
    size_t process = 0;
    FreeErrorEvent event;
    std::vector<LeakFrame> free_frames;
    std::vector<LeakFrame> alloc_frames;
  };
  std::vector<Error> errors;
  uint64_t error_counts[4] = {};  // by FreeError value (1..3)
};

// `data` is parallel to `profiles`.
ClassifiedLeakReport ClassifyLeakReport(LeakReport report,
                                        const std::vector<const ProcessProfile*>& profiles,
                                        const std::vector<LeakClassData>& data);

// Bytes/blocks of the groups whose kind is in `kinds` ("unfreed" counts
// for processes without a scan): what --leak-exitcode looks at.
ClassCounts CountedLeaks(const ClassifiedLeakReport& r, const std::set<std::string>& kinds);

// LeakSanitizer-shaped text, one section per class, then the free errors
// and memcheck's LEAK SUMMARY.
std::string FormatClassifiedLeakText(const ClassifiedLeakReport& r);
// The heapsight-leaks/1 JSON plus per-class totals and errors.
nlohmann::json ClassifiedLeakJson(const ClassifiedLeakReport& r);
// For the output formats (`heapsight pprof/collapse/flamegraph
// --leak-kinds=`): every site's end-of-trace numbers (live_* when the
// profile was analyzed at the end, and leaked_*) become those of its blocks
// of the given kinds ("unfreed": blocks no scan classified). Error if the
// trace has no scan and `kinds` asks for a class.
absl::Status RestrictToLeakKinds(ProcessProfile* profile, const LeakClassData& data,
                                 const std::set<std::string>& kinds, bool live_is_end);

// Short per-process summary for `heapsight report`.
std::string FormatLeakClassSummary(const ClassifiedLeakReport& r);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_LEAK_CLASSES_H_
