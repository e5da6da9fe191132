// cli/manual.h: what is derived from the command line's one definition (the
// CLI11 app that main.cc builds): the man pages, the bash completion and the
// "did you mean" suggestion for a mistyped subcommand.
//
// Nothing here knows a subcommand or an option by name: every page and
// every completion word comes from the registered subcommands and options,
// so `--help`, the man pages and the completion cannot drift apart. The
// build runs `heapsight __generate-manual` (hidden) to write them, and
// `meson install` installs them (cli/meson.build).
#ifndef HEAPSIGHT_CLI_MANUAL_H_
#define HEAPSIGHT_CLI_MANUAL_H_

#include <string>
#include <string_view>

#include <CLI/CLI.hpp>

namespace heapsight::cli {

// The troff source of heapsight(1) (for `sub` == nullptr: the command and
// its list of subcommands) or of heapsight-<sub>(1): name, synopsis,
// description, options with their descriptions and defaults, and the
// footer text of the (sub)command.
std::string ManPage(const CLI::App& app, const CLI::App* sub);

// A bash completion script for `heapsight`: subcommands after `heapsight`,
// then the chosen subcommand's options (long and short), and file names for
// options that take a value and for positional arguments.
std::string BashCompletion(const CLI::App& app);

// The zsh completion function `_heapsight` (#compdef heapsight): subcommands
// with their one-line descriptions, then the chosen subcommand's options
// (with descriptions; aliases exclude each other, repeatable ones repeat)
// and file names for values and positional arguments.
std::string ZshCompletion(const CLI::App& app);

// The visible subcommand closest to `typed` (edit distance at most 2, or a
// prefix of 3+ characters), or "" when none is close.
std::string ClosestSubcommand(const CLI::App& app, std::string_view typed);

// True if `name` is a subcommand of `app` (hidden ones included).
bool IsSubcommand(const CLI::App& app, std::string_view name);

// Registers the hidden `__generate-manual --man-dir DIR --bash-completion
// FILE --zsh-completion FILE` subcommand that the build uses. Call it after every other Register*.
void RegisterManualGenerator(CLI::App& app, int* exit_code);

}  // namespace heapsight::cli

#endif  // HEAPSIGHT_CLI_MANUAL_H_
