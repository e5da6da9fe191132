// cli/html_command.cc: `heapsight html`, one self-contained HTML page per
// trace (html_report.h).
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "analyzer/model/trace_model.h"
#include "analyzer/output/html_report.h"
#include "analyzer/output/trace_heap_profile.h"
#include "cli/command_output.h"
#include "cli/commands.h"
#include "cli/diagnostics.h"
#include "cli/progress_bar.h"

namespace heapsight::analyzer {
namespace {

struct HtmlArgs {
  std::string trace;
  std::string output;
  size_t top = 10;
  size_t frames = 8;
};

int RunHtml(const HtmlArgs& args) {
  AnalyzeOptions options;
  options.track_growth = true;
  std::unique_ptr<ProgressBar> bar = ProgressBar::ForStderr("analyzing");
  options.progress = bar.get();
  absl::StatusOr<ProcessProfile> trace = AnalyzeTrace(args.trace, options);
  if (!trace.ok()) return Fail(trace.status());
  PrintAnalysisWarnings(*trace);
  absl::StatusOr<output::HeapProfile> profile =
      output::HeapProfileFromTrace(*trace, output::TraceHeapProfileOptions{});
  if (!profile.ok()) return Fail(profile.status());
  output::HtmlReportOptions html;
  html.top = args.top;
  html.frames = args.frames;
  std::string page = output::RenderHtmlReport(*trace, *profile, html);
  if (absl::Status st = WriteOutput(args.output, page); !st.ok()) return Fail(st);
  return 0;
}

}  // namespace

void RegisterHtmlCommand(CLI::App& app, int* exit_code) {
  auto html_args = std::make_shared<HtmlArgs>();
  CLI::App* html = app.add_subcommand(
      "html", "Write a self-contained HTML report: totals, heap over time, top call sites, "
              "growing call sites, flame graph");
  html->add_option("TRACE", html_args->trace, "Trace file written by `heapsight record`")
      ->required();
  html->add_option("-o,--output", html_args->output, "Output file, e.g. report.html")
      ->required();
  html->add_option("--top", html_args->top, "Rows per table")->capture_default_str();
  html->add_option("--frames", html_args->frames, "Frames per call site")->capture_default_str();
  html->callback([html_args, exit_code] { *exit_code = RunHtml(*html_args); });
}

}  // namespace heapsight::analyzer
