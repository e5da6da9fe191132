// cli/growth_command.cc: `heapsight growth`, the call sites whose live
// memory keeps growing (growth_report.h), as text or JSON.
#include <memory>
#include <string>
#include <vector>

#include "analyzer/report/growth_report.h"
#include "cli/command_output.h"
#include "cli/commands.h"
#include "cli/frames_option.h"

namespace heapsight::analyzer {
namespace {

struct GrowthArgs {
  std::vector<std::string> traces;
  std::string format = "text";
  size_t top = 10;
  size_t frames = kDefaultSiteFrames;
  double window = 0.5;
  uint64_t min_bytes = 1024;
  double min_fit = 0.25;
};

int RunGrowth(const GrowthArgs& args) {
  AnalyzeOptions options;
  options.track_growth = true;
  options.growth_window = args.window;
  std::vector<ProcessProfile> profiles;
  if (int st = AnalyzeTraces(args.traces, &profiles, options); st != 0) return st;
  GrowthOptions g;
  g.top = args.top;
  g.frames = args.frames;
  g.min_bytes = args.min_bytes;
  g.min_fit = args.min_fit;
  std::string text = args.format == "json" ? FormatGrowthJson(Pointers(profiles), g)
                                           : FormatGrowthText(Pointers(profiles), g);
  Emit(text, profiles);
  return 0;
}

}  // namespace

void RegisterGrowthCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<GrowthArgs>();
  CLI::App* growth = app.add_subcommand(
      "growth",
      "Call sites whose live memory keeps growing, fastest first (leaks of long-running "
      "programs that exit cleanly)");
  growth->add_option("TRACE", args->traces, "Trace files; - is standard input; none: the newest heapsight.*.hst here");
  growth->add_option("--format", args->format,
                     "text or json (schema heapsight-growth/1, docs/heapsight-json.schema.json)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  growth->add_option("--top", args->top, "Call sites per process")->capture_default_str();
  AddFramesOption(growth, &args->frames);
  growth->add_option("--window", args->window,
                     "The fraction of the trace, counted back from its end, in which growth "
                     "is measured (1 = all of it; the default leaves start-up out)")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  growth->add_option("--min-bytes", args->min_bytes,
                     "Least rise of a site's fitted line over the window for the site to "
                     "be listed")
      ->capture_default_str();
  growth->add_option("--min-fit", args->min_fit,
                     "Least r^2 of the fit (0-1) for a site to be listed: a steady climb is "
                     "near 1, churn and sawtooth pools near 0")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  growth->callback([args, exit_code] { *exit_code = RunGrowth(*args); });
}

}  // namespace heapsight::analyzer
