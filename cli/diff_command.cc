// cli/diff_command.cc: `heapsight diff`, what changed between two traces per
// call site (trace_diff.h), with a --fail-above gate for CI.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "analyzer/report/trace_diff.h"
#include "cli/command_output.h"
#include "cli/commands.h"
#include "cli/diagnostics.h"

namespace heapsight::analyzer {
namespace {

struct DiffArgs {
  std::string base, current;
  std::string format = "text";
  std::string metric = "bytes";
  size_t top = 10;
  size_t frames = 6;
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
          absl::StrFormat("%s grew by more than %g%%", args.metric, args.fail_above)));
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
  diff->add_option("--format", args->format, "text or json")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  diff->add_option("--metric", args->metric,
                   "What ranks the call sites: bytes (allocated), allocations, peak_bytes (live "
                   "at the heap's peak) or leaked_bytes (not freed at exit)")
      ->check(CLI::IsMember({"bytes", "allocations", "peak_bytes", "leaked_bytes"}))
      ->capture_default_str();
  diff->add_option("--top", args->top, "Call sites listed")->capture_default_str();
  diff->add_option("--frames", args->frames, "Functions per call site (text)")
      ->capture_default_str();
  diff->add_option("--fail-above", args->fail_above,
                   "A CI gate: exit with --fail-exitcode when the whole program's metric grew "
                   "by more than this many percent (0: any growth)")
      ->check(CLI::Range(0.0, 1e9));
  diff->add_option("--fail-exitcode", args->fail_exitcode, "Exit status for --fail-above")
      ->capture_default_str();
  diff->callback([args, exit_code] { *exit_code = RunDiff(*args); });
}

}  // namespace heapsight::analyzer
