// cli/record/trace_manifest.h: the private file through which the
// preload tells `heapsight record` which traces it wrote
// (HEAPSIGHT_MANIFEST): every traced process, fork children and exec'd
// images included, appends its trace path and a NUL byte.
//
// The file lives in a directory of its own (mkdtemp, mode 0700) and is
// created here, before the program starts; the preload never creates it
// (preload/trace_writer.h). When the session ends the file and directory are
// removed, so a descendant that outlives `heapsight record` writes nothing,
// and nothing it could find at that name is written to. They are also
// removed when heapsight is killed by a signal it can catch (the handlers
// unlink and re-raise); after SIGKILL the directory
// $TMPDIR/heapsight-record.XXXXXX is left behind.
#ifndef HEAPSIGHT_ANALYZER_RECORD_TRACE_MANIFEST_H_
#define HEAPSIGHT_ANALYZER_RECORD_TRACE_MANIFEST_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace heapsight::record {

class TraceManifest {
 public:
  // Creates a mode-0700 directory with mkdtemp in $TMPDIR (or /tmp) and an
  // empty mode-0600 file in it. At most one manifest exists at a time (its
  // paths are what the signal handlers remove).
  static absl::StatusOr<TraceManifest> Create();

  TraceManifest(TraceManifest&& other) noexcept;
  TraceManifest& operator=(TraceManifest&&) = delete;
  TraceManifest(const TraceManifest&) = delete;
  ~TraceManifest();  // removes the file and its directory

  // The file's path, for HEAPSIGHT_MANIFEST.
  const std::string& path() const { return path_; }
  const std::string& directory() const { return dir_; }

  // The distinct non-empty entries written so far, in order.
  std::vector<std::string> Read() const;

 private:
  TraceManifest(std::string dir, std::string path) : dir_(std::move(dir)), path_(std::move(path)) {}
  std::string dir_;
  std::string path_;
};

}  // namespace heapsight::record

#endif  // HEAPSIGHT_ANALYZER_RECORD_TRACE_MANIFEST_H_
