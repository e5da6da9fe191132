// analyzer/report_commands.cc: scaffolding until the analysis core lands.
#include "analyzer/commands.h"

namespace heapsight::analyzer {
void RegisterReportCommands(CLI::App&, int*) {}
}  // namespace heapsight::analyzer
