// analyzer/symbols/debuginfo_lookup.h: where the symbolizer's libdwfl
// sessions look for separate debug files, and in what form they get them.
//
// Two sets of callbacks. A symbol-table session uses elfutils' standard
// lookup (by build id under each debug directory, by .gnu_debuglink, then
// debuginfod when DEBUGINFOD_URLS is set); libdwfl opens the debug file for
// its .symtab without touching its DWARF. A DWARF session finds the same
// file, but hands libdwfl an inflated copy when its sections are compressed
// (inflated_debug_file.h): libdw's own inflating costs about three times as
// much. A debug file found by build id is rather inflated into memory and
// opened as the module's own ELF file (OpenInMemoryDwarf). The debug
// directories are HEAPSIGHT_DEBUGINFO_PATH's (colon-separated) or
// /usr/lib/debug, read once.
#ifndef HEAPSIGHT_ANALYZER_SYMBOLS_DEBUGINFO_LOOKUP_H_
#define HEAPSIGHT_ANALYZER_SYMBOLS_DEBUGINFO_LOOKUP_H_

#include <elfutils/libdwfl.h>

#include "analyzer/symbols/inflated_debug_file.h"

namespace heapsight::analyzer {

const Dwfl_Callbacks& SymbolTableCallbacks();
const Dwfl_Callbacks& DwarfCallbacks();

// A DWARF session over a debug file inflated into memory
// (InflateDebugImage) instead of a memfd: found by `module`'s build id
// under the debug directories, with compressed sections. The caller takes
// all three and must end the session (dwfl_end) before the image goes.
struct InMemoryDwarf {
  Dwfl* dwfl = nullptr;  // null: no such file (the memfd path may still find one)
  Dwfl_Module* module = nullptr;
  InflatedDebugImage image;
};

// `module`: a symbol-table session's module of the file (its build id, name
// and address range are used).
InMemoryDwarf OpenInMemoryDwarf(Dwfl_Module* module);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_SYMBOLS_DEBUGINFO_LOOKUP_H_
