// preload/lifecycle.h: the trace's life in the process: start (options,
// clock, file, process and module records), exit, fork and exec.
//
// The constructor starts the trace; exit, _exit and the library destructor
// end or flush it; fork gives the child a trace of its own that inherits
// the parent's live blocks; exec ends the trace and hands its path to the
// new program through the environment.
//
// Constraints: no malloc (PageAlloc for the process record and the exec
// environment), raw-log text only for the one-time warnings and
// HEAPSIGHT_STATS. The fork handlers take every preload lock in the event
// path's nesting order. Not async-signal-safe.
#ifndef HEAPSIGHT_PRELOAD_LIFECYCLE_H_
#define HEAPSIGHT_PRELOAD_LIFECYCLE_H_

#include <cstdint>

#include "format/trace_format.h"
#include "preload/tracer_state.h"

namespace heapsight::preload {

// Parses the options, opens the trace and writes its first records, once
// per process (the first caller wins; later calls return at once).
// Tracing is active afterwards unless it was disabled. Called by the first
// hook call that finds libc up (StartTracingIfUninit), else by our library
// constructor.
void StartTracing();

// Slow path of StartTracingIfUninit.
void StartTracingEarly();

// Issue 14 fault 3: every allocation from the program's first instruction
// on is recorded, also those in the constructors of libraries initialized
// before ours (libselinux's in ls, GLib's...). So the first hook call
// starts the trace, before it records its own event; our constructor only
// starts it if no hook did. Not while libc itself is not initialized yet
// (the loader's own allocations between relocation and libc's constructor;
// `environ` is still null then): those stay internal, as before.
inline void StartTracingIfUninit() {
  if (__builtin_expect(g_tracing_status.load(std::memory_order_relaxed) == kUninit, 0)) {
    StartTracingEarly();
  }
}

// exit() hook and main()'s return: the status FinishTrace writes from the
// atexit handler; also the exit point (BeginExit, recorder.h).
void RecordExitStatus(int status);

// Flushes every thread, runs the exit leak scan (unless exec) and writes
// kEnd, once; the exit point at the latest (unless exec). A no-op in a vfork
// child.
void FinishTrace(format::EndReason reason, int64_t status);

// Library destructor: flush what threads buffered since FinishTrace (the
// exit point at the latest).
void FlushAllForFini();

// In the parent, after fork().
void RecordFork(int64_t child_pid);

// exec: returns false when tracing is off or we are a vfork child (then the
// caller passes the original envp through). Otherwise the trace is flushed
// and ended, and *new_envp is envp plus the parent-trace variable (free it
// with ExecFailed if the exec fails).
bool PrepareExec(const char* path, char* const* envp, char*** new_envp);
void ExecFailed(char** new_envp);

// --- Issue 19: HEAPSIGHT_START=paused ---------------------------------------

// True when the process started paused (it has a control socket, control.h).
bool PausedMode();

// `heapsight attach`: from kPaused, opens a new trace (a window,
// kFileFlagAttached, its times counting from now) and makes tracing
// active. Returns 0 and the trace path, EALREADY when not paused, or the
// errno of the failed start (the process stays paused). Not from a hook or
// a signal handler: the control thread calls it.
int AttachWindow(char* path, size_t path_size);

// `heapsight detach`: ends the window (every thread flushed, kEnd
// kDetach), closes the trace and pauses. Returns 0 and the path of the
// closed trace, or ENOENT when no window is open.
int DetachWindow(char* path, size_t path_size);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_LIFECYCLE_H_
