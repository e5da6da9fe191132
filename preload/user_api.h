// preload/user_api.h: the preload side of include/heapsight.h (markers and
// in-program heap profiles), and the optional dump-on-signal.
//
// Exported C symbols (found by include/heapsight.h with dlsym):
//   int __heapsight_marker(const char* name);
//       A kMarker record with the current time, flushed at once.
//   int __heapsight_write_profile(const char* path);
//       Flushes every thread's buffer, writes the marker
//       "profile:<n>:<path>" (n = 1, 2, ... per process) and runs
//       `heapsight pprof <trace> --at=marker:<that name> -o <path>` on the
//       live trace (posix_spawn, without LD_PRELOAD, waited for). 0 on
//       success, -1 otherwise (tracing off, analyzer not found or failed).
// The analyzer binary: $HEAPSIGHT_ANALYZER (set by `heapsight record`), else
// next to the preload: <dir>/../cli/heapsight (build tree),
// <dir>/../../bin/heapsight (installed in <libdir>/heapsight/),
// <dir>/../bin/heapsight.
//
// HEAPSIGHT_DUMP_SIGNAL=SIGUSR2 (name with or without SIG, or a number)
// installs a handler for that signal and starts one helper thread; each
// signal makes the helper write <trace path>.<n>.pb.gz as above. Without the
// variable no handler and no thread exist.
//
// Constraints: the marker path takes this thread's state lock and may flush
// (write(2)); write_profile also locks every thread state in turn (never two
// at once), then spawns and waits with no heapsight lock held. Neither may be
// called from a signal handler; the dump signal's handler only writes one
// byte to a pipe (async-signal-safe). No malloc (PageAlloc for the spawn's
// argument arrays).
#ifndef HEAPSIGHT_PRELOAD_USER_API_H_
#define HEAPSIGHT_PRELOAD_USER_API_H_

namespace heapsight::preload {

// Writes a kMarker record named `name` (truncated to 4 KiB) at the current
// time, then flushes this thread's chunk (flush_all: every thread's). False
// if tracing is off.
bool WriteMarker(const char* name, bool flush_all);

// Writes the pprof profile of the live heap now to `path` (see above).
int WriteProfileNow(const char* path);

}  // namespace heapsight::preload

extern "C" {
__attribute__((visibility("default"))) int __heapsight_marker(const char* name);
__attribute__((visibility("default"))) int __heapsight_write_profile(const char* path);
}

#endif  // HEAPSIGHT_PRELOAD_USER_API_H_
