// analyzer/output/totals_text.cc: see totals_text.h.
#include "analyzer/output/totals_text.h"

#include "absl/strings/str_cat.h"
#include "analyzer/output/text_util.h"

namespace heapsight::analyzer {
namespace {

std::string Mark(const Totals& t, const std::string& error) {
  if (!t.estimated) return "";
  if (error.empty()) return " (estimate)";
  return absl::StrCat(" (estimate, +/- ", error, ")");
}

}  // namespace

std::string TotalBytes(const Totals& t, uint64_t bytes, int64_t error) {
  return Bytes(bytes) + Mark(t, error < 0 ? "" : Bytes(static_cast<uint64_t>(error)));
}

std::string TotalCount(const Totals& t, uint64_t count, int64_t error) {
  return Thousands(count) + Mark(t, error < 0 ? "" : Thousands(static_cast<uint64_t>(error)));
}

std::string CompactNote(const Totals& t) {
  return t.compact_frees ? std::string(kCompactNoteText) : std::string();
}

std::string EstimateNote(const Totals& t) {
  if (!t.estimated) return "";
  return absl::StrCat("sampled trace: one allocation per ", Bytes(t.sample_period),
                      " allocated was recorded, on average (HEAPSIGHT_SAMPLE_BYTES), ",
                      Thousands(t.sampled_allocs), t.sampled_allocs == 1 ? " allocation" : " allocations",
                      " of ", Bytes(t.sampled_bytes),
                      " in all; totals are estimates of the unsampled program, +/- two standard "
                      "errors (about 95%) where known, and so are the call-site lists "
                      "(see ", kGlossaryPath, ")");
}

}  // namespace heapsight::analyzer
