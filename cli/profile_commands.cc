// cli/profile_commands.cc: `heapsight pprof`, `heapsight collapse` and
// `heapsight flamegraph`, the HeapProfile family.
//
// Each command analyzes its traces (AnalyzeTrace), symbolizes each into a
// HeapProfile and writes one format. Several traces, a glob or --family (a
// whole process family, analyzer/model/trace_family.h) make one profile with
// the process on every sample (output/profile_family.h). Errors print "heapsight: <file>: <what>"
// and exit 1; a bad option value (--metric, --at, --leak-kinds) is a usage
// error found before the trace is read, and exits 2.
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analyzer/model/trace_family.h"
#include "analyzer/model/trace_model.h"
#include "analyzer/output/flamegraph_svg.h"
#include "analyzer/output/folded_stacks.h"
#include "analyzer/output/pprof_writer.h"
#include "analyzer/output/profile_family.h"
#include "analyzer/output/site_metric.h"
#include "analyzer/output/trace_heap_profile.h"
#include "analyzer/report/leak_report.h"
#include "cli/command_output.h"
#include "cli/commands.h"
#include "cli/diagnostics.h"
#include "cli/progress_bar.h"

namespace heapsight::analyzer {
namespace {

struct OutputArgs {
  std::vector<std::string> traces;  // as given: paths or globs
  bool family = false;              // --family: each trace brings its whole family
  std::string trace;                // what errors and titles call the input
  size_t processes = 1;             // traces read (LoadProfile)
  std::string output;
  std::string at = "end";
  std::string metric = "alloc_bytes";
  std::string title;
  bool include_runtime = false;
  std::string leak_kinds;  // --leak-kinds: only the leaks of these classes
};

// Parses --at into AnalyzeOptions and a description of the moment.
absl::Status ParseAt(const std::string& at, AnalyzeOptions* options, std::string* moment) {
  if (at == "end") {
    options->at = AnalyzeOptions::At::kEnd;
    *moment = "the end of the trace";
    return absl::OkStatus();
  }
  if (at == "peak") {
    options->at = AnalyzeOptions::At::kPeak;
    *moment = "the peak of the heap";
    return absl::OkStatus();
  }
  char* end = nullptr;
  errno = 0;
  double seconds = std::strtod(at.c_str(), &end);
  if (at.empty() || end != at.c_str() + at.size() || errno != 0 || !std::isfinite(seconds) ||
      seconds < 0 || seconds > 1e9) {
    return absl::InvalidArgumentError(
        absl::StrCat("--at: expected end, peak, marker:NAME or a time in seconds, got \"", at, "\""));
  }
  options->at = AnalyzeOptions::At::kTime;
  options->at_time_us = static_cast<uint64_t>(std::llround(seconds * 1e6));
  *moment = absl::StrFormat("%.6g s after the start", seconds);
  return absl::OkStatus();
}

// --at=marker:NAME after the analysis: the moment's description, or an
// error naming the markers the trace has. Markers come from
// heapsight_marker() and the preload's own "heap-limit" / "profile:<n>:<path>".
absl::Status DescribeMarker(const ProcessProfile& trace, const std::string& name,
                            std::string* moment) {
  for (const Marker& m : trace.markers) {
    if (m.name != name) continue;
    *moment = absl::StrFormat("marker \"%s\" (%.6f s after the start)", name, m.time_us / 1e6);
    return absl::OkStatus();
  }
  std::string known;
  for (const Marker& m : trace.markers) absl::StrAppend(&known, known.empty() ? "" : ", ", m.name);
  return absl::NotFoundError(absl::StrCat(trace.trace_path, ": no marker named \"", name,
                                          "\" (markers: ", known.empty() ? "none" : known, ")"));
}

// What the command line asks of the analysis, checked before any trace is
// read: a failure here is a usage error.
struct ProfileRequest {
  AnalyzeOptions options;
  std::string moment;
  std::optional<LeakKinds> kinds;  // --leak-kinds
};

absl::StatusOr<ProfileRequest> ParseRequest(const OutputArgs& args, const std::string& at) {
  ProfileRequest request;
  AnalyzeOptions& options = request.options;
  constexpr std::string_view kMarkerPrefix = "marker:";
  if (at.rfind(kMarkerPrefix, 0) == 0) {
    options.at = AnalyzeOptions::At::kMarker;  // live when the first such marker was set
    options.at_marker = at.substr(kMarkerPrefix.size());
  } else if (absl::Status st = ParseAt(at, &options, &request.moment); !st.ok()) {
    return st;
  }
  if (!args.leak_kinds.empty()) {
    absl::StatusOr<LeakKinds> kinds = ParseLeakKinds(args.leak_kinds);
    if (!kinds.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("--leak-kinds: ", kinds.status().message()));
    }
    if (options.at != AnalyzeOptions::At::kEnd) {
      return absl::InvalidArgumentError("--leak-kinds describes the end of the trace: use --at=end");
    }
    request.kinds = std::move(*kinds);
  }
  return request;
}

// Analyzes and symbolizes one trace as `request` (ParseRequest) asks.
// `in_family`: a missing --at marker is no error (the process never set it:
// it is described at its end), only one that no process has.
absl::StatusOr<output::FamilyMember> LoadOne(const OutputArgs& args, const std::string& path,
                                             ProfileRequest request, bool in_family,
                                             bool* marker_found) {
  AnalyzeOptions& options = request.options;
  std::string& moment = request.moment;
  std::unique_ptr<ProgressBar> bar = ProgressBar::ForStderr("analyzing");
  options.progress = bar.get();
  absl::StatusOr<ProcessProfile> trace = AnalyzeOneTrace(path, options);
  if (!trace.ok()) return BadInput(trace.status());
  // A profile at a marker the trace has is whole however the trace ends
  // after it: heapsight_write_profile() reads its own live trace so.
  bool before_cut = false;
  if (options.at == AnalyzeOptions::At::kMarker) {
    absl::Status st = DescribeMarker(*trace, options.at_marker, &moment);
    if (st.ok()) {
      *marker_found = true;
      before_cut = true;
    } else if (in_family) {
      moment = absl::StrCat("marker \"", options.at_marker, "\" (at the end where not set)");
    } else {
      return st;
    }
  }
  if (!trace->complete && !before_cut) NoteCutShortTrace(path, trace->truncated);
  PrintAnalysisWarnings(*trace);
  if (request.kinds.has_value()) {
    // Issue 5: leaks of the given reachability classes only (inuse_* at the
    // end and leaked_* become those blocks).
    LeakKinds* kinds = &*request.kinds;
    if (args.leak_kinds.find("unfreed") == std::string::npos) kinds->erase(LeakClass::kUnclassified);
    LeakClassData classes = std::move(trace->leak_classes);
    if (absl::Status st = RestrictToLeakKinds(&*trace, classes, *kinds, true); !st.ok()) return st;
    moment = absl::StrCat(moment, ", ", args.leak_kinds, " leaks only");
  }
  output::TraceHeapProfileOptions profile_options;
  profile_options.include_runtime = args.include_runtime;
  profile_options.moment = moment;
  absl::StatusOr<output::HeapProfile> profile = output::HeapProfileFromTrace(*trace, profile_options);
  if (!profile.ok()) return profile.status();
  output::FamilyMember member;
  member.profile = std::move(*profile);
  member.pid = static_cast<int64_t>(trace->pid);
  member.executable = trace->exe;
  member.trace_path = path;
  return member;
}

// The traces the command line names (globs and --family expanded); one
// trace gives its own profile, several one profile of all their processes.
absl::StatusOr<output::HeapProfile> LoadProfile(OutputArgs& args, const ProfileRequest& request) {
  if (absl::Status st = CheckFamilyArguments(args.traces, args.family); !st.ok()) return st;
  if (absl::Status st = ResolveTraceArguments(&args.traces); !st.ok()) return st;
  absl::StatusOr<std::vector<std::string>> paths = ExpandTraceArguments(args.traces, args.family);
  if (!paths.ok()) return BadInput(paths.status());
  if (paths->empty()) return absl::InvalidArgumentError("no trace given");
  const bool family = paths->size() > 1;
  args.processes = paths->size();
  args.trace = family ? absl::StrCat(paths->size(), " traces (", paths->front(), ", ...)")
                      : paths->front();
  std::vector<output::FamilyMember> members;
  bool marker_found = false;
  for (const std::string& path : *paths) {
    absl::StatusOr<output::FamilyMember> member =
        LoadOne(args, path, request, family, &marker_found);
    if (!member.ok()) return member.status();
    members.push_back(std::move(*member));
  }
  if (!family) return std::move(members.front().profile);
  if (request.options.at == AnalyzeOptions::At::kMarker && !marker_found) {
    return absl::NotFoundError(absl::StrCat("no process of the ", paths->size(),
                                            " traces has a marker named \"",
                                            request.options.at_marker, "\""));
  }
  return output::MergeFamilyProfiles(std::move(members));
}

int RunPprof(OutputArgs args) {
  absl::StatusOr<ProfileRequest> request = ParseRequest(args, args.at);
  if (!request.ok()) return FailUsage(request.status());
  absl::StatusOr<output::HeapProfile> profile = LoadProfile(args, *request);
  if (!profile.ok()) return Fail(profile.status());
  absl::StatusOr<perftools::profiles::Profile> pprof = output::BuildPprofProfile(*profile);
  if (!pprof.ok()) {
    return Fail(absl::Status(pprof.status().code(),
                             absl::StrCat(args.trace, ": ", pprof.status().message())));
  }
  absl::StatusOr<std::string> gz = output::EncodePprof(*pprof);
  if (!gz.ok()) {
    return Fail(absl::InternalError(absl::StrCat(args.output, ": ", gz.status().message())));
  }
  if (args.output.empty()) args.output = DefaultOutputPath(args.traces, "pb.gz");
  if (absl::Status st = WriteOutputAndTell(args.output, *gz, "the pprof profile"); !st.ok()) {
    return Fail(st);
  }
  return 0;
}

// The temporary metrics need every call of a thread: refuse them on a
// sampled trace rather than print numbers that mean nothing.
absl::Status CheckMetricFits(const output::HeapProfile& profile, output::SiteMetric metric,
                             const std::string& trace) {
  if (!output::SiteMetricNeedsExactTrace(metric) || profile.sample_period <= 1) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      trace, ": --metric ", std::string(output::SiteMetricName(metric)),
      " needs an exact trace; this one is sampled (HEAPSIGHT_SAMPLE_BYTES), and a sampled trace "
      "does not record the calls that decide whether an allocation is temporary"));
}

// What collapse and flamegraph share: --metric parsed, the traces' profile
// loaded at the end, the metric checked against it, and its folded stacks.
// Returns 0, or the exit status of the error it printed.
int LoadFoldedStacks(OutputArgs& args, output::SiteMetric* metric,
                     output::HeapProfile* profile, std::vector<output::FoldedStack>* stacks) {
  absl::StatusOr<output::SiteMetric> parsed = output::ParseSiteMetric(args.metric);
  if (!parsed.ok()) return FailUsage(parsed.status());
  absl::StatusOr<ProfileRequest> request = ParseRequest(args, "end");
  if (!request.ok()) return FailUsage(request.status());
  absl::StatusOr<output::HeapProfile> loaded = LoadProfile(args, *request);
  if (!loaded.ok()) return Fail(loaded.status());
  if (absl::Status st = CheckMetricFits(*loaded, *parsed, args.trace); !st.ok()) return Fail(st);
  *metric = *parsed;
  *profile = std::move(*loaded);
  *stacks = output::CollapseProfile(*profile, *metric);
  return 0;
}

int RunCollapse(OutputArgs args) {
  output::SiteMetric metric{};
  output::HeapProfile profile;
  std::vector<output::FoldedStack> stacks;
  if (int st = LoadFoldedStacks(args, &metric, &profile, &stacks); st != 0) return st;
  std::string text = output::FormatFoldedStacks(stacks);
  if (absl::Status st = WriteOutput(args.output, text); !st.ok()) return Fail(st);
  return 0;
}

int RunFlamegraph(OutputArgs args) {
  output::SiteMetric metric{};
  output::HeapProfile profile;
  std::vector<output::FoldedStack> stacks;
  if (int st = LoadFoldedStacks(args, &metric, &profile, &stacks); st != 0) return st;
  int64_t total = 0;
  for (const output::FoldedStack& s : stacks) {
    if (s.value > 0 && __builtin_add_overflow(total, s.value, &total)) total = INT64_MAX;
  }
  output::FlameGraphOptions options;
  options.unit = std::string(output::SiteMetricUnit(metric));
  std::string program = profile.executable.empty() ? args.trace : profile.executable;
  if (args.processes > 1) {
    program = absl::StrCat("a process family of ", args.processes, " (", program, ", ...)");
  }
  options.title = args.title.empty()
                      ? absl::StrCat("heapsight: ", std::string(output::SiteMetricName(metric)), " of ",
                                     program)
                      : args.title;
  options.subtitle = absl::StrCat(args.processes > 1 ? "" : "trace ", args.trace, ", total ", total, " ", options.unit,
                                  " (click a frame to zoom, the root to reset)");
  std::string svg = output::RenderFlameGraphSvg(stacks, options);
  if (args.output.empty()) args.output = DefaultOutputPath(args.traces, "svg");
  if (absl::Status st = WriteOutputAndTell(args.output, svg, "the flame graph"); !st.ok()) {
    return Fail(st);
  }
  return 0;
}

// The options all three commands share; `leak_kinds_effect` says what
// --leak-kinds does to this command's output (each --help describes only
// its own command).
void AddTraceArgs(CLI::App* cmd, OutputArgs* args, const std::string& leak_kinds_effect) {
  cmd->add_option("TRACE", args->traces,
                  "Trace files written by `heapsight record`, or quoted globs; several make one "
                  "profile with a root frame / pid and executable labels per process; - is "
                  "standard input; none: the newest heapsight.*.hst here");
  cmd->add_flag("--family", args->family,
                "Also take every trace of each TRACE's process family: the traces in its "
                "directory linked to it as fork children, exec'd images or parents");
  cmd->add_flag("--include-runtime", args->include_runtime,
                "Also count blocks the C/C++ runtime allocates for itself");
  cmd->add_option("--leak-kinds", args->leak_kinds,
                  "Only blocks not freed at exit of these reachability classes: comma-separated "
                  "definite, indirect, possible, reachable, unfreed (no scan), or all. " +
                      leak_kinds_effect);
}

std::string MetricHelp() {
  return absl::StrCat("Value per stack: ", std::string(output::kSiteMetricNames),
                      " (docs/glossary.md, Metrics; older names: ",
                      std::string(output::kSiteMetricAliases), ")");
}

}  // namespace

void RegisterProfileCommands(CLI::App& app, int* exit_code) {
  auto pprof_args = std::make_shared<OutputArgs>();
  CLI::App* pprof = app.add_subcommand(
      "pprof", "Write a gzipped pprof heap profile (profile.proto) for `go tool pprof`");
  AddTraceArgs(pprof, pprof_args.get(),
               "Sets inuse_space/inuse_objects (at the end) to those blocks");
  pprof->add_option("-o,--output", pprof_args->output,
                    "Output file (default: the trace's name with .pb.gz, in the current directory)");
  pprof->add_option("--at", pprof_args->at,
                    "Moment that inuse_* describes: end, peak, SECONDS after the start, or marker:NAME "
                    "(the first marker NAME, e.g. from heapsight_marker() or heap-limit)")
      ->capture_default_str();
  pprof->callback([pprof_args, exit_code] { *exit_code = RunPprof(*pprof_args); });

  auto collapse_args = std::make_shared<OutputArgs>();
  CLI::App* collapse = app.add_subcommand(
      "collapse", "Write folded stacks (flamegraph.pl, inferno, speedscope)");
  AddTraceArgs(collapse, collapse_args.get(),
               "--metric=not_freed_bytes then counts only those blocks");
  collapse_args->output = "-";
  collapse->add_option("-o,--output", collapse_args->output, "Output file (default: stdout)");
  collapse->add_option("--metric", collapse_args->metric, MetricHelp())
      ->capture_default_str();
  collapse->callback([collapse_args, exit_code] { *exit_code = RunCollapse(*collapse_args); });

  auto flame_args = std::make_shared<OutputArgs>();
  CLI::App* flame = app.add_subcommand(
      "flamegraph", "Write an interactive SVG flame graph (hover, click to zoom, search)");
  AddTraceArgs(flame, flame_args.get(),
               "--metric=not_freed_bytes then counts only those blocks");
  flame->add_option("-o,--output", flame_args->output,
                    "Output file (default: the trace's name with .svg, in the current directory)");
  flame->add_option("--metric", flame_args->metric, MetricHelp())
      ->capture_default_str();
  flame->add_option("--title", flame_args->title, "Title of the graph");
  flame->callback([flame_args, exit_code] { *exit_code = RunFlamegraph(*flame_args); });
}

}  // namespace heapsight::analyzer
