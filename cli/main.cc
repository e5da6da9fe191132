// cli/main.cc: entry point of the `heapsight` command.
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "heapsight: allocation tracer and leak detector.\n"
      "Record a program with `heapsight record -- PROG ARGS`, then analyze the trace."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "heapsight 0.1.0");
  int exit_code = 0;
  heapsight::analyzer::RegisterRecordCommand(app, &exit_code);
  // In this order in --help.
  heapsight::analyzer::RegisterReportCommand(app, &exit_code);
  heapsight::analyzer::RegisterLeaksCommand(app, &exit_code);
  heapsight::analyzer::RegisterGrowthCommand(app, &exit_code);
  heapsight::analyzer::RegisterDiffCommand(app, &exit_code);
  heapsight::analyzer::RegisterDumpCommand(app, &exit_code);
  heapsight::analyzer::RegisterProfileCommands(app, &exit_code);
  heapsight::analyzer::RegisterHtmlCommand(app, &exit_code);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "heapsight: %s\n", e.what());
    return 2;
  }
  return exit_code;
}
