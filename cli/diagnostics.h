// cli/diagnostics.h: the one place the command prints errors and warnings,
// to stderr, as "heapsight: <what>" and "heapsight: warning: <what>".
#ifndef HEAPSIGHT_CLI_DIAGNOSTICS_H_
#define HEAPSIGHT_CLI_DIAGNOSTICS_H_

#include <string_view>

#include "absl/status/status.h"
#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer {

// "heapsight: <status message>".
void PrintError(const absl::Status& status);
// "heapsight: <text>".
void PrintError(std::string_view text);
// PrintError, then the exit status of a failed command (1).
int Fail(const absl::Status& status);
// PrintError, then the exit status of a usage error (2, README "Exit
// status"): a bad option value, found before any trace is read.
int FailUsage(const absl::Status& status);
// "heapsight: warning: <text>".
void PrintWarning(std::string_view text);

// The symbolizer's warnings about `profile`'s modules (missing files,
// build-id mismatches), each once.
void PrintSymbolizerWarnings(const ProcessProfile& profile);
// Everything the analysis of `profile` warns about: its own warnings
// ("<trace>: <what>"), the symbolizer's, and a truncated trace.
void PrintAnalysisWarnings(const ProcessProfile& profile);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_CLI_DIAGNOSTICS_H_
