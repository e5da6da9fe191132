// preload/tracer_state.h: what every part of the preload shares: whether
// tracing runs, the options it runs with, the process's two tables (live
// blocks, interned stacks), and the one warning that stops tracing.
//
// The recorder, the leak scan, the thread registry and the lifecycle all
// read this state; it includes none of them, so dependencies run one way:
// lifecycle -> {recorder, leak_check} -> thread_state -> {clock, tracer_state}.
//
// Constraints: no malloc, no locks of its own (the tables have their own
// shard/stack locks). The status is read on every hook (one relaxed load).
// WarnOnce formats one raw line (raw_log.h, no allocation). The options are
// written once by the lifecycle before tracing starts and only read after.
#ifndef HEAPSIGHT_PRELOAD_TRACER_STATE_H_
#define HEAPSIGHT_PRELOAD_TRACER_STATE_H_

#include <atomic>

#include "preload/live_table.h"
#include "preload/options.h"
#include "preload/stack_table.h"

namespace heapsight::preload {

// kUninit until the constructor has started the trace; kDisabled for good
// after HEAPSIGHT_DISABLE, a failed start or a failed write. kPaused
// (HEAPSIGHT_START=paused, issue 19): the hooks pass every call through,
// nothing is recorded or tabled; `heapsight attach` makes it kActive (a
// window) and `heapsight detach` kPaused again (control.h). kDisabled and
// kPaused are the two values above kActive, so "> kActive" means "pass
// through".
enum TracingStatus : int { kUninit = 0, kActive = 1, kDisabled = 2, kPaused = 3 };

extern std::atomic<int> g_tracing_status;

// The status for a hook's fast path (relaxed: a hook that misses a change
// by one event records or skips that one event).
inline int TracingStatusRelaxed() { return g_tracing_status.load(std::memory_order_relaxed); }

// True while the trace is being written (hooks may skip work otherwise).
inline bool TracingActive() { return TracingStatusRelaxed() == kActive; }

// True while the trace is an attached window (kFileFlagAttached): a free of
// a block the live table does not know is a block allocated before the
// attach, passed on without a record and without a bad-free report.
extern std::atomic<bool> g_partial_window;

// The parsed HEAPSIGHT_* options (set by StartTracing, lifecycle.h).
extern Options g_options;

// Every live block of the program (and the internal ones, flagged). With
// address frees (g_address_frees) only heapsight's internal blocks and the
// rare program block that has no cell (live_cells.h): the cells hold the
// program's.
extern LiveTable g_live_blocks;

// HEAPSIGHT_PAIRING=address, in effect (an exact trace: not sampled, not
// compact, not a paused start): frees name addresses (format version 6) and
// the program's live blocks are g_live_cells's. Set once by
// ConfigureRecorder before tracing starts; a fork child keeps it.
extern bool g_address_frees;
// Every stack the trace has seen, interned as nodes.
extern StackTable g_stack_table;

// "<what> <path>: <errno name> (errno N); tracing disabled", once per
// process and not with HEAPSIGHT_QUIET.
void WarnOnce(const char* what, const char* path, int err);

// A write(2) of the trace failed: warn once, stop tracing.
void OnWriteError(int err);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_TRACER_STATE_H_
