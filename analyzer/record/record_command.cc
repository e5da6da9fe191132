// analyzer/record/record_command.cc: scaffolding until the record command lands.
#include "analyzer/commands.h"

namespace heapsight::analyzer {
void RegisterRecordCommand(CLI::App&, int*) {}
}  // namespace heapsight::analyzer
