// format/spool_recovery.h: appends to a trace the chunks its writer left in
// "<trace>.spool" when it died (format/spool_format.h).
//
// A traced process hands its full chunks to a writer thread through a
// spool file mapped MAP_SHARED; a chunk there survives the process's death
// (SIGKILL) in the page cache, but is not in the trace yet. RecoverSpool
// puts it there: TraceReader::Open calls it, so every reader of the trace
// (every heapsight command) sees what the process recorded.
//
// A spool is recovered only when its writer is gone: the process holds an
// flock on it for as long as it maps it, so a live process's spool (a trace
// read while it grows) is left alone. Recovery cuts a block the process was
// killed in the middle of writing off the trace's end, appends the sealed
// blocks in hand-over order, skips any whose (thread, sequence) the trace
// already has, and removes the spool. The spool is untrusted input: every
// slot is bounds-checked, and only whole raw blocks whose header matches
// their chunk are appended.
#ifndef HEAPSIGHT_FORMAT_SPOOL_RECOVERY_H_
#define HEAPSIGHT_FORMAT_SPOOL_RECOVERY_H_

#include <string>

#include "absl/status/statusor.h"

namespace heapsight::format {

// Number of blocks appended to `trace_path`. 0 (and nothing changed) when
// there is no spool, its writer still holds it, or the trace is not
// writable. An error when the spool or the trace is corrupt or a write
// fails; the spool is then kept.
absl::StatusOr<int> RecoverSpool(const std::string& trace_path);

}  // namespace heapsight::format

#endif  // HEAPSIGHT_FORMAT_SPOOL_RECOVERY_H_
