// cli/record/preload_locator.cc: see preload_locator.h.
#include "cli/record/preload_locator.h"

#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

#ifndef HEAPSIGHT_INSTALL_LIBDIR
#define HEAPSIGHT_INSTALL_LIBDIR "lib"
#endif

namespace heapsight::record {
namespace {

constexpr char kLibName[] = "libheapsight.so";

std::string Dirname(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace

std::vector<std::string> PreloadCandidates(const std::string& exe_dir) {
  std::vector<std::string> out;
  auto add = [&](const std::string& path) {
    if (std::find(out.begin(), out.end(), path) == out.end()) out.push_back(path);
  };
  const std::string prefix = exe_dir + "/..";
  add(absl::StrCat(prefix, "/preload/", kLibName));
  // meson's libdir is relative to the prefix unless configured absolute.
  std::string libdir = HEAPSIGHT_INSTALL_LIBDIR;
  std::string installed = libdir.empty() || libdir[0] != '/' ? prefix + "/" + libdir : libdir;
  add(absl::StrCat(installed, "/heapsight/", kLibName));
  add(absl::StrCat(installed, "/", kLibName));
  for (const char* dir : {"/lib", "/lib64"}) {
    add(absl::StrCat(prefix, dir, "/heapsight/", kLibName));
    add(absl::StrCat(prefix, dir, "/", kLibName));
  }
  return out;
}

absl::StatusOr<std::string> FindPreload() {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  if (n <= 0) return absl::NotFoundError("cannot read /proc/self/exe to find libheapsight.so");
  exe[n] = '\0';
  std::vector<std::string> candidates = PreloadCandidates(Dirname(exe));
  for (const std::string& candidate : candidates) {
    if (access(candidate.c_str(), R_OK) != 0) continue;
    char resolved[PATH_MAX];
    if (realpath(candidate.c_str(), resolved) != nullptr) return std::string(resolved);
  }
  return absl::NotFoundError(absl::StrCat("cannot find libheapsight.so; looked at:\n  ",
                                          absl::StrJoin(candidates, "\n  ")));
}

}  // namespace heapsight::record
