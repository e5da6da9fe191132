// cli/record/option_table.cc: expands format/options.inc into the
// analyzer's view of the options; see option_table.h.
#include "cli/record/option_table.h"

#include <algorithm>
#include <cctype>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "format/options.h"

namespace heapsight::record {
namespace {

// "\"text\"" -> "text"; other tokens unchanged.
constexpr absl::string_view Unquote(absl::string_view token) {
  if (token.size() >= 2 && token.front() == '"' && token.back() == '"') {
    return token.substr(1, token.size() - 2);
  }
  return token;
}

constexpr OptionRow kRows[] = {
#define X(type, name, default_value, description) \
  {#type, #name, Unquote(#default_value), description},
#include "format/options.inc"
#undef X
};

std::string DisplayDefault(const OptionRow& row) {
  return row.default_text.empty() ? std::string("(empty)") : std::string(row.default_text);
}

// Folds a user-written name to the table's spelling: upper case, '-' -> '_',
// without the HEAPSIGHT_ prefix.
std::string CanonicalName(absl::string_view name) {
  std::string s = absl::AsciiStrToUpper(name);
  std::replace(s.begin(), s.end(), '-', '_');
  constexpr char kPrefix[] = "HEAPSIGHT_";
  if (s.rfind(kPrefix, 0) == 0) s.erase(0, sizeof(kPrefix) - 1);
  return s;
}

}  // namespace

std::span<const OptionRow> OptionRows() { return kRows; }

std::string EnvName(const OptionRow& row) { return absl::StrCat("HEAPSIGHT_", row.name); }

const OptionRow* FindOption(absl::string_view name) {
  std::string canonical = CanonicalName(name);
  for (const OptionRow& row : kRows) {
    if (row.name == canonical) return &row;
  }
  return nullptr;
}

absl::StatusOr<std::pair<std::string, std::string>> ParseOptionAssignment(
    absl::string_view assignment) {
  size_t eq = assignment.find('=');
  if (eq == absl::string_view::npos || eq == 0) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "--option expects NAME=VALUE, got '%s' (see `heapsight options`)", assignment));
  }
  absl::string_view name = assignment.substr(0, eq);
  std::string value(assignment.substr(eq + 1));
  const OptionRow* row = FindOption(name);
  if (row == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrFormat("unknown option '%s' (see `heapsight options`)", name));
  }
  if (row->type == "Int") {
    int64_t parsed = 0;
    if (!absl::SimpleAtoi(value, &parsed)) {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s expects an integer, got '%s'", EnvName(*row), value));
    }
  } else if (row->type == "Bool") {
    std::string lower = absl::AsciiStrToLower(value);
    if (lower == "1" || lower == "true" || lower == "yes" || lower == "on") {
      value = "1";
    } else if (lower == "0" || lower == "false" || lower == "no" || lower == "off") {
      value = "0";
    } else {
      return absl::InvalidArgumentError(
          absl::StrFormat("%s expects 0 or 1, got '%s'", EnvName(*row), value));
    }
  }
  // The preload's own parser (format/options.h) is the judge of ranges and enumerations
  // (MAX_DEPTH 1-256, UNWIND libunwind|fp, ...): a value it would replace by
  // the default, with only a warning in the program's stderr, is refused here.
  std::string env_name = EnvName(*row);
  struct Lookup {
    const std::string* name;
    const std::string* value;
  } lookup{&env_name, &value};
  format::Options parsed;
  char error[256];
  bool valid = format::ParseOptions(
      [](const char* name, void* ctx) -> const char* {
        auto* l = static_cast<Lookup*>(ctx);
        return *l->name == name ? l->value->c_str() : nullptr;
      },
      &lookup, &parsed, error, sizeof error);
  if (!valid) {
    return absl::InvalidArgumentError(absl::StrFormat("%s=%s is not valid: %s", env_name,
                                                      value, row->description));
  }
  return std::make_pair(env_name, value);
}

std::string OptionsText() {
  size_t name_width = 0;
  for (const OptionRow& row : kRows) name_width = std::max(name_width, EnvName(row).size());
  std::string out;
  for (const OptionRow& row : kRows) {
    absl::StrAppendFormat(&out, "  %-*s %-6s default %s\n", name_width, EnvName(row), row.type,
                          DisplayDefault(row));
    // Wrap the description at ~76 columns, indented.
    std::string line = "      ";
    size_t start = 0;
    absl::string_view text = row.description;
    while (start < text.size()) {
      size_t end = text.find(' ', start);
      if (end == absl::string_view::npos) end = text.size();
      absl::string_view word = text.substr(start, end - start);
      if (line.size() > 6 && line.size() + 1 + word.size() > 78) {
        absl::StrAppend(&out, line, "\n");
        line = "      ";
      }
      if (line.size() > 6) line += ' ';
      absl::StrAppend(&line, word);
      start = end + 1;
    }
    if (line.size() > 6) absl::StrAppend(&out, line, "\n");
  }
  return out;
}

std::string OptionsMarkdown() {
  // docs/options.md is this text (`heapsight options --markdown`);
  // tests/cli/record/record_command_test.cc compares the two.
  std::string out =
      "# heapsight options\n"
      "\n"
      "Generated from `format/options.inc` by `heapsight options --markdown`; do not edit.\n"
      "Each option is an environment variable read by `libheapsight.so` at start-up.\n"
      "`heapsight record` sets them from its own flags.\n"
      "\n"
      "| Variable | Type | Default | Description |\n"
      "|---|---|---|---|\n";
  for (const OptionRow& row : kRows) {
    absl::StrAppend(&out, "| `", EnvName(row), "` | ", row.type, " | `", DisplayDefault(row),
                    "` | ", row.description, " |\n");
  }
  return out;
}

}  // namespace heapsight::record
