// analyzer/symbols/debuginfo_lookup.h: where the symbolizer's libdwfl
// sessions look for separate debug files, and in what form they get them.
//
// Two sets of callbacks. A symbol-table session uses elfutils' standard
// lookup (by build id under each debug directory, by .gnu_debuglink, then
// debuginfod when DEBUGINFOD_URLS is set); libdwfl opens the debug file for
// its .symtab without touching its DWARF. A DWARF session finds the same
// file, but hands libdwfl an inflated copy when its sections are compressed
// (inflated_debug_file.h): libdw's own inflating costs about three times as
// much. The debug directories are HEAPSIGHT_DEBUGINFO_PATH's (colon-
// separated) or /usr/lib/debug, read once.
#ifndef HEAPSIGHT_ANALYZER_SYMBOLS_DEBUGINFO_LOOKUP_H_
#define HEAPSIGHT_ANALYZER_SYMBOLS_DEBUGINFO_LOOKUP_H_

#include <elfutils/libdwfl.h>

namespace heapsight::analyzer {

const Dwfl_Callbacks& SymbolTableCallbacks();
const Dwfl_Callbacks& DwarfCallbacks();

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_SYMBOLS_DEBUGINFO_LOOKUP_H_
