// cli/diagnostics.h: the one place the command prints errors and warnings,
// to stderr, as "heapsight: <what>" and "heapsight: warning: <what>"
// ("heapsight:" in bold red and "warning:" in bold yellow when stderr is
// coloured, cli/terminal_color.h), and the exit statuses that go with them
// (docs/cli.md "Exit status").
#ifndef HEAPSIGHT_CLI_DIAGNOSTICS_H_
#define HEAPSIGHT_CLI_DIAGNOSTICS_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer {

// Exit statuses of every subcommand (README and docs/cli.md "Exit status";
// the leak and diff gates use the statuses the user sets).
inline constexpr int kExitFailure = 1;   // any other error (e.g. cannot write the output)
inline constexpr int kExitUsage = 2;     // bad command line, or no trace to read
inline constexpr int kExitBadInput = 3;  // a trace missing, unreadable, not a trace or corrupt
// The output was written, from the recorded part of a trace that was cut
// short (no end record: the process was killed or still runs; or the file
// ends inside a block). Only when the command would otherwise exit 0.
inline constexpr int kExitCutShort = 4;

// A trace this command read was cut short: warns on stderr (once per trace)
// and makes ExitStatusAfterRun give kExitCutShort. `truncated`: the file
// ends inside a block (else it has no end record).
void NoteCutShortTrace(std::string_view path, bool truncated);
// The command's final status: `status`, or kExitCutShort when it is 0 and
// a trace was cut short (usage errors, bad input, failures and the gates'
// statuses are kept).
int ExitStatusAfterRun(int status);

// `status` marked with the exit status Fail() gives it (a payload; the
// message is unchanged).
absl::Status WithExitStatus(absl::Status status, int exit_status);
// WithExitStatus(status, kExitBadInput): an error about an input trace.
absl::Status BadInput(absl::Status status);
// --family finds a trace's relatives in the trace's directory; standard
// input ("-") has none: a usage error (kExitUsage) naming what to do.
absl::Status CheckFamilyArguments(const std::vector<std::string>& traces, bool family);

// "heapsight: <status message>".
void PrintError(const absl::Status& status);
// "heapsight: <text>".
void PrintError(std::string_view text);
// PrintError, then the exit status of a failed command: the one
// WithExitStatus() marked, else kExitFailure (1).
int Fail(const absl::Status& status);
// PrintError, then the exit status of a usage error (2): a bad option
// value, found before any trace is read.
int FailUsage(const absl::Status& status);
// PrintError, then kExitBadInput (3): a trace that cannot be read.
int FailInput(const absl::Status& status);
// "heapsight: warning: <text>".
void PrintWarning(std::string_view text);
// "heapsight: <text>", a note (e.g. which trace a command took).
void PrintNote(std::string_view text);

// Messages and reports name the trace read from standard input (spooled to
// an unlinked file, command_output.h) "<stdin>" instead of `path`, the
// file's /proc/self/fd name.
void SetStdinTracePath(std::string path);
// `text` with the stdin trace's path replaced by "<stdin>".
std::string NameStdin(std::string_view text);

// The symbolizer's warnings about `profile`'s modules (missing files,
// build-id mismatches), each once.
void PrintSymbolizerWarnings(const ProcessProfile& profile);
// Everything the analysis of `profile` warns about: its own warnings
// ("<trace>: <what>"), the symbolizer's, and a truncated trace.
void PrintAnalysisWarnings(const ProcessProfile& profile);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_CLI_DIAGNOSTICS_H_
