// preload/thread_state.cc: see thread_state.h.
//
// Constraints: no malloc; the registry lock is taken only when a thread
// starts or exits, never per event.
#include "preload/thread_state.h"

#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "preload/clock.h"
#include "preload/host_guards.h"
#include "preload/internal_alloc.h"
#include "preload/live_cells.h"
#include "preload/options.h"
#include "preload/reentry_guard.h"
#include "preload/trace_flusher.h"
#include "preload/trace_writer.h"
#include "preload/tracer_state.h"
#include "preload/unwinder.h"

namespace heapsight::preload {

constinit thread_local ThreadState* t_state __attribute__((tls_model("initial-exec"))) = nullptr;

namespace {

SpinLock g_registry_lock;
std::atomic<ThreadState*> g_registry{nullptr};
ThreadState* g_free_list = nullptr;  // under g_registry_lock
std::atomic<uint32_t> g_next_index{1};
ThreadState* g_orphan = nullptr;     // under g_registry_lock
pthread_key_t g_exit_key;
bool g_key_ok = false;
int g_zstd_level = 1;
bool g_need_stack_bounds = false;
bool g_unwind_cache = false;

thread_local bool t_exited __attribute__((tls_model("initial-exec"))) = false;

uint32_t GetTid() { return static_cast<uint32_t>(syscall(SYS_gettid)); }

// Takes a recycled state or makes a new one; gives it a fresh index.
ThreadState* NewState(uint64_t now_us, uint32_t tid) {
  ThreadState* ts = nullptr;
  {
    SpinLockHolder hold(&g_registry_lock);
    if (g_free_list != nullptr) {
      ts = g_free_list;
      g_free_list = ts->next_free;
    }
  }
  if (ts == nullptr) {
    // ArenaAlloc aligns to 16 only: over-allocate and align to the line.
    void* mem = ArenaAlloc(sizeof(ThreadState) + alignof(ThreadState));
    if (mem == nullptr) return nullptr;
    auto aligned = (reinterpret_cast<uintptr_t>(mem) + alignof(ThreadState) - 1) &
                   ~uintptr_t{alignof(ThreadState) - 1};
    ts = new (reinterpret_cast<void*>(aligned)) ThreadState();
    ts->chunk_bytes = ChunkBytes();
    // The thread's chunk buffer, its compression scratch and its two caches
    // in one mapping: one mmap (and one registered region) a thread, not
    // four. Each mmap takes the address-space lock for writing, which every
    // other thread's page fault waits on: 14% of the CPU of 200 starting
    // threads went to them (docs/performance.md, one27). Pages are touched
    // only as each part uses them, as before.
    const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    auto round = [page](size_t n) { return (n + page - 1) / page * page; };
    const size_t buffer_bytes = round(kBlockHeaderRoom + ts->chunk_bytes);
    const size_t scratch_bytes = round(kBlockHeaderRoom + CompressBound(ts->chunk_bytes));
    const size_t stack_cache_bytes = round(sizeof(StackCache));
    // (InitThreadStates, which sets g_unwind_cache, runs before any state.)
    const size_t unwind_cache_bytes = g_unwind_cache ? round(sizeof(UnwindCache)) : 0;
    const size_t caches_bytes = stack_cache_bytes + unwind_cache_bytes;
    auto* region = static_cast<uint8_t*>(PageAlloc(buffer_bytes + scratch_bytes + caches_bytes));
    if (region == nullptr) {
      // Without caches (zero-filled pages are empty ones; with none, every
      // event goes straight to the stack table), rather than no state.
      region = static_cast<uint8_t*>(PageAlloc(buffer_bytes + scratch_bytes));
      if (region == nullptr) return nullptr;
    } else {
      uint8_t* caches = region + buffer_bytes + scratch_bytes;
      ts->stack_cache = reinterpret_cast<StackCache*>(caches);
      ts->stack_cache->WriteFirstPages();
      if (unwind_cache_bytes != 0) {
        ts->unwind_cache = reinterpret_cast<UnwindCache*>(caches + stack_cache_bytes);
      }
    }
    ts->buffer = region;
    ts->scratch = region + buffer_bytes;
    SpinLockHolder hold(&g_registry_lock);
    ts->next = g_registry.load(std::memory_order_relaxed);
    g_registry.store(ts, std::memory_order_release);
  }
  SpinLockHolder hold(&ts->lock);
  ts->index = g_next_index.fetch_add(1, std::memory_order_relaxed);
  ts->cell_owner = LiveCells::OwnerOf(ts->index);
  // Threads start on different zstd contexts (and then keep theirs).
  ts->cctx_hint = static_cast<int>(ts->index & 0x7fffffff);
  ts->tid = tid;
  ts->counter = 0;
  ts->sequence = 0;
  ts->in_use = true;
  BeginChunk(ts, now_us);
  return ts;
}

// pthread key destructor: the thread is exiting. Flush its buffer and give
// the state back.
void ThreadExit(void* arg) {
  auto* ts = static_cast<ThreadState*>(arg);
  if (ts == nullptr) return;
  NoCancel no_cancel;  // the flush writes; a late pthread_cancel must not stop it
  ReentryGuard guard;
  uint64_t now = NowUs();
  {
    SpinLockHolder hold(&ts->lock);
    FlushLocked(ts, now);
    ts->in_use = false;
  }
  t_state = nullptr;
  t_exited = true;  // later events of this thread go to the orphan state
  SpinLockHolder hold(&g_registry_lock);
  ts->next_free = g_free_list;
  g_free_list = ts;
}

}  // namespace

size_t ChunkBytes() { return g_options.COMPACT_FREES ? kCompactChunkBytes : kChunkBytes; }

void BeginChunk(ThreadState* ts, uint64_t now_us) {
  format::ChunkHeader header{};
  header.thread_index = ts->index;
  header.tid = ts->tid;
  header.sequence = ts->sequence;
  header.base_time_us = now_us;
  header.first_alloc_counter = ts->counter;
  ts->encoder.Begin(ts->buffer + kBlockHeaderRoom, ts->chunk_bytes, header,
                    g_address_frees ? format::kAddressColumnShares
                                    : format::kTableColumnShares);
  ts->chunk_started_us = now_us;
  ts->chunk_base_us = now_us;
}

namespace {

// Seals and hands over (or writes) the chunk, if it has records.
int SealAndSend(ThreadState* ts, bool hand_over) {
  if (ts->encoder.empty()) return 0;
  size_t size = ts->encoder.Seal();
  // The writer thread's copy is taken before the buffer is reused (the
  // hand-over copies into the spool), so the buffer is free on return
  // either way.
  int err = 0;
  if (!hand_over || !HandOffChunk(ts->encoder.data(), size)) {
    err = WriteChunk(ts->encoder.data(), size, g_zstd_level, ts->scratch, &ts->cctx_hint);
  }
  ++ts->sequence;
  if (err != 0) OnWriteError(err);
  return err;
}

}  // namespace

int FlushLocked(ThreadState* ts, uint64_t now_us) {
  int err = SealAndSend(ts, true);
  BeginChunk(ts, now_us);
  return err;
}

int FlushNowLocked(ThreadState* ts, uint64_t now_us) {
  int err = SealAndSend(ts, false);
  BeginChunk(ts, now_us);
  return err;
}

ThreadState* CurrentThreadStateSlow(uint64_t now_us) {
  if (t_exited) {
    // A dying thread (glibc frees its TLS after the key destructors ran):
    // share one orphan state, under its lock like any other.
    SpinLockHolder hold(&g_registry_lock);
    if (g_orphan != nullptr) return g_orphan;
  }
  uint32_t tid = GetTid();
  ThreadState* ts = NewState(now_us, tid);
  if (ts == nullptr) return nullptr;
  OnThreadStateCreated(ts->index);  // may switch the process to the precise clock
  if (t_exited) {
    SpinLockHolder hold(&g_registry_lock);
    if (g_orphan == nullptr) {
      // Dying threads share the orphan without holding its lock while
      // unwinding, so it must not use a (single-owner) stack cache. The
      // mapping of a recycled state's cache is simply left behind.
      ts->stack_cache = nullptr;
      ts->unwind_cache = nullptr;
      ts->cell_owner = LiveCells::kManyOwners;
      g_orphan = ts;
    }
    return g_orphan;  // (a racing loser's state just stays unused)
  }
  t_state = ts;
  // Not on a service task (service_task.h: paused mode's control loop makes
  // its records from a state of its own): it has no glibc thread
  // descriptor for a key's value, never exits through glibc, and never
  // unwinds a stack (and glibc's stack bounds read /proc with stdio).
  if (!t_in_service_task) {
    if (g_key_ok) pthread_setspecific(g_exit_key, ts);
    if (g_need_stack_bounds) InitThreadStackBounds();
  }
  {
    SpinLockHolder hold(&ts->lock);
    AppendRecord(ts, now_us, &format::ChunkEncoder::PutThreadStart, now_us, tid, 0);
  }
  return ts;
}

void FlushAllThreads(uint64_t now_us) {
  // The writer first: its handed-over chunks are written before the
  // states' last ones, and everything from here on is written inline.
  StopFlusher();
  for (ThreadState* ts = g_registry.load(std::memory_order_acquire); ts != nullptr;
       ts = ts->next) {
    SpinLockHolder hold(&ts->lock);
    FlushLocked(ts, now_us);
  }
}

void FlushStaleThreads(uint64_t now_us, uint64_t min_age_us) {
  for (ThreadState* ts = g_registry.load(std::memory_order_acquire); ts != nullptr;
       ts = ts->next) {
    // Try-lock only: the owner holds its lock for one event at a time, and
    // the writer must never make a hook wait for it longer than a flush.
    if (!ts->lock.TryLock()) continue;
    if (ts->in_use && !ts->encoder.empty() && now_us >= ts->chunk_started_us + min_age_us) {
      // The next chunk's base time is the flushed chunk's (not now_us): the
      // owner may have read the clock for its next event before we took the
      // lock, and a record must not be older than its chunk's base (the
      // encoder would clamp its time).
      uint64_t base = ts->chunk_base_us;
      SealAndSend(ts, true);
      BeginChunk(ts, base);
      ts->chunk_started_us = now_us;
    }
    ts->lock.Unlock();
  }
}

void RestartAllThreadStates(uint64_t now_us) {
  for (ThreadState* ts = g_registry.load(std::memory_order_acquire); ts != nullptr;
       ts = ts->next) {
    SpinLockHolder hold(&ts->lock);
    ts->sequence = 0;
    BeginChunk(ts, now_us);
  }
}

void InitThreadStates(int zstd_level, bool need_stack_bounds, bool unwind_cache) {
  g_zstd_level = zstd_level;
  ConfigureFlusher(zstd_level, g_options.FLUSH_MS, ChunkBytes());
  g_need_stack_bounds = need_stack_bounds;
  g_unwind_cache = unwind_cache;
  g_key_ok = pthread_key_create(&g_exit_key, ThreadExit) == 0;
}

size_t CollectPendingCellSets(uintptr_t* out, size_t max) {
  size_t n = 0;
  for (ThreadState* ts = g_registry.load(std::memory_order_acquire); ts != nullptr;
       ts = ts->next) {
    uintptr_t p = ts->cell_pending.load(std::memory_order_acquire);
    if (p == 0) continue;
    if (n < max) out[n] = p;
    ++n;
  }
  return n;
}

UnwindCache::Stats SumUnwindCacheStats() {
  UnwindCache::Stats sum;
  for (ThreadState* ts = g_registry.load(std::memory_order_acquire); ts != nullptr;
       ts = ts->next) {
    if (ts->unwind_cache == nullptr) continue;
    const UnwindCache::Stats& s = ts->unwind_cache->stats();
    sum.lookups += s.lookups;
    sum.hits += s.hits;
    sum.learnt += s.learnt;
    sum.refused += s.refused;
    sum.stepped += s.stepped;
    sum.spliced += s.spliced;
    sum.rule_misses += s.rule_misses;
    sum.words_checked += s.words_checked;
    sum.edge_hits += s.edge_hits;
  }
  return sum;
}

void LockAllThreadStates() {
  g_registry_lock.Lock();
  for (ThreadState* ts = g_registry.load(std::memory_order_acquire); ts != nullptr;
       ts = ts->next) {
    ts->lock.Lock();
  }
}

void UnlockAllThreadStates() {
  for (ThreadState* ts = g_registry.load(std::memory_order_acquire); ts != nullptr;
       ts = ts->next) {
    ts->lock.Unlock();
  }
  g_registry_lock.Unlock();
}

void ResetThreadStatesInChild(uint64_t now_us) {
  g_registry_lock.ResetInChild();
  uint32_t tid = GetTid();
  g_free_list = nullptr;
  g_orphan = nullptr;
  for (ThreadState* ts = g_registry.load(std::memory_order_acquire); ts != nullptr;
       ts = ts->next) {
    ts->lock.ResetInChild();
    if (ts->unwind_cache != nullptr) ts->unwind_cache->ResetCountersInChild();
    if (ts == t_state) {
      // Our own thread: keep index and counter (ids stay unique across the
      // two traces), drop the buffered records (the parent writes them),
      // and number this file's chunks from 0.
      ts->tid = tid;
      ts->sequence = 0;
      BeginChunk(ts, now_us);
    } else {
      // Threads that do not exist in the child.
      ts->in_use = false;
      ts->encoder.Begin(ts->buffer + kBlockHeaderRoom, ts->chunk_bytes, format::ChunkHeader{});
      ts->next_free = g_free_list;
      g_free_list = ts;
    }
  }
}

}  // namespace heapsight::preload
