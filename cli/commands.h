// cli/commands.h: the subcommands of the `heapsight` command, one file each
// (or one per family: profile_commands.cc).
//
// Each Register* function adds its subcommands to the CLI11 app. When one of
// them runs, it stores the process exit status in *exit_code. Errors are
// printed by cli/diagnostics.h ("heapsight: <what>") and give a non-zero
// status.
#ifndef HEAPSIGHT_CLI_COMMANDS_H_
#define HEAPSIGHT_CLI_COMMANDS_H_

#include <CLI/CLI.hpp>

namespace heapsight::analyzer {

// record, options (cli/record/).
void RegisterRecordCommand(CLI::App& app, int* exit_code);
// report (report_command.cc).
void RegisterReportCommand(CLI::App& app, int* exit_code);
// leaks (leaks_command.cc).
void RegisterLeaksCommand(CLI::App& app, int* exit_code);
// growth (growth_command.cc).
void RegisterGrowthCommand(CLI::App& app, int* exit_code);
// diff (diff_command.cc).
void RegisterDiffCommand(CLI::App& app, int* exit_code);
// convert (convert_command.cc).
void RegisterConvertCommand(CLI::App& app, int* exit_code);
// dump (dump_command.cc).
void RegisterDumpCommand(CLI::App& app, int* exit_code);
// pprof, collapse, flamegraph (profile_commands.cc).
void RegisterProfileCommands(CLI::App& app, int* exit_code);
// html (html_command.cc).
void RegisterHtmlCommand(CLI::App& app, int* exit_code);
// top (top_command.cc): the live view of a `record --serve`.
void RegisterTopCommand(CLI::App& app, int* exit_code);
// attach, detach (attach_command.cc).
void RegisterAttachCommands(CLI::App& app, int* exit_code);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_CLI_COMMANDS_H_
