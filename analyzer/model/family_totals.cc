// analyzer/model/family_totals.cc: see family_totals.h.
#include "analyzer/model/family_totals.h"

#include <algorithm>
#include <cmath>

#include "analyzer/model/sample_estimate.h"

namespace heapsight::analyzer {
namespace {

// Adds an independent error to a combined one (both two standard errors).
void AddError(uint64_t& total, uint64_t error) {
  double a = static_cast<double>(total), b = static_cast<double>(error);
  total = static_cast<uint64_t>(TruncateSaturating(std::round(std::sqrt(a * a + b * b))));
}

}  // namespace

FamilyTotals SumTotals(const std::vector<const ProcessProfile*>& profiles) {
  FamilyTotals f;
  Totals& s = f.sum;
  for (const ProcessProfile* p : profiles) {
    const Totals& t = p->totals;
    ++f.processes;
    if (!p->complete) ++f.incomplete;
    for (size_t i = 0; i < s.allocs_by_api.size(); ++i) {
      s.allocs_by_api[i] += t.allocs_by_api[i];
      s.frees_by_api[i] += t.frees_by_api[i];
    }
    s.allocs += t.allocs;
    s.frees += t.frees;
    s.bytes_allocated += t.bytes_allocated;
    if (p->EndedInExec()) {
      ++f.execs;
      f.discarded_bytes += t.leaked_bytes;
      f.discarded_blocks += t.leaked_blocks;
    } else if (p->EndedInRotation()) {
      ++f.rotations;
      f.carried_bytes += t.leaked_bytes;
      f.carried_blocks += t.leaked_blocks;
    } else {
      s.leaked_bytes += t.leaked_bytes;
      s.leaked_blocks += t.leaked_blocks;
      AddError(s.leaked_bytes_error, t.leaked_bytes_error);
    }
    s.temporary += t.temporary;
    s.inherited_bytes += t.inherited_bytes;
    s.inherited_blocks += t.inherited_blocks;
    if (f.peak == nullptr || t.peak_bytes > s.peak_bytes) {
      s.peak_bytes = t.peak_bytes;
      s.peak_blocks = t.peak_blocks;
      s.peak_time_us = t.peak_time_us;
      s.peak_bytes_error = t.peak_bytes_error;
      f.peak = p;
    }
    s.failed_allocs += t.failed_allocs;
    s.bad_frees += t.bad_frees;
    s.unmatched_frees += t.unmatched_frees;
    s.lost_events += t.lost_events;
    if (t.estimated) {
      s.estimated = true;
      s.sample_period = std::max(s.sample_period, t.sample_period);
      s.sampled_allocs += t.sampled_allocs;
      s.sampled_bytes += t.sampled_bytes;
    }
    AddError(s.allocs_error, t.allocs_error);
    AddError(s.bytes_allocated_error, t.bytes_allocated_error);
    s.temporary_known = s.temporary_known && t.temporary_known;
    f.runtime.allocs += p->runtime_totals.allocs;
    f.runtime.bytes_allocated += p->runtime_totals.bytes_allocated;
    if (!p->EndedInExec() && !p->EndedInRotation()) {
      f.runtime.leaked_bytes += p->runtime_totals.leaked_bytes;
      f.runtime.leaked_blocks += p->runtime_totals.leaked_blocks;
    }
  }
  return f;
}

}  // namespace heapsight::analyzer
