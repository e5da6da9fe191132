// cli/html_command.cc: `heapsight html`, one self-contained HTML page for a
// trace or a process family (html_report.h). Several traces, or a quoted
// glob that heapsight expands itself, make one page with the process tree,
// a selector and the family's totals; --family takes a whole family from
// one of its traces (analyzer/model/trace_family.h).
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "analyzer/model/trace_family.h"
#include "analyzer/model/trace_model.h"
#include "analyzer/output/html_report.h"
#include "analyzer/report/leak_report.h"
#include "analyzer/report/suppressions.h"
#include "cli/command_output.h"
#include "cli/commands.h"
#include "cli/frames_option.h"
#include "cli/diagnostics.h"

namespace heapsight::analyzer {
namespace {

struct HtmlArgs {
  std::vector<std::string> traces;
  std::string output;
  size_t top = 10;
  size_t frames = kDefaultSiteFrames;
  bool family = false;
};

int RunHtml(const HtmlArgs& args) {
  // Globs and whole families (--family) as pprof/flamegraph/collapse take
  // them (trace_family.h), parents first.
  std::vector<std::string> arguments = args.traces;
  if (absl::Status st = CheckFamilyArguments(arguments, args.family); !st.ok()) return Fail(st);
  if (absl::Status st = ResolveTraceArguments(&arguments); !st.ok()) return Fail(st);
  absl::StatusOr<std::vector<std::string>> paths = ExpandTraceArguments(arguments, args.family);
  if (!paths.ok()) return FailInput(paths.status());
  AnalyzeOptions options;
  options.track_growth = true;
  std::vector<ProcessProfile> traces;
  if (int st = AnalyzeTraces(*paths, &traces, options); st != 0) return st;
  for (const ProcessProfile& t : traces) PrintAnalysisWarnings(t);
  // The leak report decides which blocks are leaks (an image that ended in
  // exec has none); the page shows its per-process totals.
  LeakReport leaks = BuildLeakReport(Pointers(traces), Suppressions());
  std::vector<output::HtmlProcess> processes(traces.size());
  for (size_t i = 0; i < traces.size(); ++i) {
    processes[i].trace = &traces[i];
    if (leaks.processes.size() == traces.size()) {
      processes[i].leaks_known = true;
      processes[i].leaked = leaks.processes[i].totals.leaked;
      processes[i].discarded_by_exec = leaks.processes[i].totals.discarded_by_exec;
      output::HtmlLeaks& l = processes[i].leaks;
      l.known = true;
      l.scanned = leaks.processes[i].scanned;
      l.no_scan_reason = leaks.processes[i].no_scan_reason;
      l.estimated = leaks.processes[i].totals.estimated;
      l.classes = leaks.processes[i].totals.classes;
      l.suppressed = leaks.processes[i].totals.suppressed;
      for (const LeakGroup& g : leaks.groups) {
        if (g.process == i) l.groups.push_back({g.kind, g.counts, g.api, g.stack});
      }
      for (const LeakFreeError& e : leaks.errors) {
        if (e.process == i) l.errors.push_back(e.event);
      }
    }
  }
  output::HtmlReportOptions html;
  html.top = args.top;
  html.frames = args.frames;
  std::string page = output::RenderHtmlReport(processes, html);
  // -o is optional, as for pprof and flamegraph: the first trace's name
  // with .html (.family.html for several), and stderr says where it went.
  std::string output =
      args.output.empty() ? DefaultOutputPath(*paths, "html") : args.output;
  if (absl::Status st = WriteOutputAndTell(output, page, "the HTML report"); !st.ok()) {
    return Fail(st);
  }
  for (const ProcessProfile& t : traces) PrintSymbolizerWarnings(t);
  return 0;
}

}  // namespace

void RegisterHtmlCommand(CLI::App& app, int* exit_code) {
  auto html_args = std::make_shared<HtmlArgs>();
  CLI::App* html = app.add_subcommand(
      "html", "Write a self-contained HTML report of a trace or a process family: process tree, "
              "totals, heap over time, top call sites, growing call sites, flame graph");
  html->add_option("TRACE", html_args->traces,
                   "Trace files written by `heapsight record`; several (or a quoted glob such "
                   "as 'dir/*.hst') make one page with a process selector; - is standard input; "
                   "none: the newest heapsight.*.hst here");
  html->add_option("-o,--output", html_args->output,
                   "Output file (default: the trace's name with .html, or .family.html for "
                   "several traces, in the current directory; - is stdout)");
  html->add_flag("--family", html_args->family,
                 "Also take every trace of each TRACE's process family: the traces in its "
                 "directory linked to it as fork children, exec'd images or parents");
  html->add_option("--top", html_args->top, "Rows per table")->capture_default_str();
  AddFramesOption(html, &html_args->frames);
  html->callback([html_args, exit_code] { *exit_code = RunHtml(*html_args); });
}

}  // namespace heapsight::analyzer
