// cli/dump_command.cc: `heapsight dump`, every record of a trace as text
// (trace_dump.h), a debugging aid.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "analyzer/report/trace_dump.h"
#include "cli/commands.h"
#include "cli/diagnostics.h"

namespace heapsight::analyzer {

void RegisterDumpCommand(CLI::App& app, int* exit_code) {
  auto traces = std::make_shared<std::vector<std::string>>();
  CLI::App* dump = app.add_subcommand("dump", "Print every record of a trace (debugging aid)");
  dump->add_option("TRACE", *traces, "Trace files")->required();
  dump->callback([traces, exit_code] {
    *exit_code = 0;
    for (const std::string& path : *traces) {
      absl::Status s = DumpTrace(path, stdout);
      if (!s.ok()) {
        std::fflush(stdout);
        PrintError(s);
        *exit_code = 1;
      }
    }
  });
}

}  // namespace heapsight::analyzer
