// analyzer/report/suppressions.h: LeakSanitizer-style leak suppressions.
//
// File format (one rule a line, like LSAN_OPTIONS=suppressions=FILE):
//   # comment
//   leak:<pattern>
// A pattern matches a frame when it matches the frame's function name
// (demangled), source file or module path. `*` matches any run of
// characters; a leading `^` or trailing `$` anchors the match, otherwise the
// pattern may match anywhere in the name (LSan's rule). A group is
// suppressed when any frame of its stack matches any pattern.
#ifndef HEAPSIGHT_ANALYZER_SUPPRESSIONS_H_
#define HEAPSIGHT_ANALYZER_SUPPRESSIONS_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "analyzer/symbols/symbolizer.h"

namespace heapsight::analyzer {

class Suppressions {
 public:
  Suppressions() = default;
  // Parses suppression text; errors name `origin` and the line.
  static absl::StatusOr<Suppressions> Parse(std::string_view text, const std::string& origin);
  // Reads and parses a file; "" gives an empty set.
  static absl::StatusOr<Suppressions> Load(const std::string& path);

  bool empty() const { return patterns_.empty(); }
  const std::vector<std::string>& patterns() const { return patterns_; }

  // The first pattern matching a frame of `stack`, or null.
  const std::string* Match(const std::vector<const SymbolizedLocation*>& stack) const;

 private:
  std::vector<std::string> patterns_;
};

// LSan's template match (see the file comment).
bool SuppressionPatternMatches(std::string_view pattern, std::string_view text);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_SUPPRESSIONS_H_
