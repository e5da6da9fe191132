// cli/leaks_command.cc: `heapsight leaks`, the blocks not freed at exit
// grouped by stack and reachability class (LeakSanitizer-style text or
// JSON), with memcheck-style exit codes for CI.
//
// As LeakSanitizer and memcheck do, the text lists the stacks of definite,
// indirect and possible leaks (and the blocks of a trace without a scan);
// still-reachable stacks only with --show-reachable or --show-kinds. The
// LEAK SUMMARY always counts all four classes, and the JSON always carries
// every group of every class, whatever the text lists.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "analyzer/report/leak_report.h"
#include "analyzer/report/suppressions.h"
#include "cli/command_output.h"
#include "cli/commands.h"
#include "cli/diagnostics.h"

namespace heapsight::analyzer {
namespace {

struct LeaksArgs {
  std::vector<std::string> traces;
  std::string format = "text";
  std::string suppressions;
  int leak_exitcode = 0;
  int error_exitcode = 0;
  std::string leak_kinds = "definite,possible";
  std::string show_kinds = "definite,indirect,possible";
  bool show_reachable = false;
};

int RunLeaks(const LeaksArgs& args) {
  // Usage errors first (status 2), before any trace is analyzed.
  absl::StatusOr<LeakKinds> kinds = ParseLeakKinds(args.leak_kinds);
  absl::StatusOr<LeakKinds> shown = ParseLeakKinds(args.show_kinds);
  if (!kinds.ok()) return FailUsage(absl::InvalidArgumentError(
      absl::StrCat("--leak-kinds: ", kinds.status().message())));
  if (!shown.ok()) return FailUsage(absl::InvalidArgumentError(
      absl::StrCat("--show-kinds: ", shown.status().message())));
  absl::StatusOr<Suppressions> rules = Suppressions::Load(args.suppressions);
  if (!rules.ok()) return Fail(rules.status());
  std::vector<ProcessProfile> profiles;
  if (int st = AnalyzeTraces(args.traces, &profiles); st != 0) return st;
  LeakReport report = BuildLeakReport(Pointers(profiles), *rules);
  bool failed_leaks = CountedLeaks(report, *kinds).blocks != 0;
  if (args.show_reachable) shown->insert(LeakClass::kReachable);
  std::string text;
  if (args.format == "json") {
    text = FormatLeakJson(report);  // every class, whatever the text would list
  } else {
    std::erase_if(report.groups, [&](const LeakGroup& g) { return shown->count(g.kind) == 0; });
    text = FormatLeakText(report);
  }
  Emit(text, profiles);
  if (failed_leaks && args.leak_exitcode != 0) return args.leak_exitcode;
  if (!report.errors.empty()) return args.error_exitcode;
  return 0;
}

}  // namespace

void RegisterLeaksCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<LeaksArgs>();
  CLI::App* leaks = app.add_subcommand(
      "leaks", "Blocks not freed at exit, grouped by stack (LeakSanitizer-style text or JSON)");
  leaks->add_option("TRACE", args->traces, "Trace files; - is standard input; none: the newest heapsight.*.hst here");
  leaks->add_option("--format", args->format,
                    "text or json (schema heapsight-leaks/1, docs/leak-report.schema.json; "
                    "every leak kind, whatever --show-kinds lists)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  leaks->add_option("--suppressions", args->suppressions,
                    "LeakSanitizer-style suppressions file (leak:<pattern> lines)");
  leaks->add_option("--leak-exitcode", args->leak_exitcode,
                    "Exit status when unsuppressed leaks of the --leak-kinds remain (default 0)");
  leaks->add_option("--error-exitcode", args->error_exitcode,
                    "Exit status when the program made free errors: invalid, double or "
                    "mismatched frees (default 0; --leak-exitcode wins when both apply)");
  leaks->add_option("--leak-kinds", args->leak_kinds,
                    "Leak kinds --leak-exitcode counts: comma-separated definite, indirect, "
                    "possible, reachable, or all, none (memcheck's --errors-for-leak-kinds)")
      ->capture_default_str();
  leaks->add_option("--show-kinds", args->show_kinds,
                    "Leak kinds whose stacks the text lists (the summary always counts all "
                    "four, the JSON always has every kind): comma-separated definite, "
                    "indirect, possible, reachable, or all (memcheck's --show-leak-kinds)")
      ->capture_default_str();
  leaks->add_flag("--show-reachable", args->show_reachable,
                  "Also list the still-reachable stacks (memcheck's --show-reachable=yes; "
                  "same as adding reachable to --show-kinds)");
  leaks->callback([args, exit_code] { *exit_code = RunLeaks(*args); });
}

}  // namespace heapsight::analyzer
