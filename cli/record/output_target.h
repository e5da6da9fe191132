// cli/record/output_target.h: where `heapsight record` tells the preload
// to write its traces (HEAPSIGHT_OUTPUT), checked before the program starts.
#ifndef HEAPSIGHT_ANALYZER_RECORD_OUTPUT_TARGET_H_
#define HEAPSIGHT_ANALYZER_RECORD_OUTPUT_TARGET_H_

#include <string>

#include "absl/status/statusor.h"

namespace heapsight::record {

// The default -o pattern, relative to the current directory.
inline constexpr char kDefaultOutputPattern[] = "heapsight.%e.%p.hst";

// Makes `pattern` (which may hold %p, %e, %%) absolute against `cwd`. A
// pattern that names an existing directory (or ends in '/') means "in that
// directory": kDefaultOutputPattern is appended.
std::string AbsolutePattern(const std::string& pattern, const std::string& cwd);

// Checks that the directory part of an absolute pattern exists and accepts
// new files (by creating and removing a probe file, which also catches
// read-only file systems and root-owned directories). A directory part that
// itself holds a '%' is not checked: it depends on the process.
absl::Status CheckOutputDirectory(const std::string& absolute_pattern);

}  // namespace heapsight::record

#endif  // HEAPSIGHT_ANALYZER_RECORD_OUTPUT_TARGET_H_
