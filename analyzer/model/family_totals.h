// analyzer/model/family_totals.h: the totals of several processes (a
// fork/exec family, or any traces given together), from each process's
// Totals (trace_model.h), so a family's numbers never exceed the sum of
// its processes' and every command sums them the same way.
#ifndef HEAPSIGHT_ANALYZER_MODEL_FAMILY_TOTALS_H_
#define HEAPSIGHT_ANALYZER_MODEL_FAMILY_TOTALS_H_

#include <cstdint>
#include <vector>

#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer {

struct FamilyTotals {
  uint64_t processes = 0;
  uint64_t incomplete = 0;  // traces without an end record (or cut)
  // Sums of each process's Totals, except: leaked_* leaves out images that
  // ended in exec (their blocks were discarded by exec, docs/glossary.md),
  // which discarded_* counts, and segments closed by rotation (the process
  // ran on into the next segment), which carried_* counts; peak_* is the largest peak of one process
  // (each process has its own heap: a family has no single peak), and
  // `peak` says whose. estimated: any process's totals are estimates;
  // errors combine as independent (root of the summed squares);
  // temporary_known: every process's is.
  Totals sum;
  uint64_t discarded_bytes = 0;
  uint64_t discarded_blocks = 0;
  uint64_t execs = 0;                     // images that ended in exec
  uint64_t carried_bytes = 0;
  uint64_t carried_blocks = 0;
  uint64_t rotations = 0;                 // segments closed by rotation
  const ProcessProfile* peak = nullptr;   // null when `profiles` is empty
  RuntimeTotals runtime;
};

FamilyTotals SumTotals(const std::vector<const ProcessProfile*>& profiles);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_FAMILY_TOTALS_H_
