// cli/command_output.cc: see command_output.h.
#include "cli/command_output.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "analyzer/cache/analysis_cache.h"
#include "analyzer/model/fork_inheritance.h"
#include "analyzer/model/large_blocks.h"
#include "analyzer/output/output_file.h"
#include "cli/diagnostics.h"
#include "cli/progress_bar.h"
#include "cli/terminal_color.h"

namespace heapsight::analyzer {
namespace {

// The newest regular file named heapsight.*.hst in the current directory
// (ties: the greater name), or "" when there is none.
std::string NewestTraceInCurrentDirectory() {
  DIR* dir = opendir(".");
  if (dir == nullptr) return "";
  std::string best;
  struct timespec best_time = {0, 0};
  while (struct dirent* e = readdir(dir)) {
    std::string_view name = e->d_name;
    if (name.size() <= 14 || name.substr(0, 10) != "heapsight." ||
        name.substr(name.size() - 4) != ".hst") {
      continue;
    }
    struct stat st;
    if (fstatat(dirfd(dir), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) {
      continue;
    }
    const struct timespec& t = st.st_mtim;
    bool newer = best.empty() || t.tv_sec > best_time.tv_sec ||
                 (t.tv_sec == best_time.tv_sec &&
                  (t.tv_nsec > best_time.tv_nsec ||
                   (t.tv_nsec == best_time.tv_nsec && name > best)));
    if (newer) {
      best = std::string(name);
      best_time = t;
    }
  }
  closedir(dir);
  return best;
}

// Standard input as a path the trace reader can open and seek: the file
// itself when stdin is a regular file, else a copy in an unlinked file.
absl::StatusOr<std::string> StdinAsFile() {
  struct stat st;
  if (fstat(STDIN_FILENO, &st) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("-: cannot read standard input: ", std::strerror(errno)));
  }
  if (S_ISREG(st.st_mode)) {
    if (lseek(STDIN_FILENO, 0, SEEK_CUR) == 0) return std::string("/proc/self/fd/0");
  } else if (isatty(STDIN_FILENO) != 0) {
    return WithExitStatus(absl::InvalidArgumentError(
                              "-: standard input is a terminal; pipe or redirect a trace to it"),
                          kExitUsage);
  }
  const char* tmpdir = std::getenv("TMPDIR");
  std::string dir = tmpdir != nullptr && tmpdir[0] != '\0' ? tmpdir : "/tmp";
  // O_TMPFILE has no name at all; filesystems without it get a mkstemp
  // file (mode 0600) unlinked at once. Either way nothing is left behind.
  int fd = open(dir.c_str(), O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) {
    std::string name = dir + "/heapsight-stdin-XXXXXX";
    fd = mkostemp(name.data(), O_CLOEXEC);
    if (fd < 0) {
      return absl::UnavailableError(
          absl::StrCat(name, ": cannot create a file for standard input: ", std::strerror(errno)));
    }
    unlink(name.c_str());
  }
  char buffer[1 << 16];
  for (;;) {
    ssize_t n = read(STDIN_FILENO, buffer, sizeof buffer);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      int err = errno;
      close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat("-: cannot read standard input: ", std::strerror(err)));
    }
    for (ssize_t done = 0; done < n;) {
      ssize_t w = write(fd, buffer + done, static_cast<size_t>(n - done));
      if (w < 0 && errno == EINTR) continue;
      if (w <= 0) {
        int err = w < 0 ? errno : ENOSPC;
        close(fd);
        return absl::UnavailableError(
            absl::StrCat(dir, ": cannot copy standard input: ", std::strerror(err)));
      }
      done += w;
    }
  }
  // The descriptor stays open until exit: it is what keeps the file.
  return absl::StrCat("/proc/self/fd/", fd);
}

}  // namespace

namespace {
bool no_cache_flag = false;  // --no-cache
}  // namespace

absl::StatusOr<ProcessProfile> AnalyzeOneTrace(const std::string& path,
                                               const AnalyzeOptions& options) {
  cache::CacheOptions cache;
  // A trace read from standard input (/proc/self/fd/N, ResolveTraceArguments)
  // has no place of its own for a cache, and is read once anyway.
  cache.enabled = !no_cache_flag && cache::CacheEnabledByEnvironment() &&
                  path.rfind("/proc/self/fd/", 0) != 0;
  return cache::AnalyzeTraceCached(path, options, cache);
}

void AddNoCacheOption(CLI::App& app) {
  for (const char* name :
       {"report", "leaks", "growth", "diff", "pprof", "collapse", "flamegraph", "html"}) {
    for (CLI::App* sub : app.get_subcommands({})) {
      if (sub->get_name() != name) continue;
      sub->add_flag("--no-cache", no_cache_flag,
                    "Analyze the trace afresh: neither read nor write the analysis cache "
                    "(<trace>.cache next to the trace; also HEAPSIGHT_NO_CACHE=1)");
    }
  }
}

absl::Status ResolveTraceArguments(std::vector<std::string>* traces) {
  if (traces->empty()) {
    std::string newest = NewestTraceInCurrentDirectory();
    if (newest.empty()) {
      return WithExitStatus(
          absl::InvalidArgumentError("no trace given, and no heapsight.*.hst in the current "
                                     "directory (record one with `heapsight record -- PROG`)"),
          kExitUsage);
    }
    PrintNote(absl::StrCat("reading ", newest, ", the newest trace in the current directory"));
    traces->push_back(std::move(newest));
    return absl::OkStatus();
  }
  if (std::count(traces->begin(), traces->end(), "-") > 1) {
    return WithExitStatus(absl::InvalidArgumentError("-: standard input can be read only once"),
                          kExitUsage);
  }
  for (std::string& t : *traces) {
    if (t != "-") continue;
    absl::StatusOr<std::string> path = StdinAsFile();
    if (!path.ok()) {
      return path.status().GetPayload("heapsight.cli/exit-status").has_value()
                 ? path.status()
                 : BadInput(path.status());
    }
    SetStdinTracePath(*path);
    t = std::move(*path);
  }
  return absl::OkStatus();
}

int AnalyzeTraces(std::vector<std::string> paths, std::vector<ProcessProfile>* profiles,
                  AnalyzeOptions options) {
  if (absl::Status st = ResolveTraceArguments(&paths); !st.ok()) return Fail(st);
  // Freed chunks, old hash tables and debug info leave the process's RSS
  // (large_blocks.h): cc1plus's `report` peak 90 -> 79 MB.
  UseMmapForLargeBlocks();
  std::unique_ptr<ProgressBar> bar = ProgressBar::ForStderr("analyzing");
  options.progress = bar.get();
  // A family's version-6 fork children: each parent's trace read once for
  // all of them (fork_inheritance.h).
  ForkInheritanceSource inheritances(paths);
  if (paths.size() > 1) options.fork_inheritances = &inheritances;
  for (const std::string& path : paths) {
    absl::StatusOr<ProcessProfile> profile = AnalyzeOneTrace(path, options);
    if (!profile.ok()) return FailInput(profile.status());
    if (!profile->complete) NoteCutShortTrace(path, profile->truncated);
    profiles->push_back(std::move(*profile));
  }
  return 0;
}

bool AnalyzeAll(const std::vector<std::string>& paths, std::vector<ProcessProfile>* profiles,
                AnalyzeOptions options) {
  return AnalyzeTraces(paths, profiles, options) == 0;
}

std::vector<const ProcessProfile*> Pointers(const std::vector<ProcessProfile>& profiles) {
  std::vector<const ProcessProfile*> out;
  for (const ProcessProfile& p : profiles) out.push_back(&p);
  return out;
}

void Emit(const std::string& text, const std::vector<ProcessProfile>& profiles) {
  std::string out = NameStdin(text);
  // JSON stays plain; text is coloured only when stdout is.
  if (!out.empty() && out[0] != '{' && out[0] != '[' && ColorEnabled(STDOUT_FILENO)) {
    out = ColorizeReportText(out);
  }
  std::fwrite(out.data(), 1, out.size(), stdout);
  for (const ProcessProfile& p : profiles) PrintSymbolizerWarnings(p);
}

absl::Status WriteOutput(const std::string& path, std::string_view data) {
  if (path != "-") return output::WriteFileContents(path, data);
  if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size() ||
      std::fflush(stdout) != 0) {
    return absl::UnavailableError(absl::StrCat("<stdout>: cannot write: ", std::strerror(errno)));
  }
  return absl::OkStatus();
}

std::string DefaultOutputPath(const std::vector<std::string>& traces, std::string_view extension) {
  std::string base = traces.empty() ? "heapsight" : traces.front();
  if (size_t slash = base.rfind('/'); slash != std::string::npos) base.erase(0, slash + 1);
  if (base.size() > 4 && base.compare(base.size() - 4, 4, ".hst") == 0) base.resize(base.size() - 4);
  if (traces.empty() || traces.front().rfind("/proc/self/fd/", 0) == 0) base = "heapsight";  // stdin
  if (base.empty() || base == "." || base == ".." || base == "-") base = "heapsight";
  return absl::StrCat(base, traces.size() > 1 ? ".family." : ".", std::string(extension));
}

absl::Status WriteOutputAndTell(const std::string& path, std::string_view data,
                                std::string_view what) {
  if (absl::Status st = WriteOutput(path, data); !st.ok()) return st;
  if (path != "-") std::fprintf(stderr, "heapsight: wrote %.*s to %s\n", static_cast<int>(what.size()), what.data(), path.c_str());
  return absl::OkStatus();
}

}  // namespace heapsight::analyzer
