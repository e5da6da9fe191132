// cli/commands.h: the subcommands of the `heapsight` command.
//
// Each Register* function adds its subcommands to the CLI11 app. When one of
// them runs, it stores the process exit status in *exit_code. Errors are
// printed to stderr as "heapsight: <what>" and give a non-zero status.
#ifndef HEAPSIGHT_ANALYZER_COMMANDS_H_
#define HEAPSIGHT_ANALYZER_COMMANDS_H_

#include <CLI/CLI.hpp>

namespace heapsight::analyzer {

// record (cli/record/).
void RegisterRecordCommand(CLI::App& app, int* exit_code);
// report, leaks, dump (analyzer/).
void RegisterReportCommands(CLI::App& app, int* exit_code);
// pprof, collapse, flamegraph (analyzer/output/).
void RegisterOutputCommands(CLI::App& app, int* exit_code);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_COMMANDS_H_
