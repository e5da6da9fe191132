// preload/thread_state.h: per-thread trace buffers, thread indexes and
// allocation counters.
//
// Every thread that records an event gets a ThreadState: a process-unique
// thread_index (1, 2, ...), its allocation counter (the n-th kAlloc/kRealloc
// record of the thread has counter n), a chunk sequence number, and a
// 128 KiB mmap'ed chunk buffer encoded with ChunkEncoder. The owning thread takes the
// state's lock (uncontended: one atomic exchange) around each event; the
// lock exists so the exit, exec and fork paths can flush or drop other
// threads' buffers. There is no global lock per event.
//
// States live on a registry list forever (FlushAll walks it); a thread's
// state is recycled, with a fresh index, when the thread exits. Events of a
// thread after its exit destructor ran (late TLS frees inside glibc) go to a
// shared "orphan" state.
//
// Constraints: no malloc (PageAlloc/ArenaAlloc); creating a state may call
// pthread_setspecific/pthread_getattr_np, which may allocate inside libc, so
// it runs under the reentry guard. Not async-signal-safe.
#ifndef HEAPSIGHT_PRELOAD_THREAD_STATE_H_
#define HEAPSIGHT_PRELOAD_THREAD_STATE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "format/chunk_encoder.h"
#include "preload/spin_lock.h"
#include "preload/stack_cache.h"
#include "preload/unwind_cache.h"

namespace heapsight::preload {

// Bigger chunks compress better (zstd's tables and the format's per-chunk
// delta bases are paid once a chunk): 128 KiB against 64 made cc1plus's
// trace 10% smaller and the benchmark's 2.4%, at the same speed; 256 KiB
// gave 19% and 8.5% but cost the benchmark 3-8 ns per operation (the buffer,
// its compressed copy and zstd's tables outgrow the core's L2 cache). The
// buffers' pages are touched only as they fill, so a quiet thread costs no
// more memory than before. docs/performance.md.
inline constexpr size_t kChunkBytes = 128 * 1024;
// Compact frees (HEAPSIGHT_COMPACT_FREES) trade memory and CPU on the
// writer thread for trace size, so their chunks are 4 times larger: zstd
// matches a record against 512 KiB of the thread's history instead of 128,
// which made every program's compact trace 15-28% smaller (cc1plus 7.70 ->
// 5.7 MB; docs/performance.md, "Compact traces: larger chunks"). Costs: up
// to 1 MiB of buffers per busy thread (pages are touched as they fill), a
// 16 MiB spool, and up to 512 KiB of a thread's records lost at SIGKILL
// instead of 128 KiB.
inline constexpr size_t kCompactChunkBytes = 512 * 1024;
// The chunk size of this process: kCompactChunkBytes with compact frees,
// else kChunkBytes. Fixed once the options are read (before any thread
// state exists).
size_t ChunkBytes();

// Cache-line aligned (and a multiple of the line size): states of different
// threads used to sit next to each other in the arena, so one thread's
// per-event writes (lock, encoder position) invalidated the line another
// thread's lock lived in.
struct alignas(64) ThreadState {
  SpinLock lock;
  uint32_t index = 0;
  uint32_t tid = 0;
  uint64_t counter = 0;   // counter of the next allocation record
  uint64_t sequence = 0;  // sequence of the chunk being filled
  uint8_t* buffer = nullptr;   // kBlockHeaderRoom + ChunkBytes()
  uint8_t* scratch = nullptr;  // kBlockHeaderRoom + CompressBound(ChunkBytes())
  size_t chunk_bytes = 0;      // ChunkBytes() when `buffer` was mapped: its capacity
  format::ChunkEncoder encoder;
  // The owning thread's stack cache (PageAlloc'ed on first use, kept when
  // the state is recycled); nullptr for the shared orphan state, whose
  // users are not serialized before GetStack.
  StackCache* stack_cache = nullptr;
  // Same ownership rules; nullptr also when the cache is off
  // (HEAPSIGHT_UNWIND_CACHE=0 or the fp unwinder).
  UnwindCache* unwind_cache = nullptr;
  int cctx_hint = 0;  // zstd context pool slot used last (trace_writer.h)
  // NowUs() when the chunk being filled was begun (by BeginChunk): the
  // writer thread's freshness flush (FlushStaleThreads) reads it under the
  // lock. The chunk's own base time may be older (see FlushStaleThreads).
  uint64_t chunk_started_us = 0;
  uint64_t chunk_base_us = 0;  // the chunk's base time (ChunkHeader::base_time_us)
  bool in_use = false;  // owned by a live thread (or the orphan role)
  ThreadState* next = nullptr;       // registry
  ThreadState* next_free = nullptr;  // free list
};

// The calling thread's state once it has one (thread_state.cc).
extern constinit thread_local ThreadState* t_state __attribute__((tls_model("initial-exec")));
// CurrentThreadState's first use: creates the state.
ThreadState* CurrentThreadStateSlow(uint64_t now_us);

// The calling thread's state, created on first use (call under the reentry
// guard). nullptr only if memory ran out. `now_us` starts the first chunk.
// Inline: every event asks, and the out-of-line call cost ~20 instructions
// an event (its prologue saved the registers of the creating path).
inline ThreadState* CurrentThreadState(uint64_t now_us) {
  if (__builtin_expect(t_state != nullptr, 1)) return t_state;
  return CurrentThreadStateSlow(now_us);
}

// Seals the state's chunk (if it has records) and hands it to the writer
// thread (trace_flusher.h), or, when there is none or it is behind,
// compresses and writes it here; then starts the next chunk. Caller holds
// ts->lock. Returns 0 or an errno value.
int FlushLocked(ThreadState* ts, uint64_t now_us);

// Like FlushLocked, but always compresses and writes here, never hands
// over: for a chunk that must be in the file before the caller goes on
// (a bad free, after which glibc usually aborts the process).
int FlushNowLocked(ThreadState* ts, uint64_t now_us);

// The one way records go into a state's chunk: `put` is the ChunkEncoder
// member that encodes the record (&format::ChunkEncoder::PutAlloc, ...),
// `args` its arguments, evaluated once. When the chunk is full it is
// flushed and the record goes into the fresh one, which always has room
// (variable-size records are capped by their writers). Returns 0, or the
// errno of a failed flush (tracing is then disabled; the record still went
// into the fresh chunk). Caller holds ts->lock. Always inlined: on the hook
// path it costs what a direct Put* call costs.
template <typename... Params, typename... Args>
__attribute__((always_inline)) inline int AppendRecord(ThreadState* ts, uint64_t now_us,
                                                       bool (format::ChunkEncoder::*put)(Params...),
                                                       const Args&... args) {
  int err = 0;
  while (!(ts->encoder.*put)(args...)) {
    if (int e = FlushLocked(ts, now_us); e != 0) err = e;
  }
  return err;
}

// Starts a fresh chunk with the state's current sequence and counter,
// dropping whatever was buffered. Caller holds ts->lock.
void BeginChunk(ThreadState* ts, uint64_t now_us);

// Stops the writer thread (its chunks written), then locks, flushes and
// unlocks every registered state, inline. For the end of the trace (exit,
// exec, abort): the caller holds no state lock.
void FlushAllThreads(uint64_t now_us);

// HEAPSIGHT_FLUSH_MS, on the writer thread: flushes the chunk of every
// live thread whose chunk is not empty and was begun `min_age_us` or more
// before `now_us`. A state whose lock is taken (its owner is mid-event) is
// skipped until the next call: never waits for a lock.
void FlushStaleThreads(uint64_t now_us, uint64_t min_age_us);
// `heapsight attach` (issue 19): every state starts a fresh chunk numbered
// 0 for the new trace, dropping whatever it buffered (records of threads
// that raced the last detach). Counters go on (ids stay unique).
void RestartAllThreadStates(uint64_t now_us);

// Registers the pthread key whose destructor flushes an exiting thread.
// `need_stack_bounds`: the frame-pointer unwinder is on, so each thread's
// stack bounds are needed from its first event (unwinder.h);
// `unwind_cache`: give each thread an UnwindCache.
void InitThreadStates(int zstd_level, bool need_stack_bounds, bool unwind_cache);

// Sums the unwind caches' counters over every registered state (racy
// reads of other threads' counters: for HEAPSIGHT_STATS only).
UnwindCache::Stats SumUnwindCacheStats();

// Fork support: lock every state (and the registry) before fork; unlock in
// the parent; in the child, keep only the calling thread's state (its
// buffered records are dropped: the parent flushes them) and recycle the
// others.
void LockAllThreadStates();
void UnlockAllThreadStates();
void ResetThreadStatesInChild(uint64_t now_us);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_THREAD_STATE_H_
