// preload/recorder.h: turns intercepted calls into trace records.
//
// The hooks (malloc_hooks.cc, new_delete_hooks.cc, process_hooks.cc) call
// the real function and hand the outcome to these functions, which keep the
// live-block table, capture and intern the stack, and append records to the
// calling thread's chunk. Lifecycle (init, exit, fork, exec) lives here too.
//
// Constraints: no malloc, no text formatting, no stdio, no global lock per
// event (a per-thread lock and one live-table shard lock). Every entry point
// is a no-op pass-through when tracing is off (disabled, failed, or not yet
// started) except for keeping pre-start blocks in the live table as
// internal, so freeing them later is not a bad free.
#ifndef HEAPSIGHT_PRELOAD_RECORDER_H_
#define HEAPSIGHT_PRELOAD_RECORDER_H_

#include <cstddef>
#include <cstdint>

#include "format/trace_format.h"

namespace heapsight::preload {

// Microseconds since the trace's start_monotonic_ns, from the clock
// HEAPSIGHT_CLOCK picks (see OnThreadStateCreated).
uint64_t NowUs();

// Called by the thread registry for every thread state it sets up, with
// the state's index. With HEAPSIGHT_CLOCK=auto (the default) timestamps come
// from the coarse clock while the process has one thread: one stream has
// its order from the file, not from time. The first event of a second
// thread switches the process to the precise clock for good, because from
// then on the analyzer interleaves streams by time, and a peak of blocks
// handed between threads needs that order (tests/examples: lesson 8's
// bounded queue peaks at 3.3 MB instead of 1-2 MB with tick-resolution
// time). The switch calibrates the TSC (a ~200 us busy wait, once).
void OnThreadStateCreated(uint32_t index);

// After the real allocation function returned `p` (nullptr = failed).
void RecordAlloc(void* p, size_t size, size_t alignment, format::Api api);

// Records the free of `p` and then calls the real free. Handles nullptr
// (nothing recorded) and bootstrap-arena pointers (ignored).
void TracedFree(void* p, format::Api api);

// realloc/reallocarray with all corner cases. `size` is the byte size asked
// for (saturated on overflow); `call` performs the real call.
void* TracedRealloc(void* p, size_t size, format::Api api, void* (*call)(void*, void*),
                    void* call_ctx);

// A write(2) of the trace failed: warn once, stop tracing.
void OnWriteError(int err);

// Process lifecycle.
void InitRecorder();                  // constructor
void RecordExitStatus(int status);    // exit() hook
void FinishTrace(format::EndReason reason, int64_t status);  // flush all + kEnd
void EnableWriteThrough();            // every later event is written at once
// dlopen/dlclose hooks, with their own frame address.
void MarkModulesDirty(uintptr_t hook_frame);
void FlushAllForFini();               // library destructor
void RecordFork(int64_t child_pid);   // in the parent, after fork()
// exec: returns false when tracing is off or we are a vfork child (then the
// caller passes the original envp through). Otherwise the trace is flushed
// and ended, and *new_envp is envp plus the parent-trace variable (free it
// with FreeExecEnv if the exec fails).
bool PrepareExec(const char* path, char* const* envp, char*** new_envp);
void ExecFailed(char** new_envp);

// True while the trace is being written (hooks may skip work otherwise).
bool TracingActive();

// For the leak scan (leak_check.cc): the live-block table and the parsed
// options.
class LiveTable;
struct Options;
LiveTable& LiveBlocks();
const Options& RecorderOptions();

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_RECORDER_H_
