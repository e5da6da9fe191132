// cli/record/trace_manifest.cc: see trace_manifest.h.
#include "cli/record/trace_manifest.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace heapsight::record {

absl::StatusOr<TraceManifest> TraceManifest::Create() {
  const char* tmp = getenv("TMPDIR");
  std::string tmpl = absl::StrCat(tmp != nullptr && tmp[0] == '/' ? tmp : "/tmp",
                                  "/heapsight-manifest.XXXXXX");
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = mkstemp(buf.data());
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot create a temporary file ", tmpl, ": ", std::strerror(errno)));
  }
  close(fd);
  return TraceManifest(buf.data());
}

TraceManifest::TraceManifest(TraceManifest&& other) noexcept : path_(std::move(other.path_)) {
  other.path_.clear();
}

TraceManifest::~TraceManifest() {
  if (!path_.empty()) unlink(path_.c_str());
}

std::vector<std::string> TraceManifest::Read() const {
  std::vector<std::string> lines;
  std::ifstream in(path_);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty()) continue;
    if (std::find(lines.begin(), lines.end(), line) == lines.end()) lines.push_back(line);
  }
  return lines;
}

}  // namespace heapsight::record
