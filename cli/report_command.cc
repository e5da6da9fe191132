// cli/report_command.cc: `heapsight report`, the summary of a trace or a
// process family (text_report.h) and the leak classes' one-line summary.
#include <memory>
#include <string>
#include <vector>

#include "analyzer/report/leak_report.h"
#include "analyzer/report/report_json.h"
#include "analyzer/report/text_report.h"
#include "cli/command_output.h"
#include "cli/commands.h"
#include "cli/frames_option.h"

namespace heapsight::analyzer {
namespace {

struct ReportArgs {
  std::vector<std::string> traces;
  size_t top = 5;
  size_t frames = kDefaultSiteFrames;
  std::string format = "text";
};

int RunReport(const ReportArgs& args) {
  std::vector<ProcessProfile> profiles;
  if (int st = AnalyzeTraces(args.traces, &profiles); st != 0) return st;
  ReportOptions options;
  options.top_sites = args.top;
  options.frames_per_site = args.frames;
  if (args.format == "json") {
    Emit(FormatReportJson(Pointers(profiles), options), profiles);
    return 0;
  }
  std::string text = FormatReport(Pointers(profiles), options);
  text += FormatLeakClassSummary(BuildLeakTotals(Pointers(profiles)));
  Emit(text, profiles);
  return 0;
}

}  // namespace

void RegisterReportCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<ReportArgs>();
  CLI::App* report = app.add_subcommand(
      "report", "Summarize traces: calls per API, bytes, peak heap, leaks, top call sites");
  report->add_option("TRACE", args->traces, "Trace files (a process family); - is standard input; none: the newest "
                     "heapsight.*.hst here");
  report->add_option("--top", args->top, "Call sites per list")->capture_default_str();
  AddFramesOption(report, &args->frames);
  report->add_option("--format", args->format,
                     "text or json (schema heapsight-report/2, docs/heapsight-json.schema.json: "
                     "totals and top call sites, most temporary allocations included, every frame)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  report->callback([args, exit_code] { *exit_code = RunReport(*args); });
}

}  // namespace heapsight::analyzer
