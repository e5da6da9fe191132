// cli/record/output_target.cc: see output_target.h.
#include "cli/record/output_target.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace heapsight::record {

namespace {

std::string JoinCwd(const std::string& pattern, const std::string& cwd) {
  if (!pattern.empty() && pattern[0] == '/') return pattern;
  std::string rest = pattern;
  while (rest.rfind("./", 0) == 0) rest.erase(0, 2);
  if (cwd == "/") return "/" + rest;
  return absl::StrCat(cwd, "/", rest);
}

}  // namespace

std::string AbsolutePattern(const std::string& pattern, const std::string& cwd) {
  std::string absolute = JoinCwd(pattern, cwd);
  struct stat st;
  bool is_dir = !absolute.empty() && absolute.back() == '/';
  // A '%' in the pattern is expanded by the preload: its literal name is not
  // what gets written.
  if (!is_dir && pattern.find('%') == std::string::npos) {
    is_dir = stat(absolute.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }
  if (!is_dir) return absolute;
  while (absolute.size() > 1 && absolute.back() == '/') absolute.pop_back();
  if (absolute == "/") return absl::StrCat("/", kDefaultOutputPattern);
  return absl::StrCat(absolute, "/", kDefaultOutputPattern);
}

absl::Status CheckOutputDirectory(const std::string& absolute_pattern) {
  size_t slash = absolute_pattern.rfind('/');
  std::string dir = slash == 0 ? "/" : absolute_pattern.substr(0, slash);
  if (slash + 1 == absolute_pattern.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("output '", absolute_pattern, "' names a directory, not a file"));
  }
  if (dir.find('%') != std::string::npos) return absl::OkStatus();
  struct stat st;
  if (stat(dir.c_str(), &st) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write traces to ", dir, ": ", std::strerror(errno)));
  }
  if (!S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write traces to ", dir, ": not a directory"));
  }
  std::string probe = dir == "/" ? "/.heapsight-probe.XXXXXX" : dir + "/.heapsight-probe.XXXXXX";
  std::vector<char> buf(probe.begin(), probe.end());
  buf.push_back('\0');
  int fd = mkstemp(buf.data());
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot write traces to ", dir, ": ", std::strerror(errno)));
  }
  close(fd);
  unlink(buf.data());
  return absl::OkStatus();
}

}  // namespace heapsight::record
