// cli/terminal_color.h: colour in the command's terminal output (leak
// kinds, section headers, errors and warnings), chosen once per run by the
// global --color=auto|always|never option and the NO_COLOR convention
// (https://no-color.org: a non-empty NO_COLOR turns auto off).
//
// Colour only adds ANSI SGR sequences around existing text: with colour off
// every output is byte-identical to the uncoloured text, and removing the
// sequences from coloured output gives that text back.
#ifndef HEAPSIGHT_CLI_TERMINAL_COLOR_H_
#define HEAPSIGHT_CLI_TERMINAL_COLOR_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace heapsight::analyzer {

enum class ColorMode { kAuto, kAlways, kNever };

// "auto", "always" or "never".
absl::StatusOr<ColorMode> ParseColorMode(std::string_view text);

// The mode of this run (default kAuto).
void SetColorMode(ColorMode mode);

// Whether output to `fd` (1 or 2) is coloured: always, never, or for auto
// when `fd` is a terminal and NO_COLOR is unset or empty.
bool ColorEnabled(int fd);

// `text` with its own open/close sequence when colour is on for `fd`, else
// `text` unchanged. `sgr` is an SGR parameter list such as "1;31".
std::string Paint(int fd, std::string_view sgr, std::string_view text);

// The text of `report` and `leaks` with its headers ("== process",
// "== total", summaries), leak kinds ("Direct leak", "Indirect leak",
// "Possible leak", "Still reachable") and warnings/errors coloured.
// Lines may carry memcheck's "==<pid>== " tag. JSON must not be passed.
std::string ColorizeReportText(std::string_view text);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_CLI_TERMINAL_COLOR_H_
