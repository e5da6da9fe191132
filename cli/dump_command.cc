// cli/dump_command.cc: `heapsight dump`, every record of a trace as text
// (trace_dump.h), a debugging aid.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "analyzer/report/trace_dump.h"
#include "cli/command_output.h"
#include "cli/commands.h"
#include "cli/diagnostics.h"

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
    for (const std::string& path : paths) {
      absl::Status s = DumpTrace(path, stdout);
      if (!s.ok()) {
        std::fflush(stdout);
        PrintError(s);
        *exit_code = kExitBadInput;
      }
    }
  });
}

}  // namespace heapsight::analyzer
