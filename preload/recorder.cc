// preload/recorder.cc: see recorder.h.
//
// Constraints: no malloc on any path (memory from PageAlloc/ArenaAlloc), no
// stdio, no text formatting except the one-time raw warning. Per event: the
// calling thread's state lock (uncontended) and one live-table shard lock;
// the stack-table lock only when a new stack appears.
#include "preload/recorder.h"

#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "preload/clock.h"
#include "preload/host_guards.h"
#include "preload/internal_alloc.h"
#include "preload/leak_check.h"
#include "preload/live_table.h"
#include "preload/module_map.h"
#include "preload/options.h"
#include "preload/raw_log.h"
#include "preload/real_functions.h"
#include "preload/reentry_guard.h"
#include "preload/sampler.h"
#include "preload/stack_table.h"
#include "preload/thread_state.h"
#include "preload/trace_writer.h"
#include "preload/unwind_validation.h"
#include "preload/unwinder.h"

extern char** environ;

namespace heapsight::preload {

thread_local int t_reentry_depth __attribute__((tls_model("initial-exec"))) = 0;

namespace {

using format::Api;

enum Status : int { kUninit = 0, kActive = 1, kDisabled = 2 };

constexpr char kExecParentVar[] = "_HEAPSIGHT_EXEC_PARENT=";
constexpr size_t kExecParentVarLen = sizeof kExecParentVar - 1;

std::atomic<int> g_status{kUninit};
std::atomic<bool> g_write_through{false};
std::atomic<bool> g_end_written{false};
std::atomic<bool> g_warned{false};
Options g_options;
UnwindMode g_unwind = UnwindMode::kLibunwind;
size_t g_max_depth = 64;
bool g_record_addresses = false;
// HEAPSIGHT_CLOCK: auto (coarse until a second thread appears), coarse, precise.
enum class ClockMode { kAuto, kCoarse, kPrecise };
ClockMode g_clock_mode = ClockMode::kAuto;
// Which clock NowUs reads now. Goes from true to false at most once (the
// coarse clock lags the precise one by up to a tick, so time only jumps
// forward); never back.
std::atomic<bool> g_coarse_clock{true};
std::atomic<bool> g_clock_switching{false};
int g_zstd_level = 1;
uint64_t g_start_ns = 0;
uint64_t g_start_realtime_ns = 0;
int g_exit_status = 0;
pid_t g_pid = 0;
uint32_t g_page_size = 4096;
char g_start_dir[4096];
char g_parent_trace[4096];
std::atomic<uint64_t> g_next_rss_us{0};
uint64_t g_rss_interval_us = 10000;
bool g_fork_locked = false;

// Set by the dlopen/dlclose hooks of this thread: while set, every event of
// the thread checks whether the module list changed (and rescans if so).
// It is cleared by the first event whose hook frame is not below the
// dlopen hook's frame (t_dl_frame), i.e. once dlopen/dlclose has returned. Events inside the
// call (the loader's own allocations, the new module's constructors) keep
// checking, so a module is recorded as soon as it is in the list.
thread_local bool t_modules_dirty __attribute__((tls_model("initial-exec"))) = false;
thread_local uintptr_t t_dl_frame __attribute__((tls_model("initial-exec"))) = 0;
std::atomic<bool> g_modules_dirty{false};  // any thread; checked at exit

constinit LiveTable g_live;
constinit StackTable g_stacks;
format::FreeAction g_bad_free_action = format::FreeAction::kSkipped;  // HEAPSIGHT_ON_BAD_FREE

// Appends a record, flushing the chunk and retrying when it is full (an
// empty chunk always has room: variable-size records are capped by their
// writers).
#define PUT(ts, now, call)                       \
  do {                                           \
    while (!(ts)->encoder.call) FlushLocked((ts), (now)); \
  } while (0)

struct StackRef {
  uint64_t leaf = 0;
  uint64_t first_new = 1;
  uint64_t last_new = 0;
};

// Unwinds and interns the current stack. The thread's unwind cache is asked
// first: when the stack words behind the last unwind from this call site are
// unchanged, its stack is reused without unwinding (unwind_cache.h). Else
// the stack is unwound; the thread's stack cache (exact match on the
// frames, no new nodes possible on a hit) and then the process-wide table
// intern it; a call site that missed before is then learnt. Always inlined,
// like CaptureStack: no frame of its own for libunwind to step through.
__attribute__((always_inline)) inline StackRef GetStack(ThreadState* ts) {
  StackRef s;
  UnwindCache* unwind_cache = ts->unwind_cache;
  UnwindKey key;
  if (unwind_cache != nullptr &&
      !(unwind_cache->Active() && CurrentUnwindKey(&key))) {
    unwind_cache = nullptr;
  }
  if (unwind_cache != nullptr) {
    s.leaf = unwind_cache->Find(key, t_stack_low, t_stack_high);
    if (s.leaf != 0) return s;
  }
  uintptr_t buf[kMaxStackDepth + kCaptureSlack];
  const uintptr_t* frames;
  size_t n = CaptureStack(g_unwind, buf, g_max_depth, &frames);
  StackCache* cache = ts->stack_cache;
  if (cache != nullptr && !cache->Active()) cache = nullptr;
  if (cache != nullptr) s.leaf = cache->Find(frames, n);
  if (s.leaf == 0) {
    s.leaf = g_stacks.Intern(frames, n, &s.first_new, &s.last_new);
    if (cache != nullptr) cache->Insert(frames, n, s.leaf);
  }
  if (unwind_cache != nullptr && unwind_cache->ShouldLearn(key)) {
    // The cache reads only inside this thread's stack, whose bounds are
    // looked up here, when first needed (a /proc/self/maps read: threads
    // that never repeat a call site never pay for it).
    InitThreadStackBounds();
    unwind_cache->Learn(key, frames, n, g_max_depth, s.leaf);
  }
  return s;
}

// New stack nodes go into the creating thread's chunk before the record
// that uses them. Caller holds ts->lock.
void EmitNodes(ThreadState* ts, const StackRef& s, uint64_t now) {
  for (uint64_t node = s.first_new; node <= s.last_new; ++node) {
    uint64_t parent, ip;
    g_stacks.Node(node, &parent, &ip);
    PUT(ts, now, PutStackNode(node, parent, ip));
  }
}

uint64_t ReadRss() {
  NoCancel no_cancel;  // under the state lock; open/read/close are cancellation points
  int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[128];
  ssize_t n = read(fd, buf, sizeof buf - 1);
  close(fd);
  if (n <= 0) return 0;
  buf[n] = '\0';
  const char* p = buf;
  while (*p != '\0' && *p != ' ') ++p;  // skip total size
  while (*p == ' ') ++p;
  uint64_t pages = 0;
  for (; *p >= '0' && *p <= '9'; ++p) pages = pages * 10 + static_cast<uint64_t>(*p - '0');
  return pages * g_page_size;
}

// Ends an event: maybe an RSS sample, and in write-through mode (after our
// exit handler) the chunk goes out at once. Caller holds ts->lock.
void EndEvent(ThreadState* ts, uint64_t now) {
  if (g_rss_interval_us != 0) {
    uint64_t next = g_next_rss_us.load(std::memory_order_relaxed);
    if (now >= next && g_next_rss_us.compare_exchange_strong(next, now + g_rss_interval_us,
                                                               std::memory_order_relaxed)) {
      PUT(ts, now, PutRss(now, ReadRss()));
      // Keep the TSC-to-time conversion anchored (clock.h); one thread at a
      // time gets here, having won the CAS above.
      RecalibrateClock();
    }
  }
  if (g_write_through.load(std::memory_order_relaxed)) FlushLocked(ts, now);
}

uint64_t AddressField(const void* p) {
  return g_record_addresses ? reinterpret_cast<uintptr_t>(p) : 0;
}

void InsertInternal(void* p) {
  LiveEntry e;
  e.internal = true;
  g_live.Insert(reinterpret_cast<uintptr_t>(p), e);
}

void Warn(const char* what, const char* path, int err) {
  if (g_warned.exchange(true) || g_options.QUIET) return;
  RawBuffer b;
  b.Str(what).Str(" ").Str(path).Str(": ").Str(ErrnoName(err)).Str(" (errno ").Num(err).Str(
      "); tracing disabled");
  RawLog(b);
}

const char* GetenvLookup(const char* name, void*) { return getenv(name); }

// kProcess: executable, argv (from /proc/self/cmdline, read raw), parent.
void WriteProcessRecord(ThreadState* ts, uint64_t now) {
  NoCancel no_cancel;  // under the state lock: /proc/self/cmdline
  // Keeps the record inside one chunk's record stream (7/16 of a 64 KiB
  // chunk, 28 KiB, as chunks were before they grew to 128 KiB): 16 KiB of
  // arguments, 256 argument lengths, two paths of PATH_MAX.
  constexpr size_t kCmdlineBytes = 16 * 1024;
  constexpr size_t kMaxArgs = 256;
  auto* cmdline = static_cast<char*>(PageAlloc(kCmdlineBytes + 1));
  auto* argv = static_cast<const char**>(PageAlloc(kMaxArgs * sizeof(char*)));
  size_t argc = 0, argv_bytes = 0;
  if (cmdline != nullptr && argv != nullptr) {
    int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
    size_t len = 0;
    if (fd >= 0) {
      ssize_t n;
      while (len < kCmdlineBytes && (n = read(fd, cmdline + len, kCmdlineBytes - len)) > 0) {
        len += static_cast<size_t>(n);
      }
      close(fd);
    }
    cmdline[len] = '\0';
    for (size_t i = 0; i < len && argc < kMaxArgs;) {
      argv[argc++] = cmdline + i;
      size_t l = std::strlen(cmdline + i);
      argv_bytes += l;
      i += l + 1;
    }
  }
  const char* exe = ExecutablePath();
  PUT(ts, now,
      PutProcess(now, exe, std::strlen(exe), argv, argc, argv_bytes,
                 static_cast<uint64_t>(getppid()), g_parent_trace, std::strlen(g_parent_trace)));
  PageFree(cmdline, kCmdlineBytes + 1);
  PageFree(argv, kMaxArgs * sizeof(char*));
}

void EmitModuleLoaded(const Module& m, void* ctx) {
  auto* ts = static_cast<ThreadState*>(ctx);
  uint64_t now = NowUs();
  SpinLockHolder hold(&ts->lock);
  PUT(ts, now,
      PutModule(now, m.id, m.load_address, m.path, m.path_len, m.build_id, m.build_id_len,
                m.segments, m.segment_count));
  if (g_write_through.load(std::memory_order_relaxed)) FlushLocked(ts, now);
}

void EmitModuleUnloaded(uint64_t id, void* ctx) {
  auto* ts = static_cast<ThreadState*>(ctx);
  uint64_t now = NowUs();
  SpinLockHolder hold(&ts->lock);
  PUT(ts, now, PutModuleUnload(now, id));
  if (g_write_through.load(std::memory_order_relaxed)) FlushLocked(ts, now);
}

// Creates this process's trace file and writes its header. False (and
// tracing disabled, with one warning) if that fails.
bool StartTraceFile(uint32_t flags) {
  char path[4096];
  if (!ExpandOutputPattern(g_options.OUTPUT, g_start_dir, ExecutablePath(),
                           static_cast<uint64_t>(g_pid), path, sizeof path)) {
    Warn("cannot write trace", g_options.OUTPUT, ENAMETOOLONG);
    g_status.store(kDisabled);
    return false;
  }
  format::FileHeader h{};
  std::memcpy(h.magic, format::kFileMagic, sizeof h.magic);
  h.version = format::kFormatVersion;
  h.header_size = sizeof h;
  if (g_coarse_clock.load(std::memory_order_relaxed)) flags |= format::kFileFlagCoarseClock;
  h.flags = flags;
  h.page_size = g_page_size;
  h.pid = static_cast<uint64_t>(g_pid);
  h.ppid = static_cast<uint64_t>(getppid());
  h.start_realtime_ns = g_start_realtime_ns;
  h.start_monotonic_ns = g_start_ns;
  h.sample_period_bytes = g_sample_period;
  if (g_sample_period != 0) h.flags |= format::kFileFlagSampled;
  if (int err = OpenTrace(path, h); err != 0) {
    Warn("cannot write trace", path, err);
    g_status.store(kDisabled);
    return false;
  }
  AppendToManifest(g_options.MANIFEST);
  return true;
}

// Removes our exec hand-over variable from the environment, so it cannot
// leak into processes started without our exec hooks (posix_spawn).
void ScrubEnvironment() {
  if (environ == nullptr) return;
  char** out = environ;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, kExecParentVar, kExecParentVarLen) != 0) *out++ = *e;
  }
  *out = nullptr;
}

// --- fork -------------------------------------------------------------------
// The prepare handler takes every lock the child will need, in the same
// order the event path nests them (stack table, modules, thread states,
// live-table shards, file, arena), so the child starts with consistent
// tables and no lock held by a thread that does not exist there.

void ForkPrepare() {
  if (g_status.load() != kActive) return;
  g_stacks.Lock();
  LockModules();
  LockAllThreadStates();
  g_live.LockAll();
  LockWriter();
  LockArena();
  g_fork_locked = true;
}

void ForkParent() {
  if (!g_fork_locked) return;
  g_fork_locked = false;
  UnlockArena();
  UnlockWriter();
  g_live.UnlockAll();
  UnlockAllThreadStates();
  UnlockModules();
  g_stacks.Unlock();
}

void InheritOne(uintptr_t, const LiveEntry& e, void* ctx) {
  if (e.internal) return;
  auto* ts = static_cast<ThreadState*>(ctx);
  uint64_t now = NowUs();
  PUT(ts, now, PutInherited(now, e.id, e.api, e.size, e.stack));
}

// The child: a new file of its own, describing the state it inherited. The
// parent's buffered events are dropped here (the parent flushes them), so
// nothing is duplicated; live blocks become kInherited with their ids.
void ForkChild() {
  if (!g_fork_locked) return;
  g_fork_locked = false;
  ErrnoKeeper keep_errno;  // the child's fork() returns with the parent's errno
  NoCancel no_cancel;
  ResetArenaLockInChild();
  g_live.ResetLocksInChild();
  ResetModuleLockInChild();
  g_stacks.ResetLockInChild();
  ReentryGuard guard;
  ResetClockInChild();  // before the child's first timestamp
  std::strncpy(g_parent_trace, TracePath(), sizeof g_parent_trace - 1);
  ForgetTraceInChild();
  g_pid = getpid();
  uint64_t now = NowUs();
  ResetThreadStatesInChild(now);
  g_end_written.store(false);
  g_next_rss_us.store(0);
  if (!StartTraceFile(format::kFileFlagForkChild)) return;
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) return;
  {
    SpinLockHolder hold(&ts->lock);
    WriteProcessRecord(ts, now);
  }
  ForEachLiveModule(ModuleSink{EmitModuleLoaded, EmitModuleUnloaded, ts});
  SpinLockHolder hold(&ts->lock);
  for (uint64_t node = 1, count = g_stacks.NodeCount(); node <= count; ++node) {
    uint64_t parent, ip;
    g_stacks.Node(node, &parent, &ip);
    PUT(ts, now, PutStackNode(node, parent, ip));
  }
  g_live.ForEachUnlocked(InheritOne, ts);
  EndEvent(ts, now);
}

// --- exit ---------------------------------------------------------------------

// Registered with atexit() from our constructor, i.e. before the program's
// own handlers and before _dl_fini, so it runs after them (see
// process_hooks.cc).
void AtExitHandler() {
  ErrnoKeeper keep_errno;  // later exit handlers see the program's errno
  FinishTrace(format::EndReason::kExit, g_exit_status);
  // Handlers registered before ours (by libraries initialized before us)
  // run after us and may still free memory: from now on every event is
  // written at once.
  g_write_through.store(true);
}

}  // namespace

void RescanModulesAndRecord(ThreadState* ts);

namespace {

// A free (or realloc) of a pointer the live table does not know. Not ours
// to judge yet (issue 5 sets the policy): it is recorded and the caller
// still hands it to the allocator, as without heapsight. The chunk goes out
// at once, because glibc usually aborts the process on such a free. Call
// under the reentry guard.
//
// Issue 5: recorded as kFreeError (with the block's allocation id when the
// pointer is in the recently-freed ring: a double free), and the returned
// action (HEAPSIGHT_ON_BAD_FREE) says what the caller does: kSkipped (do
// not call the allocator), kPassed, or kAborted (the process aborts here).
format::FreeAction RecordBadFree(void* p, Api api, uint64_t now) {
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) return format::FreeAction::kPassed;
  StackRef s = GetStack(ts);
  uint64_t alloc_id = 0;
  auto error = g_live.RecentlyRemoved(reinterpret_cast<uintptr_t>(p), &alloc_id)
                   ? format::FreeError::kDoubleFree
                   : format::FreeError::kInvalidFree;
  format::FreeAction action = g_bad_free_action;
  {
    SpinLockHolder hold(&ts->lock);
    EmitNodes(ts, s, now);
    PUT(ts, now,
        PutFreeError(now, api, error, action, reinterpret_cast<uintptr_t>(p), s.leaf, alloc_id));
    FlushLocked(ts, now);
  }
  if (action == format::FreeAction::kAborted) {
    FlushAllThreads(now);
    if (!g_options.QUIET) {
      RawBuffer b;
      b.Str(error == format::FreeError::kDoubleFree ? "double free" : "invalid free")
          .Str(": aborting (HEAPSIGHT_ON_BAD_FREE=abort)");
      RawLog(b);
    }
    abort();
  }
  return action;
}

// A block released by another API family than the one that allocated it
// (malloc/free, new/delete, new[]/delete[]). Recorded with the releasing
// call's stack; the block is still released (as memcheck does). Call under
// the reentry guard, before the kFree/kRealloc record of the block.
bool IsMismatched(Api alloc_api, Api free_api) {
  format::ApiFamily a = format::FamilyOf(alloc_api), f = format::FamilyOf(free_api);
  return a != format::ApiFamily::kNone && f != format::ApiFamily::kNone && a != f;
}

void RecordMismatch(ThreadState* ts, void* p, Api api, uint64_t alloc_id, uint64_t now) {
  StackRef s = GetStack(ts);
  SpinLockHolder hold(&ts->lock);
  EmitNodes(ts, s, now);
  PUT(ts, now,
      PutFreeError(now, api, format::FreeError::kMismatchedFree, format::FreeAction::kPassed,
                   reinterpret_cast<uintptr_t>(p), s.leaf, alloc_id));
}

}  // namespace

uint64_t NowUs() {
  // Never before the start: a wrapped difference would be a time 584 years
  // on, which the reader rightly rejects as corrupt.
  uint64_t ns = g_coarse_clock.load(std::memory_order_acquire) ? CoarseMonotonicNs()
                                                                : FastMonotonicNs();
  return ns > g_start_ns ? (ns - g_start_ns) / 1000 : 0;
}

void OnThreadStateCreated(uint32_t index) {
  if (index < 2 || g_clock_mode != ClockMode::kAuto ||
      !g_coarse_clock.load(std::memory_order_relaxed) ||
      g_clock_switching.exchange(true, std::memory_order_acq_rel)) {
    return;
  }
  // Calibrated before the switch is published: until then every thread
  // keeps reading the coarse clock.
  InitClock();
  g_coarse_clock.store(false, std::memory_order_release);
}

LiveTable& LiveBlocks() { return g_live; }
const Options& RecorderOptions() { return g_options; }

bool TracingActive() { return g_status.load(std::memory_order_relaxed) == kActive; }

namespace {

// RecordAlloc once the allocation is known to be recorded (sampled, or
// failed: failures are always recorded). Always inlined, like GetStack: no
// frame of its own for the unwinder to step through.
__attribute__((always_inline)) inline void RecordSampledAlloc(void* p, size_t size,
                                                              size_t alignment, Api api) {
  ReentryGuard guard;
  uint64_t now = NowUs();
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) {
    if (p != nullptr) InsertInternal(p);
    return;
  }
  if (__builtin_expect(t_modules_dirty, 0)) RescanModulesAndRecord(ts);
  StackRef s = GetStack(ts);
  SpinLockHolder hold(&ts->lock);
  EmitNodes(ts, s, now);
  if (p != nullptr) {
    uint64_t id = format::MakeAllocId(ts->index, ts->counter);
    PUT(ts, now, PutAlloc(now, api, size, s.leaf, alignment, AddressField(p)));
    ++ts->counter;
    // Inserted before the block is returned to the program, so no other
    // thread can free it before it is in the table.
    g_live.Insert(reinterpret_cast<uintptr_t>(p), LiveEntry{id, size, s.leaf, api, false});
  } else {
    PUT(ts, now, PutAllocFailed(now, api, size, s.leaf, alignment));
  }
  EndEvent(ts, now);
}

}  // namespace

void RecordAlloc(void* p, size_t size, size_t alignment, Api api) {
  // Called after the real function: the errno it left is what the program
  // gets back (unwinding, flushing and /proc reads may change errno).
  ErrnoKeeper keep_errno;
  int status = g_status.load(std::memory_order_relaxed);
  if (status == kDisabled) return;
  if (status != kActive || InHeapsight()) {
    // Allocated by libc inside one of our own calls, or before tracing
    // started: remember it so its free is neither recorded nor "bad".
    if (p != nullptr) InsertInternal(p);
    return;
  }
  // HEAPSIGHT_SAMPLE_BYTES: an allocation between two sampling points is
  // not recorded at all (and not entered in the live table, so its free
  // passes straight through).
  if (p != nullptr && !ShouldSample(size)) return;
  RecordSampledAlloc(p, size, alignment, api);
}

void TracedFree(void* p, Api api) {
  if (p == nullptr) return;  // free(NULL) does nothing; nothing to record
  if (IsBootstrapPointer(p)) return;  // dlsym's early calloc: never freed for real
  int status = g_status.load(std::memory_order_relaxed);
  if (status == kDisabled) {
    g_real.free(p);
    return;
  }
  // Record-before-free: the entry is removed (and the free recorded) BEFORE
  // the real free. Once the real free runs, another thread's malloc may get
  // the same address and insert it; had we not removed ours yet, we would
  // remove theirs and pair this free with the wrong allocation.
  LiveEntry e;
  bool found = g_live.Remove(reinterpret_cast<uintptr_t>(p), &e);
  if (status != kActive || InHeapsight() || (found && e.internal)) {
    g_real.free(p);
    return;
  }
  if (!found && g_sample_period != 0) {
    // Sampling: an unknown block was most likely just not sampled. Bad
    // frees cannot be told from those, so none is reported.
    g_real.free(p);
    return;
  }
  format::FreeAction action = format::FreeAction::kPassed;
  {
    ErrnoKeeper keep_errno;  // the real free below leaves errno as it decides
    ReentryGuard guard;
    uint64_t now = NowUs();
    if (ThreadState* ts = CurrentThreadState(now); ts != nullptr) {
      if (__builtin_expect(t_modules_dirty, 0)) RescanModulesAndRecord(ts);
      if (!found) {
        action = RecordBadFree(p, api, now);
      } else {
        if (__builtin_expect(IsMismatched(e.api, api), 0)) RecordMismatch(ts, p, api, e.id, now);
        SpinLockHolder hold(&ts->lock);
        PUT(ts, now, PutFree(now, api, e.id, ts->index, ts->counter));
        EndEvent(ts, now);
      }
    }
  }
  if (action == format::FreeAction::kSkipped) return;  // reported, not performed
  g_real.free(p);
}

void* TracedRealloc(void* p, size_t size, Api api, void* (*call)(void*, void*), void* ctx) {
  if (p == nullptr) {  // realloc(NULL, n) is malloc(n)
    void* q = call(nullptr, ctx);
    RecordAlloc(q, size, 0, api);
    return q;
  }
  int status = g_status.load(std::memory_order_relaxed);
  if (status == kDisabled) return call(p, ctx);
  LiveEntry old;
  // Remove before the real call, for the same reason as in TracedFree: if
  // the block moves, its old address may be handed out to another thread
  // as soon as realloc frees it.
  bool found = g_live.Remove(reinterpret_cast<uintptr_t>(p), &old);
  if (status != kActive || InHeapsight() || (found && old.internal)) {
    void* q = call(p, ctx);
    if (q != nullptr) {
      if (status == kActive && !InHeapsight()) {
        RecordAlloc(q, size, 0, api);  // an internal block became the program's
      } else {
        InsertInternal(q);
      }
    } else if (size != 0 && found) {
      g_live.Insert(reinterpret_cast<uintptr_t>(p), old);
    }
    return q;
  }
  // Sampling: the new block is sampled on its own (its size counts down the
  // thread's interval, as an allocation would). An old block the table does
  // not know was not sampled, so only the new side can be recorded.
  bool sample_new = true;
  if (g_sample_period != 0) {
    sample_new = ShouldSample(size);
    if (!found) {
      void* q = call(p, ctx);
      if (q != nullptr ? sample_new : size != 0) RecordSampledAlloc(q, size, 0, api);
      return q;
    }
  }
  uint64_t free_time = NowUs();
  if (!found) {
    // realloc of a pointer we never handed out: recorded (and flushed)
    // before the real call, which usually aborts the process.
    ReentryGuard guard;
    // Skipped (the default): like memcheck, realloc of a pointer that is
    // not a live block fails and leaves everything as it was.
    if (RecordBadFree(p, api, free_time) == format::FreeAction::kSkipped) return nullptr;
  } else if (__builtin_expect(IsMismatched(old.api, api), 0)) {
    ReentryGuard guard;
    if (ThreadState* ts = CurrentThreadState(free_time); ts != nullptr) {
      RecordMismatch(ts, p, api, old.id, free_time);
    }
  }
  void* q = call(p, ctx);
  uint64_t alloc_time = NowUs();
  if (q == nullptr && size != 0) {
    // Failed: the old block is untouched and still live under its old id.
    if (found) g_live.Insert(reinterpret_cast<uintptr_t>(p), old);
    RecordSampledAlloc(nullptr, size, 0, api);
    return q;
  }
  ReentryGuard guard;
  ThreadState* ts = CurrentThreadState(alloc_time);
  if (ts == nullptr) return q;
  if (__builtin_expect(t_modules_dirty, 0)) RescanModulesAndRecord(ts);
  StackRef s;
  if (q != nullptr && sample_new) s = GetStack(ts);
  SpinLockHolder hold(&ts->lock);
  EmitNodes(ts, s, alloc_time);
  if (q == nullptr || !sample_new) {
    // realloc(p, 0) freed the block and returned NULL (glibc): a free. So
    // is a move to a new block that sampling left out.
    if (found) PUT(ts, free_time, PutFree(free_time, api, old.id, ts->index, ts->counter));
  } else {
    uint64_t id = format::MakeAllocId(ts->index, ts->counter);
    if (found) {
      PUT(ts, free_time,
          PutRealloc(free_time, alloc_time, api, old.id, ts->index, ts->counter, size, s.leaf,
                     AddressField(q)));
    } else {
      PUT(ts, alloc_time, PutAlloc(alloc_time, api, size, s.leaf, 0, AddressField(q)));
    }
    ++ts->counter;
    g_live.Insert(reinterpret_cast<uintptr_t>(q), LiveEntry{id, size, s.leaf, api, false});
  }
  EndEvent(ts, alloc_time);
  return q;
}

void OnWriteError(int err) {
  g_status.store(kDisabled);
  Warn("cannot write trace", TracePath(), err);
}

void InitRecorder() {
  if (g_status.load() != kUninit || !EnsureRealFunctions()) return;
  ErrnoKeeper keep_errno;  // a constructor: main() starts with libc's errno
  NoCancel no_cancel;
  ReentryGuard guard;
  char error[256];
  bool options_ok = ParseOptions(GetenvLookup, nullptr, &g_options, error, sizeof error);
  if (g_options.DISABLE) {
    g_status.store(kDisabled);
    return;
  }
  if (!options_ok && !g_options.QUIET) {
    RawBuffer b;
    b.Str(error);
    RawLog(b);
  }
  if (const char* front = ForeignAllocator(); front != nullptr) {
    // Warned once, before any trace file exists; the hooks pass every call
    // to that allocator (real_functions.h).
    if (!g_options.QUIET) {
      RawBuffer b;
      b.Str("another allocator serves this program's malloc (").Str(front).Str(
          " comes before libheapsight.so); tracing disabled");
      RawLog(b);
    }
    g_status.store(kDisabled);
    return;
  }
  g_unwind = ParseUnwindMode(g_options.UNWIND);
  g_max_depth = static_cast<size_t>(g_options.MAX_DEPTH);
  g_record_addresses = g_options.RECORD_ADDRESSES;
  g_zstd_level = static_cast<int>(g_options.ZSTD_LEVEL);
  InitSampler(static_cast<uint64_t>(g_options.SAMPLE_BYTES));
  g_rss_interval_us = static_cast<uint64_t>(g_options.RSS_INTERVAL_MS) * 1000;
  g_bad_free_action = std::strcmp(g_options.ON_BAD_FREE, "abort") == 0 ? format::FreeAction::kAborted
                      : std::strcmp(g_options.ON_BAD_FREE, "pass") == 0
                          ? format::FreeAction::kPassed
                          : format::FreeAction::kSkipped;
  // The coarse clock needs no set-up; the precise one calibrates the TSC
  // (a ~200 us busy wait) before its first timestamp: here with
  // HEAPSIGHT_CLOCK=precise, at a second thread's start with auto.
  g_clock_mode = std::strcmp(g_options.CLOCK, "precise") == 0  ? ClockMode::kPrecise
                 : std::strcmp(g_options.CLOCK, "coarse") == 0 ? ClockMode::kCoarse
                                                                : ClockMode::kAuto;
  if (g_clock_mode == ClockMode::kPrecise) {
    InitClock();
    g_coarse_clock.store(false, std::memory_order_release);
  }
  g_start_ns = g_clock_mode == ClockMode::kPrecise ? FastMonotonicNs() : CoarseMonotonicNs();
  g_start_realtime_ns = RealtimeNs();
  g_pid = getpid();
  long page = sysconf(_SC_PAGESIZE);
  g_page_size = page > 0 ? static_cast<uint32_t>(page) : 4096;
  if (getcwd(g_start_dir, sizeof g_start_dir) == nullptr) g_start_dir[0] = '\0';
  uint32_t flags = 0;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, kExecParentVar, kExecParentVarLen) == 0) {
      std::strncpy(g_parent_trace, *e + kExecParentVarLen, sizeof g_parent_trace - 1);
      flags |= format::kFileFlagExeced;
    }
  }
  ScrubEnvironment();
  // Before our first unwind initializes libunwind (which would open its
  // validation pipe): unwind_validation.h.
  InstallUnwindValidation();
  if (!StartTraceFile(flags)) return;
  bool unwind_cache = g_unwind == UnwindMode::kLibunwind && g_options.UNWIND_CACHE;
  InitThreadStates(g_zstd_level, g_unwind == UnwindMode::kFramePointer, unwind_cache);
  ThreadState* ts = CurrentThreadState(0);
  if (ts == nullptr) {
    g_status.store(kDisabled);
    return;
  }
  {
    SpinLockHolder hold(&ts->lock);
    WriteProcessRecord(ts, 0);
  }
  RescanModules(ModuleSink{EmitModuleLoaded, EmitModuleUnloaded, ts});
  uintptr_t self_begin, self_end;
  if (ModuleRangeOf(reinterpret_cast<uintptr_t>(&InitRecorder), &self_begin, &self_end)) {
    SetSelfRange(self_begin, self_end);
  }
  {
    SpinLockHolder hold(&ts->lock);
    PUT(ts, 0, PutRss(0, ReadRss()));
  }
  g_next_rss_us.store(g_rss_interval_us);
  pthread_atfork(ForkPrepare, ForkParent, ForkChild);
  atexit(AtExitHandler);
  g_status.store(kActive);
}

void RecordExitStatus(int status) { g_exit_status = status; }

void EnableWriteThrough() { g_write_through.store(true); }

namespace {

// HEAPSIGHT_STATS: one line of our own counters.
void LogStats() {
  UnwindCache::Stats u = SumUnwindCacheStats();
  RawBuffer b;
  b.Str("stats: pid ").Num(g_pid).Str(": ").Num(static_cast<int64_t>(g_stacks.NodeCount()))
      .Str(" stack nodes; unwind cache: ").Num(static_cast<int64_t>(u.lookups))
      .Str(" lookups, ").Num(static_cast<int64_t>(u.hits)).Str(" hits, ")
      .Num(static_cast<int64_t>(u.learnt)).Str(" stacks learnt");
  RawLog(b);
}

}  // namespace

void FinishTrace(format::EndReason reason, int64_t status) {
  if (g_status.load() != kActive) return;
  // A vfork child shares our memory: it must not write the parent's trace.
  if (getpid() != g_pid) return;
  ErrnoKeeper keep_errno;
  NoCancel no_cancel;
  ReentryGuard guard;
  uint64_t now = NowUs();
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) return;
  if (g_modules_dirty.load(std::memory_order_relaxed) && ModulesChanged()) {
    RescanModules(ModuleSink{EmitModuleLoaded, EmitModuleUnloaded, ts});
  }
  // Issue 5: classify the live heap while it is intact and the other
  // threads still run (they are stopped for the scan).
  if (!g_end_written.load() && reason != format::EndReason::kExec) {
    RunLeakScan(reason == format::EndReason::kExit ? format::ScanReason::kExit
                                                   : format::ScanReason::kExitNow);
    now = NowUs();
  }
  FlushAllThreads(now);
  SpinLockHolder hold(&ts->lock);
  if (!g_end_written.exchange(true)) {
    PUT(ts, now, PutRss(now, ReadRss()));
    PUT(ts, now, PutEnd(now, reason, status));
    if (g_options.STATS) LogStats();
  }
  FlushLocked(ts, now);
}

void RescanModulesAndRecord(ThreadState* ts) {
  // Inside dlopen, the hook the loader called sits far below the dlopen
  // hook's frame; once dlopen has returned, the program's next hook frame
  // is at or above it.
  if (OutermostOwnFrame() >= t_dl_frame) t_modules_dirty = false;
  if (ModulesChanged()) RescanModules(ModuleSink{EmitModuleLoaded, EmitModuleUnloaded, ts});
}

void MarkModulesDirty(uintptr_t hook_frame) {
  t_dl_frame = hook_frame;
  t_modules_dirty = true;
  g_modules_dirty.store(true, std::memory_order_relaxed);
}

void FlushAllForFini() {
  if (g_status.load() != kActive || getpid() != g_pid) return;
  ErrnoKeeper keep_errno;
  NoCancel no_cancel;
  ReentryGuard guard;
  FlushAllThreads(NowUs());
}

void RecordFork(int64_t child_pid) {
  if (g_status.load() != kActive || child_pid <= 0) return;
  ErrnoKeeper keep_errno;  // fork() succeeded: errno as it was
  ReentryGuard guard;
  uint64_t now = NowUs();
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) return;
  SpinLockHolder hold(&ts->lock);
  PUT(ts, now, PutFork(now, static_cast<uint64_t>(child_pid)));
  EndEvent(ts, now);
}

bool PrepareExec(const char* path, char* const* envp, char*** new_envp) {
  *new_envp = nullptr;
  if (g_status.load() != kActive || getpid() != g_pid) return false;
  NoCancel no_cancel;
  ReentryGuard guard;
  uint64_t now = NowUs();
  FlushAllThreads(now);
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) return false;
  {
    SpinLockHolder hold(&ts->lock);
    const char* p = path != nullptr ? path : "";
    size_t len = std::strlen(p);
    if (len > 4096) len = 4096;
    PUT(ts, now, PutExec(now, p, len));
    PUT(ts, now, PutRss(now, ReadRss()));
    PUT(ts, now, PutEnd(now, format::EndReason::kExec, 0));
    g_end_written.store(true);
    FlushLocked(ts, now);
  }
  // envp + our hand-over variable, built in mmap'ed memory.
  size_t count = 0;
  for (char* const* e = envp; e != nullptr && *e != nullptr; ++e) ++count;
  size_t path_len = std::strlen(TracePath());
  size_t bytes = (count + 2) * sizeof(char*) + kExecParentVarLen + path_len + 1 + sizeof(size_t);
  auto* mem = static_cast<char*>(PageAlloc(bytes));
  if (mem == nullptr) return false;
  *reinterpret_cast<size_t*>(mem) = bytes;
  auto** env = reinterpret_cast<char**>(mem + sizeof(size_t));
  size_t n = 0;
  for (size_t i = 0; i < count; ++i) {
    if (std::strncmp(envp[i], kExecParentVar, kExecParentVarLen) != 0) env[n++] = envp[i];
  }
  char* var = mem + sizeof(size_t) + (count + 2) * sizeof(char*);
  std::memcpy(var, kExecParentVar, kExecParentVarLen);
  std::memcpy(var + kExecParentVarLen, TracePath(), path_len + 1);
  env[n++] = var;
  env[n] = nullptr;
  *new_envp = env;
  return true;
}

void ExecFailed(char** new_envp) {
  if (new_envp != nullptr) {
    char* mem = reinterpret_cast<char*>(new_envp) - sizeof(size_t);
    PageFree(mem, *reinterpret_cast<size_t*>(mem));
  }
  if (g_status.load() != kActive) return;
  NoCancel no_cancel;
  ReentryGuard guard;
  uint64_t now = NowUs();
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) return;
  SpinLockHolder hold(&ts->lock);
  // The exec did not happen: the kEnd just written is void, tracing goes on.
  PUT(ts, now, PutExecFailed(now));
  g_end_written.store(false);
  EndEvent(ts, now);
}

}  // namespace heapsight::preload
