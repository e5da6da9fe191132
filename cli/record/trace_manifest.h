// cli/record/trace_manifest.h: the private file through which the
// preload tells `heapsight record` which traces it wrote
// (HEAPSIGHT_MANIFEST): one trace path per line, appended by every traced
// process, fork children and exec'd images included.
#ifndef HEAPSIGHT_ANALYZER_RECORD_TRACE_MANIFEST_H_
#define HEAPSIGHT_ANALYZER_RECORD_TRACE_MANIFEST_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace heapsight::record {

class TraceManifest {
 public:
  // Creates an empty, mode-0600 file with mkstemp in $TMPDIR (or /tmp).
  static absl::StatusOr<TraceManifest> Create();

  TraceManifest(TraceManifest&& other) noexcept;
  TraceManifest& operator=(TraceManifest&&) = delete;
  TraceManifest(const TraceManifest&) = delete;
  ~TraceManifest();  // removes the file

  const std::string& path() const { return path_; }

  // The distinct non-empty lines written so far, in order.
  std::vector<std::string> Read() const;

 private:
  explicit TraceManifest(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace heapsight::record

#endif  // HEAPSIGHT_ANALYZER_RECORD_TRACE_MANIFEST_H_
