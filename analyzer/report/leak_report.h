// analyzer/report/leak_report.h: the `heapsight leaks` report, from the
// trace's data to LeakSanitizer-shaped text or JSON (schema:
// docs/leak-json-schema.md, docs/leak-report.schema.json).
//
// One pipeline: BuildLeakReport takes the blocks not freed at exit of every
// call site (stack, api), splits each site by the reachability classes of
// the preload's last scan (model/leak_class_data.h: memcheck's definitely /
// indirectly / possibly lost and still reachable; blocks no scan judged are
// kUnclassified, kind "unfreed"), applies the suppressions, symbolizes the
// stacks and sums everything into LeakTotals per process and for the
// report. FormatLeakText and FormatLeakJson render it; the record summary
// (leak_summary.h) and `heapsight report` reuse the same report.
//
// "Leaked" is "lost": definite + indirect + possible, plus the unclassified
// blocks of a trace without a scan. Still-reachable blocks are listed but
// not counted. Runtime blocks (runtime_filter.h) are never groups; their
// total is reported separately. A process image that ended in a successful
// exec (ProcessProfile::EndedInExec) has no leaks: the kernel discarded its
// heap, so its blocks not freed are never groups and count only in
// LeakTotals::discarded_by_exec. This is the one place that decides which
// processes' blocks count; every total, summary and exit code reads it.
#ifndef HEAPSIGHT_ANALYZER_LEAK_REPORT_H_
#define HEAPSIGHT_ANALYZER_LEAK_REPORT_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "analyzer/model/leak_class_data.h"
#include "analyzer/model/trace_model.h"
#include "analyzer/output/attach_window.h"
#include "analyzer/report/site_json.h"
#include "analyzer/report/suppressions.h"
#include "analyzer/symbols/symbolizer.h"
#include "format/trace_format.h"
#include "nlohmann/json.hpp"

namespace heapsight::analyzer {

// The kind name of a class in text options and JSON: "definite",
// "indirect", "possible", "reachable", "unfreed" (kUnclassified).
const char* LeakKindName(LeakClass c);
// "invalid_free", "double_free", "mismatched_free".
const char* FreeErrorName(format::FreeError e);

// A set of classes: what --leak-kinds and --show-kinds select.
using LeakKinds = std::set<LeakClass>;

// Parses a --leak-kinds list: comma-separated kinds, "all", or "none";
// memcheck's spellings work too (definite/indirect/possible/reachable).
// kUnclassified ("unfreed": blocks no scan classified) is always in.
absl::StatusOr<LeakKinds> ParseLeakKinds(const std::string& list);

// A frame of a leak's stack: a view of the symbolizer's strings (valid while
// the profile whose symbolizer made it lives). ToSiteFrame gives the shape
// every JSON output shares.
struct LeakFrame {
  uint64_t address;
  const std::string& function;  // demangled, "" if unknown
  const std::string& file;      // "" if unknown
  int line;
  const std::string& module;    // module path, "" if unknown
  uint64_t offset;              // address - module load address
  bool inlined;

  SiteFrame ToSiteFrame() const;
};

// A leak's stack, interned: 16 bytes per source frame (a pointer to the
// symbolizer's location, which is symbolized once and shared by every stack
// through that address, and the index of the inlined frame in it) instead
// of a copy of every string of every frame of every group. Inlined frames
// expanded, leaf first, allocator frames dropped (as SymbolizeStack).
class LeakStack {
 public:
  LeakStack() = default;
  explicit LeakStack(const std::vector<const SymbolizedLocation*>& locations);

  size_t size() const { return refs_.size(); }
  bool empty() const { return refs_.empty(); }
  LeakFrame operator[](size_t i) const;

  class Iterator {
   public:
    Iterator(const LeakStack* stack, size_t i) : stack_(stack), i_(i) {}
    LeakFrame operator*() const { return (*stack_)[i_]; }
    Iterator& operator++() {
      ++i_;
      return *this;
    }
    bool operator!=(const Iterator& o) const { return i_ != o.i_; }
    bool operator==(const Iterator& o) const { return i_ == o.i_; }

   private:
    const LeakStack* stack_;
    size_t i_;
  };
  Iterator begin() const { return Iterator(this, 0); }
  Iterator end() const { return Iterator(this, refs_.size()); }

 private:
  struct Ref {
    const SymbolizedLocation* location;
    size_t index;  // into location->frames
  };
  std::vector<Ref> refs_;
};

// The blocks of one call site and class.
struct LeakGroup {
  LeakClass kind = LeakClass::kUnclassified;
  ClassCounts counts;
  format::Api api = format::Api::kUnknown;
  uint64_t stack = 0;     // leaf stack node in its trace
  size_t process = 0;     // index into LeakReport::processes
  LeakStack frames;  // allocator frames dropped; inlined frames expanded
  StackCut cut;                   // the preload recorded only the innermost frames
  std::string suppressed_by;      // the matching pattern, "" if not suppressed
};

// A free error with its symbolized stacks.
struct LeakFreeError {
  size_t process = 0;  // index into LeakReport::processes
  FreeErrorEvent event;
  LeakStack free_frames;
  LeakStack alloc_frames;
  StackCut free_cut;
  StackCut alloc_cut;
};

// The numbers of one process, or summed over several.
struct LeakTotals {
  LeakClassCounts classes;  // unsuppressed program blocks per class
  ClassCounts leaked;       // lost (see above); what the summaries call leaked
  ClassCounts suppressed;   // matched by a suppression
  ClassCounts runtime;      // held by the C/C++ runtime at exit, never reported
  // Not freed when the image was replaced by exec (runtime blocks too): the
  // kernel discarded them with the image; information, never leaks.
  ClassCounts discarded_by_exec;
  // Not freed when `heapsight record` closed the segment by rotation: the
  // process ran on, the next segment has them as inherited; never leaks.
  ClassCounts carried_by_rotation;
  // Every block not freed at exit (Totals::leaked_*, the number `report`
  // prints): classes + suppressed + runtime. 0 for an image that ended in
  // exec (it has no exit; its blocks are discarded_by_exec).
  ClassCounts not_freed;
  // A sampled trace: every count here and in the groups is an estimate
  // (Go's scaling of each site's blocks, sample_estimate.h).
  bool estimated = false;
  // The trace's frees are compact (Totals::compact_frees): counts and bytes
  // per site are exact, which blocks (their allocation times) approximate.
  bool compact_frees = false;
  uint64_t free_errors[4] = {};  // by FreeError value; [0]: values no preload writes

  LeakTotals& operator+=(const LeakTotals& o);
  uint64_t FreeErrorCount() const;
};

struct LeakProcess {
  uint64_t pid = 0;
  uint64_t ppid = 0;
  std::string exe;
  std::string trace;
  bool complete = false;
  bool truncated = false;
  bool scanned = false;  // the trace holds a reachability scan
  bool ended_in_exec = false;  // ProcessProfile::EndedInExec
  std::string exec_path;       // what it exec'd, if it did
  bool rotated = false;        // ProcessProfile::EndedInRotation
  std::string next_segment;    // NextSegmentName, if rotated
  // Why the trace has no scan, in words ("" if it has one): exec, a
  // sampled trace, a trace cut short, the preload stepping aside, or
  // HEAPSIGHT_LEAK_SCAN=0.
  std::string no_scan_reason;
  uint64_t scan_duration_us = 0;
  uint64_t threads_missed = 0;
  LeakTotals totals;
  // An attached window (issue 19, attach_window.h): its words, "" if the
  // trace covers the whole run.
  std::string window;
  std::string window_leak_note;
  AttachWindow window_info;
};

struct LeakReport {
  std::vector<LeakProcess> processes;
  // Unsuppressed groups: by process, then class (definite, indirect,
  // possible, reachable, unfreed), then bytes descending.
  std::vector<LeakGroup> groups;
  std::vector<LeakGroup> suppressed;  // same order
  std::vector<LeakFreeError> errors;  // per process, in time order
  LeakTotals totals;                  // summed over the processes
  bool complete = true;               // every trace had its end record
  // The unique addresses the symbolizers resolved (for these stacks and
  // anything symbolized before), and those left without a function name,
  // by reason (JSON "symbols").
  SymbolStats symbols;
};

// Why `profile` holds no reachability scan, as a phrase for warnings
// ("" if it holds one).
std::string NoScanReason(const ProcessProfile& profile);

// Builds the report over `profiles` (their leak_classes and symbolizers
// are used; the report's frames point into the symbolizers, so it must not
// outlive the profiles). With `with_frames` false the groups' and errors'
// frames stay empty (counts, classes and suppressions are the same): for
// callers that print only totals; then, with no suppressions either, no
// stack is symbolized.
LeakReport BuildLeakReport(const std::vector<const ProcessProfile*>& profiles,
                           const Suppressions& suppressions, bool with_frames = true);
// The same report's processes, totals and free errors (without frames),
// and no groups: what FormatLeakClassSummary prints, without building,
// cutting and sorting a group per leaked site (cc1plus: 54 k). Nothing is
// symbolized.
LeakReport BuildLeakTotals(const std::vector<const ProcessProfile*>& profiles);

// Bytes/blocks of the unsuppressed groups whose class is in `kinds`
// (unclassified blocks only for processes without a scan): what
// --leak-exitcode looks at.
ClassCounts CountedLeaks(const LeakReport& report, const LeakKinds& kinds);

// LeakSanitizer-shaped text, one section per class, then the free errors
// and memcheck's LEAK SUMMARY.
std::string FormatLeakText(const LeakReport& report);
// The heapsight-leaks/1 JSON document with per-class totals and errors.
nlohmann::json LeakReportToJson(const LeakReport& report);
// The JSON document as indented text; invalid UTF-8 in names (traces are
// untrusted) is replaced with U+FFFD instead of failing.
std::string FormatLeakJson(const LeakReport& report);
// Short per-process summary of the classes for `heapsight report`.
std::string FormatLeakClassSummary(const LeakReport& report);

// The leak classes and free errors of one trace. AnalyzeTrace collects them
// in its single pass (ProcessProfile::leak_classes); this runs that pass for
// callers that only need them.
absl::StatusOr<LeakClassData> ReadLeakClasses(const std::string& trace_path);

// For the output formats (`heapsight pprof/collapse/flamegraph
// --leak-kinds=`): every site's end-of-trace numbers (live_* when the
// profile was analyzed at the end, and leaked_*) become those of its blocks
// of the given kinds (kUnclassified: blocks no scan classified). Error if the
// trace has no scan and `kinds` asks for a class.
absl::Status RestrictToLeakKinds(ProcessProfile* profile, const LeakClassData& data,
                                 const LeakKinds& kinds, bool live_is_end);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_LEAK_REPORT_H_
