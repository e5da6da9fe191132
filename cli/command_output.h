// cli/command_output.h: where a subcommand's result goes: stdout or a file
// (-o), and the analysis helpers every trace-reading subcommand shares.
#ifndef HEAPSIGHT_CLI_COMMAND_OUTPUT_H_
#define HEAPSIGHT_CLI_COMMAND_OUTPUT_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer {

// Analyzes every trace in turn, with a progress bar on a terminal's stderr;
// on the first error prints it and returns false.
bool AnalyzeAll(const std::vector<std::string>& paths, std::vector<ProcessProfile>* profiles,
                AnalyzeOptions options = {});

std::vector<const ProcessProfile*> Pointers(const std::vector<ProcessProfile>& profiles);

// A command's text on stdout, then the symbolizer's warnings on stderr.
void Emit(const std::string& text, const std::vector<ProcessProfile>& profiles);

// Writes `data` to the file `path`, replacing it; "-" is stdout. Errors name
// the file ("<stdout>" for stdout).
absl::Status WriteOutput(const std::string& path, std::string_view data);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_CLI_COMMAND_OUTPUT_H_
