// preload/trace_flusher.cc: see trace_flusher.h.
//
// Constraints: no malloc (the writer's scratch buffer comes from PageAlloc);
// the hand-over takes no lock and never waits; the writer runs on the
// service task (service_task.h: raw clone, every signal blocked, reentry
// guard held, TLS of its own), so WriterMain and everything it calls use
// no glibc malloc, lock, stdio or loader call (audit: docs/DESIGN.md, "The
// writer task"). Not async-signal-safe.
#include "preload/trace_flusher.h"

#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "preload/chunk_spool.h"
#include "preload/clock.h"
#include "preload/host_guards.h"
#include "preload/internal_alloc.h"
#include "preload/raw_log.h"
#include "preload/raw_syscall.h"
#include "preload/reentry_guard.h"
#include "preload/service_task.h"
#include "preload/thread_state.h"
#include "preload/trace_writer.h"
#include "preload/tracer_state.h"

namespace heapsight::preload {
namespace {

enum State : int {
  kIdle = 0,      // no writer yet; the next hand-over starts one
  kStarting = 1,  // one thread is starting it; others write inline meanwhile
  kRunning = 2,
  kStopped = 3,   // stopped for good, or could not start: inline from now on
  kBlocked = 4,   // fork child inside the fork handler: no start yet
};

std::atomic<int> g_state{kIdle};
int g_level = 3;
uint64_t g_flush_us = 0;  // HEAPSIGHT_FLUSH_MS in us; 0: no freshness flushes
size_t g_max_chunk = 0;
// _HEAPSIGHT_TEST_WRITER (tests only, not an option): "off" never starts
// the writer (chunks are written inline, as before issue 15 target 3);
// "paused" starts it but lets it write nothing, so full chunks stay in
// the spool (what a SIGKILL at the worst moment leaves).
bool g_test_off = false;
bool g_test_paused = false;

uint8_t* g_scratch = nullptr;  // the writer's compression buffer
// The last slot of trace_writer's context pool: thread indexes start at 1,
// so a small program's threads use other contexts than the writer's.
int g_cctx_hint = 15;
std::atomic<uint32_t> g_wake{0};       // futex word: bumped by each hand-over
std::atomic<bool> g_sleeping{false};   // the writer waits on g_wake
std::atomic<bool> g_stop{false};
std::atomic<uint32_t> g_done{0};       // futex word: 1 once the writer left its loop
// Hand-overs between their state check and their publication; StopFlusher
// waits for them before its last drain.
std::atomic<uint32_t> g_in_flight{0};
std::atomic<uint64_t> g_handed_over{0};
std::atomic<uint64_t> g_inline_fallbacks{0};
std::atomic<uint64_t> g_cpu_ns{0};  // the writer's CPU time, once it has stopped

// Raw: the writer task has no errno of glibc's to set (raw_syscall.h).
long Futex(std::atomic<uint32_t>* word, int op, uint32_t value, const timespec* timeout) {
  return RawSyscall(SYS_futex, reinterpret_cast<long>(word), op, value,
                    reinterpret_cast<long>(timeout));
}

timespec Span(uint64_t us) {
  return timespec{static_cast<time_t>(us / 1000000), static_cast<long>(us % 1000000 * 1000)};
}

// Writes sealed chunks until none is left (or the test pauses us).
void Drain() {
  if (g_test_paused) return;
  int err = 0;
  while (WriteOldestSealed(g_level, g_scratch, &g_cctx_hint, &err)) {
    if (err != 0) OnWriteError(err);
  }
}

// The service task's main (service_task.h set up the reentry guard, the
// blocked signals and the leak scan's exemption). It never gets a thread
// state, never touches the program's heap.
void WriterMain(void*) {
  uint64_t next_fresh = g_flush_us != 0 ? NowUs() + g_flush_us / 2 : 0;
  for (;;) {
    // Read before draining: a hand-over after this read changes the word,
    // so the futex wait below returns at once instead of missing it.
    uint32_t seen = g_wake.load(std::memory_order_seq_cst);
    Drain();
    if (g_stop.load(std::memory_order_acquire)) break;
    uint64_t wait_us = 0;  // 0: until woken (no freshness pass to run)
    if (g_flush_us != 0) {
      uint64_t now = NowUs();
      if (now >= next_fresh) {
        // Chunks that waited half the period go out now: an event is in the
        // file at most about one period after it happened.
        FlushStaleThreads(now, g_flush_us / 2);
        next_fresh = now + g_flush_us / 2;
        continue;  // drain what was just handed over
      }
      wait_us = next_fresh - now;
    }
    // The sleeping flag lets hand-overs skip the wake syscall while we
    // work. Set before the second look at the word (seq_cst on both
    // sides): either the hand-over sees us sleeping, or we see its bump.
    g_sleeping.store(true, std::memory_order_seq_cst);
    if (g_wake.load(std::memory_order_seq_cst) == seen && !g_stop.load()) {
      timespec t = Span(wait_us);
      Futex(&g_wake, FUTEX_WAIT_PRIVATE, seen, wait_us != 0 ? &t : nullptr);
    }
    g_sleeping.store(false, std::memory_order_relaxed);
  }
  Drain();
  timespec cpu;
  if (RawSyscall(SYS_clock_gettime, CLOCK_THREAD_CPUTIME_ID, reinterpret_cast<long>(&cpu)) == 0) {
    g_cpu_ns.store(static_cast<uint64_t>(cpu.tv_sec) * 1000000000u +
                   static_cast<uint64_t>(cpu.tv_nsec));
  }
  g_done.store(1, std::memory_order_release);
  Futex(&g_done, FUTEX_WAKE_PRIVATE, 1, nullptr);
}

// Once per process: the writer could not start, chunks go out inline.
void WarnNoTask(int err) {
  static std::atomic<bool> warned{false};
  if (warned.exchange(true)) return;
  const char* quiet = getenv("HEAPSIGHT_QUIET");
  if (quiet != nullptr && *quiet != '\0' && *quiet != '0') return;
  RawBuffer b;
  b.Str("cannot start the writer task (").Str(ErrnoName(err))
      .Str("); the program's threads write their chunks themselves");
  RawLog(b);
}

void Wake() {
  g_wake.fetch_add(1, std::memory_order_seq_cst);
  if (g_sleeping.load(std::memory_order_seq_cst)) Futex(&g_wake, FUTEX_WAKE_PRIVATE, 1, nullptr);
}

// Called by the one thread that moved the state to kStarting.
int Start() {
  if (g_test_off) return kStopped;
  if (g_scratch == nullptr) {
    g_scratch = static_cast<uint8_t*>(PageAlloc(kBlockHeaderRoom + CompressBound(g_max_chunk)));
    if (g_scratch == nullptr) return kStopped;
  }
  if (OpenSpool(g_max_chunk) != 0) return kStopped;
  g_stop.store(false);
  g_done.store(0);
  // Not pthread_create: a glibc thread would switch the host's malloc to
  // its multi-thread path for good (service_task.h). zstd's compressor
  // keeps its tables in the context (mmap'ed), not on the stack: the
  // task's 256 KiB are plenty.
  int err = 0;
  if (!StartServiceTask(kWriterTask, WriterMain, nullptr, "heapsight-writer", &err)) {
    CloseSpool();
    WarnNoTask(err);
    return kStopped;
  }
  return kRunning;
}

int TryStart() {
  // Not before tracing is active (a chunk that fills inside StartTracing is
  // written inline, and the writer starts at a later hand-over).
  if (TracingStatusRelaxed() != kActive) return kIdle;
  int expected = kIdle;
  if (!g_state.compare_exchange_strong(expected, kStarting)) return expected;
  ErrnoKeeper keep_errno;
  NoCancel no_cancel;
  ReentryGuard guard;  // the first start looks up the TLS size (dlsym)
  int s = Start();
  g_state.store(s, std::memory_order_release);
  return s;
}

}  // namespace

void ConfigureFlusher(int zstd_level, int64_t flush_ms, size_t max_chunk_bytes) {
  g_level = zstd_level;
  g_flush_us = flush_ms > 0 ? static_cast<uint64_t>(flush_ms) * 1000 : 0;
  g_max_chunk = max_chunk_bytes;
  if (const char* t = getenv("_HEAPSIGHT_TEST_WRITER"); t != nullptr) {
    g_test_off = std::strcmp(t, "off") == 0;
    g_test_paused = std::strcmp(t, "paused") == 0;
  }
}

bool HandOffChunk(const uint8_t* chunk, size_t raw_size) {
  // Counted in flight before the state is read: StopFlusher publishes
  // kStopped first and then waits for the count, so a hand-over that saw
  // kRunning is always drained by the stop.
  g_in_flight.fetch_add(1, std::memory_order_seq_cst);
  int s = g_state.load(std::memory_order_seq_cst);
  if (__builtin_expect(s == kIdle, 0)) {
    g_in_flight.fetch_sub(1, std::memory_order_release);
    s = TryStart();
    g_in_flight.fetch_add(1, std::memory_order_seq_cst);
    if (s == kRunning) s = g_state.load(std::memory_order_seq_cst);
  }
  bool ok = s == kRunning && SpoolChunk(chunk, raw_size);
  g_in_flight.fetch_sub(1, std::memory_order_release);
  if (!ok) {
    if (s == kRunning) g_inline_fallbacks.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  g_handed_over.fetch_add(1, std::memory_order_relaxed);
  Wake();
  return true;
}

void StartFlusherForFreshness() {
  if (g_flush_us != 0 && g_state.load() == kIdle) TryStart();
}

void StopFlusher() {
  // The writer never stops itself (it would wait for its own exit).
  if (OnServiceTask(kWriterTask)) return;
  int s = g_state.load();
  for (int starting = 0;;) {
    if (s == kStopped) return;
    if (s == kStarting) {
      // Another thread is creating it: let it finish. Bounded: if that
      // thread is the one we interrupted (exit from a signal handler), it
      // cannot finish; its writer's chunks are then left to a reader.
      if (++starting > 10000) return;
      sched_yield();
      s = g_state.load();
      continue;
    }
    if (g_state.compare_exchange_strong(s, kStopped)) break;
  }
  if (s != kRunning) return;  // never started (or a fork child's block)
  ErrnoKeeper keep_errno;
  NoCancel no_cancel;
  ReentryGuard guard;
  g_stop.store(true, std::memory_order_release);
  g_wake.fetch_add(1);
  Futex(&g_wake, FUTEX_WAKE_PRIVATE, 1, nullptr);
  // Bounded: the writer finishes the chunk it compresses (under a
  // millisecond) and what is sealed; a writer stuck longer (stopped by a
  // debugger, starved) is left alone, and its chunks to a reader.
  uint64_t deadline = MonotonicNs() + 2000000000ull;
  while (g_done.load(std::memory_order_acquire) == 0) {
    uint64_t now = MonotonicNs();
    if (now >= deadline) return;
    timespec t = Span((deadline - now) / 1000);
    Futex(&g_done, FUTEX_WAIT_PRIVATE, 0, &t);
  }
  // It has left its loop: the join waits only for the task's exit itself
  // (the kernel clears its tid word), after which it is gone from
  // /proc/self/task (the leak scan's list). Bounded like the wait above.
  WaitServiceTaskExit(kWriterTask, 1000000000ull);
  // Hand-overs that saw kRunning before our store finish their copy; then
  // nothing new can arrive. Bounded too (a preempted thread).
  for (int i = 0; i < 20000 && (g_in_flight.load() != 0 || SpoolSlotsFilling() != 0); ++i) {
    sched_yield();
  }
  Drain();
  // Never unmapped under a hand-over that is still copying (a thread
  // preempted in SpoolChunk's memcpy for longer than the wait above, common
  // on a loaded machine): it would fault on the unmapped slot, or copy into
  // whatever the kernel maps there next. Before sig23 it did: lock_stress
  // crashed the program in SpoolChunk in 4 of 100 runs under load (main
  // 7e6902a; every leak request stops the writer). The spool then stays
  // mapped, its late chunk sealed in it: the next start reuses the mapping
  // (OpenSpool) and writes it; at exit it is left in the file for a reader
  // to recover, as after a SIGKILL.
  if (g_in_flight.load() == 0 && SpoolSlotsFilling() == 0) CloseSpool();
}

void AllowFlusherRestart() {
  // Only a writer that StopFlusher joined (g_done): a stop that gave up
  // waiting leaves a thread that may still run, and the state stays kStopped.
  int expected = kStopped;
  if (g_done.load(std::memory_order_acquire) != 0 || g_scratch == nullptr) {
    g_state.compare_exchange_strong(expected, kIdle);
  }
  StartFlusherForFreshness();
}

bool FlusherRunning() { return g_state.load() == kRunning; }

void FlusherCounts(uint64_t* handed_over, uint64_t* inline_fallbacks, uint64_t* cpu_ns) {
  *handed_over = g_handed_over.load();
  *inline_fallbacks = g_inline_fallbacks.load();
  *cpu_ns = g_cpu_ns.load();
}

void ResetFlusherInChild() {
  // The writer thread does not exist here; its spool is the parent's.
  g_state.store(kBlocked);
  ForgetServiceTaskInChild(kWriterTask);
  g_in_flight.store(0);
  g_sleeping.store(false);
  g_stop.store(false);
  g_done.store(0);
  g_handed_over.store(0);
  g_inline_fallbacks.store(0);
  g_cpu_ns.store(0);
  ForgetSpoolInChild();
}

void AllowFlusherInChild() {
  int expected = kBlocked;
  g_state.compare_exchange_strong(expected, kIdle);
  StartFlusherForFreshness();
}

}  // namespace heapsight::preload
