// cli/main.cc: entry point of the `heapsight` command.
//
// Two rules hold for every subcommand here, in one place:
// - a command-line (usage) error exits 2, CLI11's own errors included;
// - everything written to stdout is checked: a failed write (full disk,
//   closed pipe with SIGPIPE ignored) or a failed final flush/close turns
//   the status non-zero with "heapsight: error writing standard output".
#include <stdio_ext.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <string>

#include <CLI/CLI.hpp>

#include "cli/command_output.h"
#include "cli/commands.h"
#include "cli/diagnostics.h"
#include "cli/manual.h"
#include "cli/terminal_color.h"

namespace {


// The footer of `heapsight --help` and of every command that prints
// numbers: where each one is defined.
constexpr char kGlossaryFooter[] =
    "What every number means (allocated, peak, live, not freed at exit, temporary, the leak "
    "classes, the C/C++ runtime's blocks, estimates of sampled traces, discarded by exec): "
    "docs/glossary.md in the heapsight sources.";

// Appends the glossary footer to the commands that print numbers (after
// any footer of their own).
void AddGlossaryFooters(CLI::App& app) {
  app.footer(kGlossaryFooter);
  for (const char* name : {"record", "report", "leaks", "growth", "diff", "pprof", "collapse",
                           "flamegraph", "html"}) {
    CLI::App* sub = nullptr;
    for (CLI::App* candidate : app.get_subcommands({})) {
      if (candidate->get_name() == name) sub = candidate;
    }
    if (sub == nullptr) continue;
    std::string footer = sub->get_footer();
    sub->footer(footer.empty() ? std::string(kGlossaryFooter)
                               : footer + "\n\n" + kGlossaryFooter);
  }
}

// Flushes and closes stdout. False (errno set, or 0 when only the stream's
// error indicator tells) if any write to it failed, earlier or now.
bool CloseStdout() {
  bool pending = __fpending(stdout) != 0;
  bool earlier_error = std::ferror(stdout) != 0;
  errno = 0;
  bool close_failed = std::fclose(stdout) != 0;
  if (earlier_error) {
    if (!close_failed) errno = 0;
    return false;
  }
  // fclose of an already closed fd 1 with nothing to write is not an error.
  return !(close_failed && (pending || errno != EBADF));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "heapsight: allocation tracer and leak detector.\n"
      "Record a program with `heapsight record -- PROG ARGS`, then analyze the trace."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "heapsight 0.1.0");
  // A global option: before the subcommand or among its options
  // (fallthrough), e.g. `heapsight leaks --color=always TRACE`.
  app.fallthrough();
  app.add_option_function<std::string>(
         "--color",
         [](const std::string& value) {
           heapsight::analyzer::SetColorMode(*heapsight::analyzer::ParseColorMode(value));
         },
         "Colour in terminal output (leak kinds, headers, errors): auto (when the output is a "
         "terminal and NO_COLOR is unset or empty), always or never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->default_str("auto");
  int exit_code = 0;
  heapsight::analyzer::RegisterRecordCommand(app, &exit_code);
  // In this order in --help.
  heapsight::analyzer::RegisterReportCommand(app, &exit_code);
  heapsight::analyzer::RegisterLeaksCommand(app, &exit_code);
  heapsight::analyzer::RegisterGrowthCommand(app, &exit_code);
  heapsight::analyzer::RegisterDiffCommand(app, &exit_code);
  heapsight::analyzer::RegisterDumpCommand(app, &exit_code);
  heapsight::analyzer::RegisterConvertCommand(app, &exit_code);
  heapsight::analyzer::RegisterProfileCommands(app, &exit_code);
  heapsight::analyzer::RegisterHtmlCommand(app, &exit_code);
  heapsight::analyzer::RegisterTopCommand(app, &exit_code);
  heapsight::analyzer::RegisterAttachCommands(app, &exit_code);
  AddGlossaryFooters(app);
  heapsight::analyzer::AddNoCacheOption(app);
  heapsight::cli::RegisterManualGenerator(app, &exit_code);
  // A mistyped subcommand: CLI11 would say "A subcommand is required" (or
  // take the word as an extra argument); name the closest one instead.
  if (argc > 1 && argv[1][0] != '-' && !heapsight::cli::IsSubcommand(app, argv[1])) {
    std::string closest = heapsight::cli::ClosestSubcommand(app, argv[1]);
    std::fprintf(stderr, "heapsight: '%s' is not a heapsight command.%s%s%s\n", argv[1],
                 closest.empty() ? "" : " Did you mean '", closest.c_str(),
                 closest.empty() ? "" : "'?");
    std::fprintf(stderr, "Run 'heapsight --help' for the list of commands.\n");
    return heapsight::analyzer::kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // --help and --version arrive as "errors" with status 0; every real
    // parse error (CLI11 would say 105, 106, 109...) is a usage error.
    exit_code = app.exit(e) == 0 ? 0 : heapsight::analyzer::kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "heapsight: %s\n", e.what());
    exit_code = heapsight::analyzer::kExitUsage;
  }
  // A trace cut short: the output is written, the status says so (4).
  exit_code = heapsight::analyzer::ExitStatusAfterRun(exit_code);
  if (!CloseStdout()) {
    int err = errno;
    std::fprintf(stderr, "heapsight: error writing standard output%s%s\n", err != 0 ? ": " : "",
                 err != 0 ? std::strerror(err) : "");
    if (exit_code == 0) exit_code = 1;
  }
  return exit_code;
}
