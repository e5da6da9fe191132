// preload/trace_flusher.h: the writer, which compresses and writes
// the program's full chunks so the program's threads do not (issue 15
// target 3), and keeps the trace fresh (HEAPSIGHT_FLUSH_MS, issue 19).
//
// A program thread whose chunk is full hands it over (HandOffChunk): it
// copies the chunk into the spool (chunk_spool.h) and wakes the writer with
// a futex only if the writer sleeps. The writer takes sealed chunks in
// hand-over order, compresses them with its own zstd context and writes
// them with trace_writer. With FLUSH_MS=N > 0 it also wakes every N/2 ms and
// flushes the chunk of any thread whose chunk has waited N/2 ms or more
// (FlushStaleThreads, thread_state.h), taking the thread's state lock only
// with a try-lock: an owner that is mid-event keeps its chunk until the
// next tick.
//
// The writer starts on the first hand-over (with FLUSH_MS, when tracing
// starts): a program that never fills a chunk never gets a writer. It is
// heapsight's service task (service_task.h), a raw clone, not a glibc
// thread: the host's glibc stays in its single-thread mode (issue 19). It
// runs with every signal blocked, a 256 KiB stack, TLS of its own and the
// reentry guard held for its whole life; it never creates a thread state
// and calls nothing that allocates, locks a glibc lock or enters the
// loader. If the spool or the task cannot be created, every chunk is
// written inline, as before, for the rest of the process (one warning when
// the task could not start).
//
// Inline fallback: a hand-over never waits. When every spool slot is taken
// (the writer is behind) the thread compresses and writes its chunk itself.
//
// Stopping (StopFlusher: exit, exec, abort, _dl_fini): the writer is told to
// stop, writes what is sealed and exits; the caller waits for it (bounded,
// 2 s), joins it through the tid word the kernel clears at its exit (so
// the exit leak scan never lists a task that blocks its signal), waits (bounded) for hand-overs still being copied, writes
// what is left and removes the spool. From then on every chunk is written
// inline (write-through at exit, static destructors after ours), unless an
// exec failed (AllowFlusherRestart).
//
// Fork: the child has no writer; it unmaps the parent's spool without
// touching it and starts a writer of its own at its first hand-over (not
// inside the fork handler, unless FLUSH_MS asks for one there).
//
// Constraints: HandOffChunk is called on the program's threads under their
// state lock: no malloc, no lock, no wait (one relaxed load on the common
// path, the futex wake only when the writer sleeps). Starting the writer
// (once per process) clones the service task under the reentry guard. The
// writer takes the trace file lock and, with try-lock only, state locks; it never holds a lock that a hook waits on for longer than one
// memcpy of a chunk. Not async-signal-safe.
#ifndef HEAPSIGHT_PRELOAD_TRACE_FLUSHER_H_
#define HEAPSIGHT_PRELOAD_TRACE_FLUSHER_H_

#include <cstddef>
#include <cstdint>

namespace heapsight::preload {

// Set once, before tracing starts: the zstd level, HEAPSIGHT_FLUSH_MS, and
// the largest chunk a thread hands over.
void ConfigureFlusher(int zstd_level, int64_t flush_ms, size_t max_chunk_bytes);

// Hands a sealed chunk to the writer (starting it if need be). False: the
// caller writes the chunk itself (no writer, stopped, or spool full).
bool HandOffChunk(const uint8_t* chunk, size_t raw_size);

// With FLUSH_MS > 0, starts the writer now (at the start of tracing, and at
// the end of a fork child's set-up), so idle threads get flushed even if no
// chunk ever fills.
void StartFlusherForFreshness();

// Stops the writer for good, writes every handed-over chunk and removes
// the spool (see above). Idempotent; call without holding a state lock.
void StopFlusher();

// After a failed exec (which stopped the writer): a later hand-over may
// start a new writer and spool. No-op unless the writer was stopped.
void AllowFlusherRestart();

// True while a writer thread runs (tests, HEAPSIGHT_STATS).
bool FlusherRunning();

// Chunks handed over, chunks written inline because the spool was full,
// and the writer thread's CPU time once it has stopped (HEAPSIGHT_STATS).
void FlusherCounts(uint64_t* handed_over, uint64_t* inline_fallbacks, uint64_t* cpu_ns);

// Fork child, first thing in the child handler: no writer here; no writer
// may start until AllowFlusherInChild (end of the child handler).
void ResetFlusherInChild();
void AllowFlusherInChild();

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_TRACE_FLUSHER_H_
