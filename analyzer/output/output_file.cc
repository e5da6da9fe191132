// analyzer/output/output_file.cc: see output_file.h.
#include "analyzer/output/output_file.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace heapsight::analyzer::output {
namespace {

absl::Status WriteError(const std::string& path, int err) {
  return absl::UnavailableError(absl::StrCat(path, ": cannot write: ", std::strerror(err)));
}

}  // namespace

absl::Status WriteFileContents(const std::string& path, std::string_view data) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return WriteError(path, errno);
  bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  int err = errno;
  if (std::fclose(f) != 0 && ok) {
    ok = false;
    err = errno;
  }
  if (!ok) return WriteError(path, err);
  return absl::OkStatus();
}

}  // namespace heapsight::analyzer::output
