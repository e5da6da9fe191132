// analyzer/output/output_commands.cc: scaffolding until the output formats land.
#include "analyzer/commands.h"

namespace heapsight::analyzer {
void RegisterOutputCommands(CLI::App&, int*) {}
}  // namespace heapsight::analyzer
