// cli/report_commands.cc: the `report`, `leaks` and `dump` subcommands.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "analyzer/report/growth_report.h"
#include "analyzer/report/leak_report.h"
#include "analyzer/report/suppressions.h"
#include "analyzer/symbols/symbolizer.h"
#include "analyzer/report/text_report.h"
#include "analyzer/report/trace_diff.h"
#include "analyzer/report/trace_dump.h"
#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer {
namespace {

void PrintError(const absl::Status& status) {
  std::fprintf(stderr, "heapsight: %s\n", std::string(status.message()).c_str());
}

// Analyzes every trace; on error prints it and returns false.
bool AnalyzeAll(const std::vector<std::string>& paths, std::vector<ProcessProfile>* profiles,
                AnalyzeOptions options = {}) {
  options.show_progress = true;
  for (const std::string& path : paths) {
    absl::StatusOr<ProcessProfile> profile = AnalyzeTrace(path, options);
    if (!profile.ok()) {
      PrintError(profile.status());
      return false;
    }
    profiles->push_back(std::move(*profile));
  }
  return true;
}

void PrintSymbolizerWarnings(const std::vector<ProcessProfile>& profiles) {
  for (const ProcessProfile& p : profiles) {
    for (const std::string& w : p.symbolizer->warnings()) {
      std::fprintf(stderr, "heapsight: warning: %s\n", w.c_str());
    }
  }
}

// A command's output on stdout, then the symbolizer's warnings on stderr.
void Emit(const std::string& text, const std::vector<ProcessProfile>& profiles) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  PrintSymbolizerWarnings(profiles);
}

std::vector<const ProcessProfile*> Pointers(const std::vector<ProcessProfile>& profiles) {
  std::vector<const ProcessProfile*> out;
  for (const ProcessProfile& p : profiles) out.push_back(&p);
  return out;
}

struct ReportArgs {
  std::vector<std::string> traces;
  size_t top = 5;
  size_t frames = 4;
};

struct GrowthArgs {
  std::vector<std::string> traces;
  std::string format = "text";
  size_t top = 10;
  size_t frames = 6;
  double window = 0.5;
  uint64_t min_bytes = 1024;
  double min_fit = 0.25;
};

struct DiffArgs {
  std::string base, current;
  std::string format = "text";
  std::string metric = "bytes";
  size_t top = 10;
  size_t frames = 6;
  double fail_above = -1;  // percent; < 0: never fail
  int fail_exitcode = 1;
};

struct LeaksArgs {
  std::vector<std::string> traces;
  std::string format = "text";
  std::string suppressions;
  int leak_exitcode = 0;
  int error_exitcode = 0;
  std::string leak_kinds = "definite,possible";
  std::string show_kinds = "all";
};

}  // namespace

void RegisterReportCommands(CLI::App& app, int* exit_code) {
  auto report_args = std::make_shared<ReportArgs>();
  CLI::App* report = app.add_subcommand(
      "report", "Summarize traces: calls per API, bytes, peak heap, leaks, top call sites");
  report->add_option("TRACE", report_args->traces, "Trace files (a process family)")
      ->required();
  report->add_option("--top", report_args->top, "Call sites per list")->capture_default_str();
  report->add_option("--frames", report_args->frames, "Frames per call site")
      ->capture_default_str();
  report->callback([report_args, exit_code]() {
    std::vector<ProcessProfile> profiles;
    if (!AnalyzeAll(report_args->traces, &profiles)) {
      *exit_code = 1;
      return;
    }
    ReportOptions options;
    options.top_sites = report_args->top;
    options.frames_per_site = report_args->frames;
    std::string text = FormatReport(Pointers(profiles), options);
    text += FormatLeakClassSummary(BuildLeakReport(Pointers(profiles), Suppressions()));
    Emit(text, profiles);
    *exit_code = 0;
  });

  auto leaks_args = std::make_shared<LeaksArgs>();
  CLI::App* leaks = app.add_subcommand(
      "leaks", "Blocks not freed at exit, grouped by stack (LeakSanitizer-style text or JSON)");
  leaks->add_option("TRACE", leaks_args->traces, "Trace files")->required();
  leaks->add_option("--format", leaks_args->format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  leaks->add_option("--suppressions", leaks_args->suppressions,
                    "LeakSanitizer-style suppressions file (leak:<pattern> lines)");
  leaks->add_option("--leak-exitcode", leaks_args->leak_exitcode,
                    "Exit status when unsuppressed leaks of the --leak-kinds remain (default 0)");
  leaks->add_option("--error-exitcode", leaks_args->error_exitcode,
                    "Exit status when the program made free errors: invalid, double or "
                    "mismatched frees (default 0; --leak-exitcode wins when both apply)");
  leaks->add_option("--leak-kinds", leaks_args->leak_kinds,
                    "Leak kinds --leak-exitcode counts: comma-separated definite, indirect, "
                    "possible, reachable, or all, none (memcheck's --errors-for-leak-kinds)")
      ->capture_default_str();
  leaks->add_option("--show-kinds", leaks_args->show_kinds,
                    "Leak kinds whose groups are listed (the summary always counts all): "
                    "comma-separated definite, indirect, possible, reachable, or all "
                    "(memcheck's --show-leak-kinds)")
      ->capture_default_str();
  leaks->callback([leaks_args, exit_code]() {
    absl::StatusOr<Suppressions> rules = Suppressions::Load(leaks_args->suppressions);
    if (!rules.ok()) {
      PrintError(rules.status());
      *exit_code = 1;
      return;
    }
    std::vector<ProcessProfile> profiles;
    if (!AnalyzeAll(leaks_args->traces, &profiles)) {
      *exit_code = 1;
      return;
    }
    absl::StatusOr<LeakKinds> kinds = ParseLeakKinds(leaks_args->leak_kinds);
    absl::StatusOr<LeakKinds> shown = ParseLeakKinds(leaks_args->show_kinds);
    for (const auto* k : {&kinds, &shown}) {
      if (!k->ok()) {
        PrintError(k->status());
        *exit_code = 1;
        return;
      }
    }
    LeakReport report = BuildLeakReport(Pointers(profiles), *rules);
    bool failed_leaks = CountedLeaks(report, *kinds).blocks != 0;
    std::erase_if(report.groups, [&](const LeakGroup& g) { return shown->count(g.kind) == 0; });
    std::string text =
        leaks_args->format == "json" ? FormatLeakJson(report) : FormatLeakText(report);
    Emit(text, profiles);
    if (failed_leaks && leaks_args->leak_exitcode != 0) {
      *exit_code = leaks_args->leak_exitcode;
    } else if (!report.errors.empty()) {
      *exit_code = leaks_args->error_exitcode;
    } else {
      *exit_code = 0;
    }
  });

  auto growth_args = std::make_shared<GrowthArgs>();
  CLI::App* growth = app.add_subcommand(
      "growth",
      "Call sites whose live memory keeps growing, fastest first (leaks of long-running "
      "programs that exit cleanly)");
  growth->add_option("TRACE", growth_args->traces, "Trace files")->required();
  growth->add_option("--format", growth_args->format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  growth->add_option("--top", growth_args->top, "Call sites per process")->capture_default_str();
  growth->add_option("--frames", growth_args->frames, "Frames per call site (text)")
      ->capture_default_str();
  growth->add_option("--window", growth_args->window,
                     "The fraction of the trace, counted back from its end, in which growth "
                     "is measured (1 = all of it; the default leaves start-up out)")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  growth->add_option("--min-bytes", growth_args->min_bytes,
                     "Least rise of a site's fitted line over the window for the site to "
                     "be listed")
      ->capture_default_str();
  growth->add_option("--min-fit", growth_args->min_fit,
                     "Least r^2 of the fit (0-1) for a site to be listed: a steady climb is "
                     "near 1, churn and sawtooth pools near 0")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  growth->callback([growth_args, exit_code]() {
    AnalyzeOptions options;
    options.track_growth = true;
    options.growth_window = growth_args->window;
    std::vector<ProcessProfile> profiles;
    if (!AnalyzeAll(growth_args->traces, &profiles, options)) {
      *exit_code = 1;
      return;
    }
    GrowthOptions g;
    g.top = growth_args->top;
    g.frames = growth_args->frames;
    g.min_bytes = growth_args->min_bytes;
    g.min_fit = growth_args->min_fit;
    std::string text = growth_args->format == "json" ? FormatGrowthJson(Pointers(profiles), g)
                                                     : FormatGrowthText(Pointers(profiles), g);
    Emit(text, profiles);
    *exit_code = 0;
  });

  auto diff_args = std::make_shared<DiffArgs>();
  CLI::App* diff = app.add_subcommand(
      "diff", "What changed between two traces, per call site (matched by function names)");
  diff->add_option("BASE", diff_args->base, "The trace to compare against")->required();
  diff->add_option("NEW", diff_args->current, "The trace to compare")->required();
  diff->add_option("--format", diff_args->format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  diff->add_option("--metric", diff_args->metric,
                   "What ranks the call sites: bytes (allocated), allocations, peak_bytes (live "
                   "at the heap's peak) or leaked_bytes (not freed at exit)")
      ->check(CLI::IsMember({"bytes", "allocations", "peak_bytes", "leaked_bytes"}))
      ->capture_default_str();
  diff->add_option("--top", diff_args->top, "Call sites listed")->capture_default_str();
  diff->add_option("--frames", diff_args->frames, "Functions per call site (text)")
      ->capture_default_str();
  diff->add_option("--fail-above", diff_args->fail_above,
                   "A CI gate: exit with --fail-exitcode when the whole program's metric grew "
                   "by more than this many percent (0: any growth)")
      ->check(CLI::Range(0.0, 1e9));
  diff->add_option("--fail-exitcode", diff_args->fail_exitcode,
                   "Exit status for --fail-above")
      ->capture_default_str();
  diff->callback([diff_args, exit_code]() {
    std::vector<ProcessProfile> profiles;
    if (!AnalyzeAll({diff_args->base, diff_args->current}, &profiles)) {
      *exit_code = 1;
      return;
    }
    DiffOptions options;
    options.metric = *ParseDiffMetric(diff_args->metric);  // checked by CLI11
    options.top = diff_args->top;
    options.frames = diff_args->frames;
    TraceDiff d = DiffProfiles(profiles[0], profiles[1]);
    std::string text =
        diff_args->format == "json"
            ? FormatDiffJson(d, options, diff_args->base, diff_args->current)
            : FormatDiffText(d, options, diff_args->base, diff_args->current);
    Emit(text, profiles);
    *exit_code = 0;
    if (diff_args->fail_above >= 0) {
      double base = static_cast<double>(MetricOf(d.base_total, options.metric));
      double now = static_cast<double>(MetricOf(d.current_total, options.metric));
      bool grew = base > 0 ? (now - base) * 100.0 / base > diff_args->fail_above : now > 0;
      if (grew) {
        std::fprintf(stderr, "heapsight: %s grew by more than %g%%\n",
                     diff_args->metric.c_str(), diff_args->fail_above);
        *exit_code = diff_args->fail_exitcode;
      }
    }
  });

  auto dump_traces = std::make_shared<std::vector<std::string>>();
  CLI::App* dump = app.add_subcommand("dump", "Print every record of a trace (debugging aid)");
  dump->add_option("TRACE", *dump_traces, "Trace files")->required();
  dump->callback([dump_traces, exit_code]() {
    *exit_code = 0;
    for (const std::string& path : *dump_traces) {
      absl::Status s = DumpTrace(path, stdout);
      if (!s.ok()) {
        std::fflush(stdout);
        PrintError(s);
        *exit_code = 1;
      }
    }
  });
}

}  // namespace heapsight::analyzer
