// cli/record/option_table.h: the preload's HEAPSIGHT_* options, as seen
// by the `heapsight` command.
//
// The rows come from format/options.inc, the single options table: the same
// X-macro expansion drives the preload's environment parser, the text of
// `heapsight record --help`, `heapsight options` and docs/options.md.
#ifndef HEAPSIGHT_ANALYZER_RECORD_OPTION_TABLE_H_
#define HEAPSIGHT_ANALYZER_RECORD_OPTION_TABLE_H_

#include <span>
#include <string>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace heapsight::record {

struct OptionRow {
  absl::string_view type;         // "String", "Int" or "Bool"
  absl::string_view name;         // "MAX_DEPTH" (the variable is HEAPSIGHT_MAX_DEPTH)
  absl::string_view default_text; // the default as written in the table, quotes removed
  absl::string_view description;
};

// Every row of format/options.inc, in table order.
std::span<const OptionRow> OptionRows();

// "HEAPSIGHT_" + row.name.
std::string EnvName(const OptionRow& row);

// Finds the row for a user-written name: "max-depth", "MAX_DEPTH" and
// "HEAPSIGHT_MAX_DEPTH" all name the same row. nullptr if there is none.
const OptionRow* FindOption(absl::string_view name);

// Parses "NAME=VALUE" from `--option`, checks NAME against the table and
// VALUE against the row's type. Returns {environment variable, value}.
absl::StatusOr<std::pair<std::string, std::string>> ParseOptionAssignment(
    absl::string_view assignment);

// Plain-text table for `heapsight options` and the `record --help` footer.
std::string OptionsText();

// Markdown page for `heapsight options --markdown`; docs/options.md is this
// text byte for byte.
std::string OptionsMarkdown();

}  // namespace heapsight::record

#endif  // HEAPSIGHT_ANALYZER_RECORD_OPTION_TABLE_H_
