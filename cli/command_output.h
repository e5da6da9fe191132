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

// The trace arguments of a command, made readable:
//  - none: the newest heapsight.*.hst in the current directory, and a note
//    on stderr naming it; none there is a usage error (exit 2);
//  - "-": standard input. The reader seeks, so a pipe is first copied to an
//    unlinked file (O_TMPFILE, else mkstemp + unlink) in $TMPDIR (else
//    /tmp), mode 0600, gone when the command exits; a redirected regular
//    file is read in place. Messages call it "<stdin>". "-" may appear once.
// Errors carry their exit status (diagnostics.h WithExitStatus).
absl::Status ResolveTraceArguments(std::vector<std::string>* traces);

// ResolveTraceArguments, then analyzes every trace in turn (AnalyzeOneTrace), with a progress
// bar on a terminal's stderr. Returns 0, or prints the first error and
// returns its exit status (kExitUsage, kExitBadInput).
int AnalyzeTraces(std::vector<std::string> paths, std::vector<ProcessProfile>* profiles,
                  AnalyzeOptions options = {});

// As AnalyzeTraces, true for 0 (kept for callers that exit 1 on failure).
bool AnalyzeAll(const std::vector<std::string>& paths, std::vector<ProcessProfile>* profiles,
                AnalyzeOptions options = {});

std::vector<const ProcessProfile*> Pointers(const std::vector<ProcessProfile>& profiles);

// A command's text on stdout (the stdin trace named "<stdin>"; report
// text coloured when stdout is, terminal_color.h), then the symbolizer's
// warnings on stderr.
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
