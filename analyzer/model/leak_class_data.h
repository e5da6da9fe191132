// analyzer/model/leak_class_data.h: what a trace says about the reachability of
// its leaked blocks and about its free errors (issue 5), as collected by the
// single analysis pass (AnalyzeTrace fills ProcessProfile::leak_classes), and
// the counts every leak number is made of.
//
// The preload scans the live heap at exit (and on demand) and writes
// kLeakScan + kBlockClasses records; it writes kFreeError for invalid, double
// and mismatched frees. The analysis keeps the classes of the last scan, joins
// them at the end of the trace with the blocks still live then (blocks freed
// after the scan are no longer leaks) and sums them per site and class; it
// resolves each free error's allocation (stack, api, size) from its id.
// report/leak_report.h turns this into the leak report.
#ifndef HEAPSIGHT_ANALYZER_LEAK_CLASS_DATA_H_
#define HEAPSIGHT_ANALYZER_LEAK_CLASS_DATA_H_

#include <array>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "format/trace_format.h"

namespace heapsight::analyzer {

// memcheck's four classes, and kUnclassified for a block no scan judged
// (the trace has no scan, or the block was allocated after it).
using LeakClass = format::LeakClass;

// Every class, in the order reports list them.
inline constexpr LeakClass kLeakClassesInOrder[] = {
    LeakClass::kDefinite, LeakClass::kIndirect, LeakClass::kPossible, LeakClass::kReachable,
    LeakClass::kUnclassified};

// Bytes and blocks: of one class, one group, one process or several.
struct ClassCounts {
  uint64_t bytes = 0;
  uint64_t blocks = 0;

  ClassCounts& operator+=(const ClassCounts& o) {
    bytes += o.bytes;
    blocks += o.blocks;
    return *this;
  }
};

// ClassCounts per LeakClass.
class LeakClassCounts {
 public:
  ClassCounts& operator[](LeakClass c) { return counts_[static_cast<size_t>(c)]; }
  const ClassCounts& operator[](LeakClass c) const { return counts_[static_cast<size_t>(c)]; }

  LeakClassCounts& operator+=(const LeakClassCounts& o) {
    for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    return *this;
  }

  // The blocks of memcheck's four classes.
  ClassCounts Classified() const {
    ClassCounts sum;
    for (size_t i = 1; i < counts_.size(); ++i) sum += counts_[i];
    return sum;
  }

  // What is leaked ("lost"): definitely + indirectly + possibly lost. Blocks
  // no scan classified count only in a trace without a scan; after a scan
  // they are blocks other threads allocated while the process was ending.
  ClassCounts Lost(bool scanned) const {
    ClassCounts sum = (*this)[LeakClass::kDefinite];
    sum += (*this)[LeakClass::kIndirect];
    sum += (*this)[LeakClass::kPossible];
    if (!scanned) sum += (*this)[LeakClass::kUnclassified];
    return sum;
  }

 private:
  std::array<ClassCounts, format::kLeakClassCount + 1> counts_{};  // index: LeakClass
};

struct FreeErrorEvent {
  format::FreeError error = format::FreeError::kInvalidFree;
  format::FreeAction action = format::FreeAction::kPassed;
  format::Api free_api = format::Api::kUnknown;
  uint64_t address = 0;
  uint64_t free_stack = 0;
  uint64_t time_us = 0;
  uint64_t alloc_id = 0;     // 0 = unknown
  bool alloc_known = false;  // the allocation record was found
  format::Api alloc_api = format::Api::kUnknown;
  uint64_t alloc_size = 0;
  uint64_t alloc_stack = 0;
};

struct LeakClassData {
  bool scanned = false;  // a scan's results are in the trace
  uint64_t scan = 0;     // its number
  format::ScanReason reason = format::ScanReason::kExit;
  uint64_t duration_us = 0;
  uint64_t threads_stopped = 0;
  uint64_t threads_missed = 0;
  uint64_t root_bytes = 0;
  // Blocks of that scan still live at the end of the trace, per site
  // (stack, api) and class (never kUnclassified here).
  absl::flat_hash_map<std::pair<uint64_t, uint8_t>, LeakClassCounts> sites;
  std::vector<FreeErrorEvent> errors;  // in time order
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_LEAK_CLASS_DATA_H_
