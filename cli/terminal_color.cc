// cli/terminal_color.cc: see terminal_color.h.
#include "cli/terminal_color.h"

#include <unistd.h>

#include <cstdlib>

#include "absl/strings/ascii.h"

namespace heapsight::analyzer {
namespace {

ColorMode g_mode = ColorMode::kAuto;

// SGR parameters, one meaning each wherever heapsight colours.
constexpr std::string_view kError = "1;31";    // bold red: errors, definite leaks
constexpr std::string_view kWarning = "1;33";  // bold yellow: warnings, possible leaks
constexpr std::string_view kIndirect = "1;35"; // bold magenta: indirect leaks
constexpr std::string_view kReachable = "32";  // green: still reachable
constexpr std::string_view kHeader = "1;36";   // bold cyan: section headers
constexpr std::string_view kSummary = "1";     // bold: summaries

std::string Wrap(std::string_view sgr, std::string_view text) {
  std::string out = "\x1b[";
  out.append(sgr).append("m").append(text).append("\x1b[0m");
  return out;
}

// The length of the "==<pid>==" tag (and its space, if any) at the start of `line`, or 0.
size_t TagLength(std::string_view line) {
  if (line.substr(0, 2) != "==") return 0;
  size_t i = 2;
  while (i < line.size() && absl::ascii_isdigit(static_cast<unsigned char>(line[i]))) ++i;
  if (i == 2 || line.substr(i, 2) != "==") return 0;
  return line.substr(i + 2, 1) == " " ? i + 3 : i + 2;
}

// One line (without its newline), coloured.
std::string ColorizeLine(std::string_view line) {
  size_t tag = TagLength(line);
  std::string_view rest = line.substr(tag);
  std::string out(line.substr(0, tag));
  // Leak kinds: only the kind words, so the numbers stay easy to read.
  struct Prefix {
    std::string_view text;
    std::string_view sgr;
    bool whole_line;
  };
  static constexpr Prefix kPrefixes[] = {
      {"Direct leak", kError, false},
      {"Indirect leak", kIndirect, false},
      {"Possible leak", kWarning, false},
      {"Still reachable", kReachable, false},
      {"ERROR SUMMARY:", kError, true},
      {"ERROR:", kError, true},
      {"WARNING:", kWarning, true},
      {"warning:", kWarning, true},
      {"TRACE CUT SHORT:", kWarning, true},
      {"== process ", kHeader, true},
      {"== total", kHeader, true},
      {"LEAK SUMMARY:", kSummary, true},
      {"SUMMARY:", kSummary, true},
  };
  for (const Prefix& p : kPrefixes) {
    if (rest.substr(0, p.text.size()) != p.text) continue;
    if (p.whole_line) return out + Wrap(p.sgr, rest);
    return out + Wrap(p.sgr, p.text) + std::string(rest.substr(p.text.size()));
  }
  return out.append(rest);
}

}  // namespace

absl::StatusOr<ColorMode> ParseColorMode(std::string_view text) {
  if (text == "auto") return ColorMode::kAuto;
  if (text == "always") return ColorMode::kAlways;
  if (text == "never") return ColorMode::kNever;
  return absl::InvalidArgumentError(
      "--color: expected auto, always or never, got \"" + std::string(text) + "\"");
}

void SetColorMode(ColorMode mode) { g_mode = mode; }

bool ColorEnabled(int fd) {
  switch (g_mode) {
    case ColorMode::kAlways: return true;
    case ColorMode::kNever: return false;
    case ColorMode::kAuto: break;
  }
  const char* no_color = std::getenv("NO_COLOR");
  if (no_color != nullptr && no_color[0] != '\0') return false;
  return isatty(fd) != 0;
}

std::string Paint(int fd, std::string_view sgr, std::string_view text) {
  return ColorEnabled(fd) ? Wrap(sgr, text) : std::string(text);
}

std::string ColorizeReportText(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    out += ColorizeLine(line);
    if (nl == std::string_view::npos) break;
    out += '\n';
    text.remove_prefix(nl + 1);
  }
  return out;
}

}  // namespace heapsight::analyzer
