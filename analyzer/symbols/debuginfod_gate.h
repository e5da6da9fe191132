// analyzer/symbols/debuginfod_gate.h: loads elfutils' debuginfod client only
// when a debuginfod server is configured.
//
// libdwfl (elfutils 0.188) dlopens libdebuginfod the first time a module's
// separate debug file is not found on disk, whether or not DEBUGINFOD_URLS
// is set, and libdebuginfod pulls in libcurl, GnuTLS, Kerberos, LDAP and
// their libraries (about 25 shared objects): 27 M instructions of dynamic
// linking, curl's global initialization and 7 MB of resident memory, on a
// small trace a tenth of `heapsight report`'s time. With DEBUGINFOD_URLS
// unset or empty the client does nothing at all (it neither asks a server
// nor reads its cache), so not loading it changes no result.
//
// The gate is heapsight's own `dlopen`: the command defines it, so libdw's
// call binds to it (an executable's definitions come first in symbol
// lookup). It declines libdebuginfod's soname when no server is configured
// and passes every other call to the C library's dlopen (RTLD_NEXT)
// unchanged. libdwfl then behaves as when libdebuginfod is not installed:
// it skips the server lookup. With DEBUGINFOD_URLS set, debuginfod works as
// before (tests/analyzer/symbols/debuginfo_test.py checks both).
#ifndef HEAPSIGHT_ANALYZER_SYMBOLS_DEBUGINFOD_GATE_H_
#define HEAPSIGHT_ANALYZER_SYMBOLS_DEBUGINFOD_GATE_H_

#include <cstdint>

namespace heapsight::analyzer {

// True if DEBUGINFOD_URLS is set and not empty (read at each call: libdw
// asks once per process, on its first miss).
bool DebuginfodConfigured();

// How many times the gate declined to load libdebuginfod in this process.
uint64_t DebuginfodLoadsDeclined();

// Makes sure the gate is linked into the program (the symbolizer calls it):
// a static library's object is only linked when something refers to it.
void LinkDebuginfodGate();

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_SYMBOLS_DEBUGINFOD_GATE_H_
