// analyzer/report/suppressions.cc: see suppressions.h.
#include "analyzer/report/suppressions.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace heapsight::analyzer {
namespace {

// Glob match of `pattern` (with `*`) against all of `text`. Iterative with
// one backtrack point: linear-ish, no recursion on untrusted patterns.
bool GlobFull(std::string_view pattern, std::string_view text) {
  size_t p = 0, t = 0, star = std::string_view::npos, mark = 0;
  while (t < text.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      mark = t;
    } else if (p < pattern.size() && pattern[p] == text[t]) {
      ++p;
      ++t;
    } else if (star != std::string_view::npos) {
      p = star + 1;
      t = ++mark;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

}  // namespace

bool SuppressionPatternMatches(std::string_view pattern, std::string_view text) {
  if (pattern.empty()) return false;
  bool anchor_start = pattern.front() == '^';
  if (anchor_start) pattern.remove_prefix(1);
  bool anchor_end = !pattern.empty() && pattern.back() == '$';
  if (anchor_end) pattern.remove_suffix(1);
  std::string glob;
  if (!anchor_start) glob += '*';
  glob += pattern;
  if (!anchor_end) glob += '*';
  return GlobFull(glob, text);
}

absl::StatusOr<Suppressions> Suppressions::Parse(std::string_view text,
                                                 const std::string& origin) {
  Suppressions result;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line.front() == '#') continue;
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          origin, ":", line_number, ": expected `leak:<pattern>`, got `", line, "`"));
    }
    absl::string_view type = absl::StripAsciiWhitespace(line.substr(0, colon));
    absl::string_view pattern = absl::StripAsciiWhitespace(line.substr(colon + 1));
    if (type != "leak") {
      return absl::InvalidArgumentError(absl::StrCat(origin, ":", line_number,
                                                     ": unsupported suppression type `", type,
                                                     "` (only `leak:` is supported)"));
    }
    if (pattern.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(origin, ":", line_number, ": empty suppression pattern"));
    }
    result.patterns_.emplace_back(pattern.data(), pattern.size());
  }
  return result;
}

absl::StatusOr<Suppressions> Suppressions::Load(const std::string& path) {
  if (path.empty()) return Suppressions();
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot read suppressions file"));
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path);
}

const std::string* Suppressions::Match(
    const std::vector<const SymbolizedLocation*>& stack) const {
  for (const std::string& pattern : patterns_) {
    for (const SymbolizedLocation* loc : stack) {
      if (loc->module != nullptr && SuppressionPatternMatches(pattern, loc->module->path)) {
        return &pattern;
      }
      for (const SourceFrame& f : loc->frames) {
        if ((!f.function.empty() && SuppressionPatternMatches(pattern, f.function)) ||
            (!f.file.empty() && SuppressionPatternMatches(pattern, f.file))) {
          return &pattern;
        }
      }
    }
  }
  return nullptr;
}

}  // namespace heapsight::analyzer
