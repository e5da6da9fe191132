// cli/diagnostics.cc: see diagnostics.h.
#include "cli/diagnostics.h"

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "analyzer/symbols/symbolizer.h"

namespace heapsight::analyzer {

void PrintError(const absl::Status& status) { PrintError(std::string(status.message())); }

void PrintError(std::string_view text) {
  std::fprintf(stderr, "heapsight: %s\n", std::string(text).c_str());
}

int Fail(const absl::Status& status) {
  PrintError(status);
  return 1;
}

int FailUsage(const absl::Status& status) {
  PrintError(status);
  return 2;
}

void PrintWarning(std::string_view text) {
  std::fprintf(stderr, "heapsight: warning: %s\n", std::string(text).c_str());
}

void PrintSymbolizerWarnings(const ProcessProfile& profile) {
  if (profile.symbolizer == nullptr) return;
  for (const std::string& w : profile.symbolizer->warnings()) PrintWarning(w);
}

void PrintAnalysisWarnings(const ProcessProfile& profile) {
  for (const std::string& w : profile.warnings) {
    PrintWarning(absl::StrCat(profile.trace_path, ": ", w));
  }
  PrintSymbolizerWarnings(profile);
  if (profile.truncated) {
    PrintWarning(absl::StrCat(profile.trace_path, ": trace is truncated; analyzed up to the cut"));
  }
}

}  // namespace heapsight::analyzer
