// cli/dump_command.cc: `heapsight dump`, every record of a trace as text
// (trace_dump.h), a debugging aid.
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "analyzer/report/trace_dump.h"
#include "cli/command_output.h"
#include "cli/commands.h"
#include "cli/diagnostics.h"
#include "cli/progress_bar.h"

namespace heapsight::analyzer {

void RegisterDumpCommand(CLI::App& app, int* exit_code) {
  auto traces = std::make_shared<std::vector<std::string>>();
  CLI::App* dump = app.add_subcommand("dump", "Print every record of a trace (debugging aid)");
  dump->add_option("TRACE", *traces,
                   "Trace files; - is standard input; none: the newest heapsight.*.hst here");
  dump->callback([traces, exit_code] {
    *exit_code = 0;
    std::vector<std::string> paths = *traces;
    if (absl::Status st = ResolveTraceArguments(&paths); !st.ok()) {
      *exit_code = Fail(st);
      return;
    }
    // A bar on stderr only when the records go elsewhere (`dump T > file`):
    // on one terminal the bar would cut into the dump's lines.
    std::unique_ptr<ProgressBar> bar =
        isatty(STDOUT_FILENO) == 0 ? ProgressBar::ForStderr("dumping") : nullptr;
    for (const std::string& path : paths) {
      bool cut_short = false, truncated = false;
      absl::Status s = DumpTrace(path, stdout, bar.get(), &cut_short, &truncated);
      if (s.ok() && cut_short) NoteCutShortTrace(path, truncated);
      if (!s.ok()) {
        std::fflush(stdout);
        PrintError(s);
        *exit_code = kExitBadInput;
      }
    }
  });
}

}  // namespace heapsight::analyzer
