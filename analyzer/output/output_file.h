// analyzer/output/output_file.h: writing a command's output to a file or
// stdout, with errors that name the file.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_OUTPUT_FILE_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_OUTPUT_FILE_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace heapsight::analyzer::output {

// WriteFileContents()
//
// Writes `data` to `path`, replacing the file; "-" writes to stdout.
// Errors read "<path>: cannot write: <strerror>".
absl::Status WriteFileContents(const std::string& path, std::string_view data);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_OUTPUT_FILE_H_
