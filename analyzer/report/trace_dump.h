// analyzer/report/trace_dump.h: `heapsight dump`: every record of a trace as one
// line of text, chunk by chunk in file order (a debugging aid; tests use it).
#ifndef HEAPSIGHT_ANALYZER_TRACE_DUMP_H_
#define HEAPSIGHT_ANALYZER_TRACE_DUMP_H_

#include <cstdio>
#include <string>

#include "absl/status/status.h"
#include "analyzer/model/progress.h"

namespace heapsight::analyzer {

// Writes the dump of `path` to `out`. Returns an error (naming the file) for
// unreadable or corrupt traces, after dumping what could be read.
// `progress` (may be null) hears how far into the file the dump is;
// `cut_short` (may be null) is set when the trace has no end record or
// the file ends inside a block.
absl::Status DumpTrace(const std::string& path, std::FILE* out,
                       ProgressListener* progress = nullptr, bool* cut_short = nullptr,
                       bool* truncated = nullptr);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_TRACE_DUMP_H_
