// cli/command_output.cc: see command_output.h.
#include "cli/command_output.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

#include "absl/strings/str_cat.h"
#include "analyzer/cache/analysis_cache.h"
#include "analyzer/output/output_file.h"
#include "cli/diagnostics.h"
#include "cli/progress_bar.h"

namespace heapsight::analyzer {

namespace {
bool no_cache_flag = false;  // --no-cache
}  // namespace

absl::StatusOr<ProcessProfile> AnalyzeOneTrace(const std::string& path,
                                               const AnalyzeOptions& options) {
  cache::CacheOptions cache;
  cache.enabled = !no_cache_flag && cache::CacheEnabledByEnvironment();
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

bool AnalyzeAll(const std::vector<std::string>& paths, std::vector<ProcessProfile>* profiles,
                AnalyzeOptions options) {
  std::unique_ptr<ProgressBar> bar = ProgressBar::ForStderr("analyzing");
  options.progress = bar.get();
  for (const std::string& path : paths) {
    absl::StatusOr<ProcessProfile> profile = AnalyzeOneTrace(path, options);
    if (!profile.ok()) {
      PrintError(profile.status());
      return false;
    }
    profiles->push_back(std::move(*profile));
  }
  return true;
}

std::vector<const ProcessProfile*> Pointers(const std::vector<ProcessProfile>& profiles) {
  std::vector<const ProcessProfile*> out;
  for (const ProcessProfile& p : profiles) out.push_back(&p);
  return out;
}

void Emit(const std::string& text, const std::vector<ProcessProfile>& profiles) {
  std::fwrite(text.data(), 1, text.size(), stdout);
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
