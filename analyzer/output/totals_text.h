// analyzer/output/totals_text.h: a trace total as text, marked as an
// estimate (with its error bound) in a sampled trace. Every command that
// prints Totals (report, leaks' summary lines, record's summary, growth,
// diff, html) formats them here, so the same number reads the same way.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_TOTALS_TEXT_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_TOTALS_TEXT_H_

#include <cstdint>
#include <string>

#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer {

// Bytes(bytes), followed in a sampled trace (t.estimated) by
// " (estimate, +/- ERROR)" or, with no known error (error < 0), " (estimate)".
std::string TotalBytes(const Totals& t, uint64_t bytes, int64_t error = -1);
// Thousands(count), marked the same way.
std::string TotalCount(const Totals& t, uint64_t count, int64_t error = -1);

// One line (no newline) saying a sampled trace's totals are estimates:
// the mean sampling period, how many allocations were recorded, what the
// +/- means. "" for an exact trace.
std::string EstimateNote(const Totals& t);

// One line (no newline) saying what a trace with compact frees
// (Totals::compact_frees) keeps exact and what is approximate. "" for a
// trace whose frees name their blocks.
std::string CompactNote(const Totals& t);
inline constexpr char kCompactNoteText[] =
    "compact frees (HEAPSIGHT_COMPACT_FREES): each free released the oldest live block of its "
    "stack and size, so every count and byte total per call site is exact (allocated, peak, "
    "live, not freed, leak classes) while block lifetimes, temporary allocations and the "
    "allocation times of blocks not freed are approximate";

// The glossary every number's definition is in (docs/glossary.md).
inline constexpr char kGlossaryPath[] = "docs/glossary.md";

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_TOTALS_TEXT_H_
