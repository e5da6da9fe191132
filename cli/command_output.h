// cli/command_output.h: where a subcommand's result goes: stdout or a file
// (-o), and the analysis helpers every trace-reading subcommand shares.
#ifndef HEAPSIGHT_CLI_COMMAND_OUTPUT_H_
#define HEAPSIGHT_CLI_COMMAND_OUTPUT_H_

#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer {

// Analyzes one trace through the persistent analysis cache
// (analyzer/cache/analysis_cache.h) unless --no-cache or HEAPSIGHT_NO_CACHE
// turned it off. Every command that reads a trace's analysis calls this.
absl::StatusOr<ProcessProfile> AnalyzeOneTrace(const std::string& path,
                                               const AnalyzeOptions& options);

// Adds --no-cache to every subcommand of `app` that analyzes traces.
void AddNoCacheOption(CLI::App& app);

// Analyzes every trace in turn (AnalyzeOneTrace), with a progress bar on a terminal's stderr;
// on the first error prints it and returns false.
bool AnalyzeAll(const std::vector<std::string>& paths, std::vector<ProcessProfile>* profiles,
                AnalyzeOptions options = {});

std::vector<const ProcessProfile*> Pointers(const std::vector<ProcessProfile>& profiles);

// A command's text on stdout, then the symbolizer's warnings on stderr.
void Emit(const std::string& text, const std::vector<ProcessProfile>& profiles);

// Writes `data` to the file `path`, replacing it; "-" is stdout. Errors name
// the file ("<stdout>" for stdout).
absl::Status WriteOutput(const std::string& path, std::string_view data);

// The file a command writes when -o is not given: the first trace's name in
// the current directory, ".hst" replaced by `extension`
// (heapsight.prog.123.hst -> heapsight.prog.123.pb.gz); with several traces
// (a family) ".family" comes before the extension.
std::string DefaultOutputPath(const std::vector<std::string>& traces, std::string_view extension);

// Writes `data` to `path` (as WriteOutput) and, for a file, says on stderr
// what was written where ("heapsight: wrote <what> to <path>").
absl::Status WriteOutputAndTell(const std::string& path, std::string_view data,
                                std::string_view what);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_CLI_COMMAND_OUTPUT_H_
