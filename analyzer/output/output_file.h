// analyzer/output/output_file.h: writing an output file, with errors that
// name the file. (The library never writes to stdout: the command line
// handles "-".)
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_OUTPUT_FILE_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_OUTPUT_FILE_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace heapsight::analyzer::output {

// WriteFileContents()
//
// Writes `data` to the file `path`, replacing it.
// Errors read "<path>: cannot write: <strerror>".
absl::Status WriteFileContents(const std::string& path, std::string_view data);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_OUTPUT_FILE_H_
