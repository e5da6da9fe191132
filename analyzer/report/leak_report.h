// analyzer/report/leak_report.h: the `heapsight leaks` report: blocks not freed at
// exit, grouped by (stack, api), sorted by bytes, in LeakSanitizer's text
// shape or as JSON (schema: docs/leak-json-schema.md,
// docs/leak-report.schema.json).
//
// Every group carries a `kind`. Until reachability classification exists,
// every program block not freed at exit has kind "unfreed". Runtime blocks
// (runtime_filter.h) are never groups; their total is reported separately.
#ifndef HEAPSIGHT_ANALYZER_LEAK_REPORT_H_
#define HEAPSIGHT_ANALYZER_LEAK_REPORT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "analyzer/report/suppressions.h"
#include "analyzer/model/trace_model.h"
#include "format/trace_format.h"
#include "nlohmann/json.hpp"

namespace heapsight::analyzer {

inline constexpr char kKindUnfreed[] = "unfreed";

struct LeakFrame {
  uint64_t address = 0;
  std::string function;  // demangled, "" if unknown
  std::string file;      // "" if unknown
  int line = 0;
  std::string module;    // module path, "" if unknown
  uint64_t offset = 0;   // address - module load address
  bool inlined = false;
};

struct LeakGroup {
  std::string kind = kKindUnfreed;
  uint64_t bytes = 0;
  uint64_t blocks = 0;
  format::Api api = format::Api::kUnknown;
  uint64_t stack = 0;     // leaf stack node in its trace
  size_t process = 0;     // index into LeakReport::processes
  std::vector<LeakFrame> frames;  // allocator frames dropped; inlined frames expanded
  std::string suppressed_by;      // the matching pattern, "" if not suppressed
};

struct LeakProcess {
  uint64_t pid = 0;
  uint64_t ppid = 0;
  std::string exe;
  std::string trace;
  bool complete = false;
  bool truncated = false;
  uint64_t leaked_bytes = 0;      // unsuppressed program groups
  uint64_t leaked_blocks = 0;
  uint64_t suppressed_bytes = 0;
  uint64_t suppressed_blocks = 0;
  uint64_t runtime_bytes = 0;     // held by the runtime at exit, never reported
  uint64_t runtime_blocks = 0;
};

struct LeakReport {
  std::vector<LeakProcess> processes;
  std::vector<LeakGroup> groups;      // unsuppressed; by process, then bytes descending
  std::vector<LeakGroup> suppressed;  // same order
  uint64_t leaked_bytes = 0;
  uint64_t leaked_blocks = 0;
  uint64_t suppressed_bytes = 0;
  uint64_t suppressed_blocks = 0;
  uint64_t runtime_bytes = 0;
  uint64_t runtime_blocks = 0;
  bool complete = true;  // every trace had its end record
};

// Builds the report over `profiles` (their symbolizers are used).
LeakReport BuildLeakReport(const std::vector<const ProcessProfile*>& profiles,
                           const Suppressions& suppressions);

// LeakSanitizer-shaped text.
std::string FormatLeakText(const LeakReport& report);
// JSON document (see docs/leak-json-schema.md).
nlohmann::json LeakReportToJson(const LeakReport& report);
// The JSON document as indented text; invalid UTF-8 in names (traces are
// untrusted) is replaced with U+FFFD instead of failing.
std::string FormatLeakJson(const LeakReport& report);

// One LeakFrame per source frame of `stack` (inlined frames expanded).
std::vector<LeakFrame> ToLeakFrames(const std::vector<const SymbolizedLocation*>& stack);
// LeakSanitizer's frame lines: "    #N 0xADDR in FUNCTION FILE:LINE", or the
// module and offset when there is no source location.
std::string FormatLeakFrames(const std::vector<LeakFrame>& frames);
// The frames as the JSON report's "frames" array (docs/leak-json-schema.md).
nlohmann::json LeakFramesJson(const std::vector<LeakFrame>& frames);

// Text header for a group of this kind, e.g. "Direct leak".
std::string KindHeading(const std::string& kind);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_LEAK_REPORT_H_
