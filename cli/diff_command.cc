// cli/diff_command.cc: `heapsight diff`, what changed between two traces per
// call site (trace_diff.h), with a --fail-above gate for CI.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "analyzer/report/trace_diff.h"
#include "cli/command_output.h"
#include "cli/commands.h"
#include "cli/frames_option.h"
#include "cli/diagnostics.h"

namespace heapsight::analyzer {
namespace {

struct DiffArgs {
  std::string base, current;
  std::string format = "text";
  std::string metric = "alloc_bytes";
  size_t top = 10;
  size_t frames = kDefaultSiteFrames;
  double fail_above = -1;  // percent; < 0: never fail
  int fail_exitcode = 1;
};

int RunDiff(const DiffArgs& args) {
  std::vector<ProcessProfile> profiles;
  if (int st = AnalyzeTraces({args.base, args.current}, &profiles); st != 0) return st;
  DiffOptions options;
  options.metric = *ParseDiffMetric(args.metric);  // checked by CLI11
  options.top = args.top;
  options.frames = args.frames;
  TraceDiff d = DiffProfiles(profiles[0], profiles[1]);
  std::string text = args.format == "json"
                         ? FormatDiffJson(d, options, args.base, args.current)
                         : FormatDiffText(d, options, args.base, args.current);
  Emit(text, profiles);
  if (args.fail_above >= 0) {
    double base = static_cast<double>(MetricOf(d.base_total, options.metric));
    double now = static_cast<double>(MetricOf(d.current_total, options.metric));
    bool grew = base > 0 ? (now - base) * 100.0 / base > args.fail_above : now > 0;
    if (grew) {
      PrintError(absl::FailedPreconditionError(
          absl::StrFormat("%s grew by more than %g%%", DiffMetricName(options.metric),
                          args.fail_above)));
      return args.fail_exitcode;
    }
  }
  return 0;
}

}  // namespace

void RegisterDiffCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<DiffArgs>();
  CLI::App* diff = app.add_subcommand(
      "diff", "What changed between two traces, per call site (matched by function names)");
  diff->add_option("BASE", args->base, "The trace to compare against (- is standard input)")->required();
  diff->add_option("NEW", args->current, "The trace to compare")->required();
  diff->add_option("--format", args->format,
                   "text or json (schema heapsight-diff/1, docs/heapsight-json.schema.json)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  diff->add_option("--metric", args->metric,
                   "What ranks the call sites: alloc_bytes (allocated), alloc_count "
                   "(allocations), peak_bytes (live at the heap's peak) or not_freed_bytes "
                   "(not freed at exit); the older bytes, allocations and leaked_bytes still "
                   "work (docs/glossary.md, Metrics)")
      ->check([](const std::string& m) {
        absl::StatusOr<DiffMetric> parsed = ParseDiffMetric(m);
        return parsed.ok() ? std::string() : std::string(parsed.status().message());
      })
      ->capture_default_str();
  diff->add_option("--top", args->top, "Call sites listed")->capture_default_str();
  AddFramesOption(diff, &args->frames);
  diff->add_option("--fail-above", args->fail_above,
                   "A CI gate: exit with --fail-exitcode when the whole program's metric grew "
                   "by more than this many percent (0: any growth)")
      ->check(CLI::Range(0.0, 1e9));
  diff->add_option("--fail-exitcode", args->fail_exitcode, "Exit status for --fail-above")
      ->capture_default_str();
  diff->callback([args, exit_code] { *exit_code = RunDiff(*args); });
}

}  // namespace heapsight::analyzer
