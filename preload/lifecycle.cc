// preload/lifecycle.cc: see lifecycle.h.
//
// Constraints: no malloc on any path (PageAlloc for the process record and
// the exec environment), no stdio; raw-log text only for the one-time
// warning and HEAPSIGHT_STATS. Each record goes out under the calling
// thread's state lock; the fork handlers take every lock (below).
#include "preload/lifecycle.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "preload/chunk_spool.h"
#include "preload/clock.h"
#include "preload/control.h"
#include "preload/heap_limit.h"
#include "preload/host_guards.h"
#include "preload/internal_alloc.h"
#include "preload/leak_check.h"
#include "preload/leak_snapshot.h"
#include "preload/live_cells.h"
#include "preload/module_map.h"
#include "preload/nested_hooks.h"
#include "preload/options.h"
#include "preload/fork_gate.h"
#include "preload/raw_log.h"
#include "preload/real_functions.h"
#include "preload/recorder.h"
#include "preload/reentry_guard.h"
#include "preload/sampler.h"
#include "preload/service_task.h"
#include "preload/thread_state.h"
#include "preload/trace_flusher.h"
#include "preload/trace_writer.h"
#include "preload/tracer_state.h"
#include "preload/private_libunwind.h"
#include "preload/unwinder.h"

extern char** environ;

namespace heapsight::preload {
namespace {

using format::ChunkEncoder;

constexpr char kExecParentVar[] = "_HEAPSIGHT_EXEC_PARENT=";
constexpr size_t kExecParentVarLen = sizeof kExecParentVar - 1;

std::atomic<bool> g_end_written{false};
uint64_t g_start_realtime_ns = 0;
int g_exit_status = 0;
pid_t g_pid = 0;
uint32_t g_page_size = 4096;
char g_start_dir[4096];
char g_parent_trace[4096];
bool g_fork_locked = false;
std::atomic<bool> g_start_claimed{false};
// Issue 19: HEAPSIGHT_START=paused. g_start_flags: the flags the first
// trace would have had (kFileFlagExeced), for the first window.
bool g_paused_mode = false;
uint32_t g_start_flags = 0;
bool g_self_range_set = false;
// Serializes a window's start and end (the control thread) with the end of
// the process (FinishTrace) and with fork (taken in ForkPrepare, so a child
// never inherits a window half started or half ended).
SpinLock g_window_lock;

const char* GetenvLookup(const char* name, void*) { return getenv(name); }

// A SpinLockHolder that may hold nothing.
class MaybeLock {
 public:
  explicit MaybeLock(SpinLock* lock) : lock_(lock) {
    if (lock_ != nullptr) lock_->Lock();
  }
  ~MaybeLock() {
    if (lock_ != nullptr) lock_->Unlock();
  }
  MaybeLock(const MaybeLock&) = delete;
  MaybeLock& operator=(const MaybeLock&) = delete;

 private:
  SpinLock* lock_;
};

// Collects the program's (non-internal) live-table entries, so a window's
// start can drop them: blocks of an earlier window, or of the last moments
// of one, whose frees a paused process never took out of the table.
struct ProgramBlocks {
  uintptr_t* addresses = nullptr;
  size_t count = 0;
  size_t capacity = 0;
};
void CollectProgramBlock(uintptr_t address, const LiveEntry& e, void* ctx) {
  auto* b = static_cast<ProgramBlocks*>(ctx);
  if (!e.internal && b->count < b->capacity) b->addresses[b->count++] = address;
}
void DropProgramBlocks() {
  size_t n = g_live_blocks.Size();
  if (n == 0) return;
  ProgramBlocks b;
  b.capacity = n + 1024;
  b.addresses = static_cast<uintptr_t*>(PageAlloc(b.capacity * sizeof(uintptr_t)));
  if (b.addresses == nullptr) return;
  g_live_blocks.LockAll();
  g_live_blocks.ForEachUnlocked(CollectProgramBlock, &b);
  g_live_blocks.UnlockAll();
  LiveEntry e;
  for (size_t i = 0; i < b.count; ++i) g_live_blocks.Remove(b.addresses[i], &e);
  PageFree(b.addresses, b.capacity * sizeof(uintptr_t));
}

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
  const char* const* args = argv;
  AppendRecord(ts, now, &ChunkEncoder::PutProcess, now, exe, std::strlen(exe), args, argc,
               argv_bytes, static_cast<uint64_t>(getppid()), g_parent_trace,
               std::strlen(g_parent_trace));
  PageFree(cmdline, kCmdlineBytes + 1);
  PageFree(argv, kMaxArgs * sizeof(char*));
}

// The zstd level of the trace's blocks: HEAPSIGHT_ZSTD_LEVEL when it is
// set; otherwise 3, or kCompactZstdLevel for compact frees, whose long runs
// of repeated (stack, size) rows a higher level matches much better
// (python: 2.4x smaller at 9 than at 3, docs/performance.md, "Trace size on
// real programs"); compression runs on the writer thread, off the
// program's. Read at init, before any thread of ours exists.
constexpr int kCompactZstdLevel = 9;
int TraceZstdLevel() {
  if (g_options.COMPACT_FREES && getenv("HEAPSIGHT_ZSTD_LEVEL") == nullptr) {
    return kCompactZstdLevel;
  }
  return static_cast<int>(g_options.ZSTD_LEVEL);
}

// Creates this process's trace file and writes its header. Returns 0, or
// the errno value after one warning (`disable`: tracing disabled too;
// a window's failed start leaves the process paused instead).
int OpenTraceFile(uint32_t flags, bool disable) {
  char path[4096];
  if (!ExpandOutputPattern(g_options.OUTPUT, g_start_dir, ExecutablePath(),
                           static_cast<uint64_t>(g_pid), path, sizeof path)) {
    WarnOnce("cannot write trace", g_options.OUTPUT, ENAMETOOLONG);
    if (disable) g_tracing_status.store(kDisabled);
    return ENAMETOOLONG;
  }
  format::FileHeader h{};
  std::memcpy(h.magic, format::kFileMagic, sizeof h.magic);
  h.header_size = sizeof h;
  if (CoarseClockInUse()) flags |= format::kFileFlagCoarseClock;
  // Compact frees (recorder.cc writes them): version 5, so that a reader
  // that predates them refuses the file instead of misreading its frees.
  if (g_options.COMPACT_FREES) flags |= format::kFileFlagCompactFrees;
  // Address frees (recorder.cc): version 6, frees name addresses.
  if (g_address_frees) flags |= format::kFileFlagAddressFrees;
  h.flags = flags;
  h.version = format::FormatVersionFor(h.flags);
  h.page_size = g_page_size;
  h.pid = static_cast<uint64_t>(g_pid);
  h.ppid = static_cast<uint64_t>(getppid());
  h.start_realtime_ns = g_start_realtime_ns;
  h.start_monotonic_ns = g_trace_start_ns;
  h.sample_period_bytes = g_sample_period;
  if (g_sample_period != 0) h.flags |= format::kFileFlagSampled;
  if (int err = OpenTrace(path, h); err != 0) {
    WarnOnce("cannot write trace", path, err);
    if (disable) g_tracing_status.store(kDisabled);
    return err;
  }
  AppendToManifest(g_options.MANIFEST);
  return 0;
}

bool StartTraceFile(uint32_t flags) { return OpenTraceFile(flags, true) == 0; }

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
  g_window_lock.Lock();  // first: no window start/end is half done in the child
  if (g_tracing_status.load() != kActive) return;
  g_stack_table.Lock();
  LockModules();
  LockAllThreadStates();
  g_live_blocks.LockAll();
  LockWriter();
  LockArena();
  LockSpoolForFork();  // no spool unmapped or mapped half-way (chunk_spool.h)
  // Last: no heapsight call inside dl_iterate_phdr or libunwind at the fork
  // (the child would inherit the loader's or libunwind's lock held,
  // fork_gate.h).
  CloseForkGate();
  g_fork_locked = true;
}

void ForkParent() {
  if (g_fork_locked) {
    g_fork_locked = false;
    OpenForkGate();
    UnlockSpoolAfterFork();
    UnlockArena();
    UnlockWriter();
    g_live_blocks.UnlockAll();
    UnlockAllThreadStates();
    UnlockModules();
    g_stack_table.Unlock();
  }
  g_window_lock.Unlock();
}

void InheritOne(uintptr_t address, const LiveEntry& e, void* ctx) {
  if (e.internal) return;
  auto* ts = static_cast<ThreadState*>(ctx);
  uint64_t now = NowUs();
  // Address frees: the table holds only the rare program block without a
  // cell; it is named by its address like every other block there.
  uint64_t id = g_address_frees ? address : e.id;
  AppendRecord(ts, now, &ChunkEncoder::PutInherited, now, id, e.api, e.size, e.stack);
}

// Address frees: the program's live blocks are the cells' (trace_format.h,
// "Address frees"): a kInherited names each by its address, with the api
// of its family and its usable size; its stack (and the size asked for)
// are in the parent's trace only (docs/DESIGN.md).
struct CellInherit {
  ThreadState* ts;
  const MemoryMap* map;
  const Vma* vma;
};

format::Api ApiOfFamily(format::ApiFamily family) {
  switch (family) {
    case format::ApiFamily::kMalloc: return format::Api::kMalloc;
    case format::ApiFamily::kNew: return format::Api::kNew;
    case format::ApiFamily::kNewArray: return format::Api::kNewArray;
    default: return format::Api::kUnknown;
  }
}

void InheritCell(uintptr_t address, LiveCells::Cell cell, void* ctx) {
  auto* c = static_cast<CellInherit*>(ctx);
  bool mmapped = false;
  // The size asked for (CellBlockSize); the analyzer takes it from the
  // parent's trace where it has it.
  uint64_t size = CellBlockSize(address, cell, *c->map, &c->vma, &mmapped);
  uint64_t now = NowUs();
  AppendRecord(c->ts, now, &ChunkEncoder::PutInherited, now, uint64_t{address},
               ApiOfFamily(LiveCells::FamilyOf(cell)), size, uint64_t{0});
}

// The child: a new file of its own, describing the state it inherited. The
// parent's buffered events are dropped here (the parent flushes them), so
// nothing is duplicated; live blocks become kInherited with their ids. The
// child of an attached window records a window of its own (flagged
// kFileFlagAttached too); the child of a paused process is paused.
void ForkChildTrace() {
  if (!g_fork_locked) return;
  g_fork_locked = false;
  ErrnoKeeper keep_errno;  // the child's fork() returns with the parent's errno
  NoCancel no_cancel;
  ResetArenaLockInChild();
  g_live_blocks.ResetLocksInChild();
  ResetModuleLockInChild();
  g_stack_table.ResetLockInChild();
  ResetForkGateInChild();
  ReentryGuard guard;
  // Before anything the child flushes: the parent's writer thread is not
  // here and its spool is not ours; no writer starts inside this handler.
  ResetFlusherInChild();
  ResetClockInChild();  // before the child's first timestamp
  std::strncpy(g_parent_trace, TracePath(), sizeof g_parent_trace - 1);
  ForgetTraceInChild();
  g_pid = getpid();
  uint64_t now = NowUs();
  ResetThreadStatesInChild(now);
  ResetExitPointInChild();
  g_end_written.store(false);
  ResetRssSamplesInChild();
  ResetNestedHookCountsInChild();
  uint32_t flags = format::kFileFlagForkChild;
  if (g_partial_window.load()) flags |= format::kFileFlagAttached;
  if (!StartTraceFile(flags)) return;
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) return;
  {
    SpinLockHolder hold(&ts->lock);
    WriteProcessRecord(ts, now);
  }
  ForEachLiveModule(ModuleRecords(ts));
  {
    SpinLockHolder hold(&ts->lock);
    for (uint64_t node = 1, count = g_stack_table.NodeCount(); node <= count; ++node) {
      uint64_t parent, ip;
      g_stack_table.Node(node, &parent, &ip);
      AppendRecord(ts, now, &ChunkEncoder::PutStackNode, node, parent, ip);
    }
    g_live_blocks.ForEachUnlocked(InheritOne, ts);
    if (g_address_frees) {
      // The memory map, so that a stale cell's chunk header is never read
      // where nothing is mapped (CellBlockExtent).
      MemoryMap map;
      if (ReadMemoryMap(&map)) {
        CellInherit inherit{ts, &map, nullptr};
        g_live_cells.ForEachLive(InheritCell, &inherit);
      }
      FreeMemoryMap(&map);
    }
    EndEvent(ts, now);
  }
  // Last, with no lock held: from here the child may start a writer of its
  // own (at once with FLUSH_MS, else at its first hand-over).
  AllowFlusherInChild();
}

void ForkChild() {
  g_window_lock.ResetInChild();
  ForkChildTrace();
  // Last: the control thread it starts may allocate, which the child's
  // trace (if any) records from here on.
  if (g_paused_mode) RestartControlInChild();
}

// --- exit ---------------------------------------------------------------------

// Registered with atexit() when the trace starts (the first allocation, or
// our constructor), i.e. before the program's own handlers and before
// _dl_fini, so it runs after them (see process_hooks.cc).
void AtExitHandler() {
  ErrnoKeeper keep_errno;  // later exit handlers see the program's errno
  FinishTrace(format::EndReason::kExit, g_exit_status);
  // Handlers registered before ours (by libraries initialized before us)
  // run after us and may still free memory: from now on every event is
  // written at once.
  EnableWriteThrough();
}

// HEAPSIGHT_STATS: one line of our own counters.
void LogStats() {
  UnwindCache::Stats u = SumUnwindCacheStats();
  RawBuffer b;
  b.Str("stats: pid ").Num(g_pid).Str(": ").Num(static_cast<int64_t>(g_stack_table.NodeCount()))
      .Str(" stack nodes; unwind cache: ").Num(static_cast<int64_t>(u.lookups))
      .Str(" lookups, ").Num(static_cast<int64_t>(u.hits)).Str(" hits, ")
      .Num(static_cast<int64_t>(u.learnt)).Str(" stacks learnt, ")
      .Num(static_cast<int64_t>(u.refused)).Str(" left to libunwind, ")
      .Num(static_cast<int64_t>(u.stepped)).Str(" frames stepped, ")
      .Num(static_cast<int64_t>(u.spliced)).Str(" frames spliced, ")
      .Num(static_cast<int64_t>(u.rule_misses)).Str(" frame rules looked up, ")
      .Num(static_cast<int64_t>(u.words_checked)).Str(" stack words checked, ")
      .Num(static_cast<int64_t>(u.edge_hits)).Str(" stepped frames' nodes from the edge cache");
  uint64_t mismatches = 0;
  if (uint64_t verified = UnwindVerifications(&mismatches); verified != 0) {
    b.Str("; verify: ").Num(static_cast<int64_t>(verified)).Str(" stacks checked, ")
        .Num(static_cast<int64_t>(mismatches)).Str(" mismatches");
  }
  uint64_t handed_over = 0, inline_fallbacks = 0, writer_cpu_ns = 0;
  FlusherCounts(&handed_over, &inline_fallbacks, &writer_cpu_ns);
  b.Str("; writer thread: ").Num(static_cast<int64_t>(handed_over))
      .Str(" chunks handed over, ").Num(static_cast<int64_t>(inline_fallbacks))
      .Str(" written inline (spool full), ").Num(static_cast<int64_t>(writer_cpu_ns / 1000))
      .Str(" us CPU");
  // Hooks nested in a table operation or a real allocator call (signal
  // handlers that allocate, nested_hooks.h): only when there were some.
  NestedHookStats n = NestedHookCounts();
  if (n.allocs_recorded + n.allocs_untraced + n.pairs_untraced + n.frees_deferred +
          n.free_records + n.allocs_dropped + n.frees_dropped + n.frees_at_once != 0) {
    b.Str("; nested hooks: ").Num(static_cast<int64_t>(n.allocs_recorded))
        .Str(" allocations recorded without a stack, ")
        .Num(static_cast<int64_t>(n.allocs_untraced)).Str(" untraced, ")
        .Num(static_cast<int64_t>(n.pairs_untraced)).Str(" alloc/free pairs untraced, ")
        .Num(static_cast<int64_t>(n.frees_deferred)).Str(" frees deferred, ")
        .Num(static_cast<int64_t>(n.free_records)).Str(" frees recorded late, ")
        .Num(static_cast<int64_t>(n.allocs_dropped + n.frees_dropped))
        .Str(" dropped (queue full), ")
        .Num(static_cast<int64_t>(n.frees_at_once)).Str(" frees performed at once");
  }
  if (uint64_t t = ForkGateTimeouts(); t != 0) {
    b.Str("; forks that stopped waiting at the fork gate: ").Num(static_cast<int64_t>(t));
  }
  RawLog(b);
  // Issue 15: heapsight's own memory at exit. The live table's part: its
  // chunk tables, the still-mapped rest of tables being resized, and the
  // side tables (entries the packed form cannot hold); "other" is every
  // other PageAlloc mapping: stack table, thread buffers, arena, module
  // map (the trace writer's compression buffers are mapped apart and not
  // counted).
  LiveTable::MemoryUse use = g_live_blocks.Memory();
  auto live_blocks = static_cast<int64_t>(use.packed + use.side);
  auto table_bytes = static_cast<int64_t>(g_live_blocks.MappedBytes());
  auto mapped = static_cast<int64_t>(PageBytesMapped());
  RawBuffer m;
  m.Str("stats: pid ").Num(g_pid).Str(": memory: live table ").Num(table_bytes)
      .Str(" bytes for ").Num(live_blocks).Str(" live blocks (")
      .Num(live_blocks == 0 ? 0 : table_bytes / live_blocks).Str(" per block; chunks ")
      .Num(static_cast<int64_t>(use.chunk_bytes)).Str(", resizing ")
      .Num(static_cast<int64_t>(use.old_bytes)).Str(" in ")
      .Num(static_cast<int64_t>(use.resizing)).Str(" shards, side ")
      .Num(static_cast<int64_t>(use.side_bytes)).Str(" for ")
      .Num(static_cast<int64_t>(use.side)).Str(" entries; ")
      .Num(static_cast<int64_t>(use.grows)).Str(" resizes up, ")
      .Num(static_cast<int64_t>(use.shrinks)).Str(" down, ")
      .Num(static_cast<int64_t>(use.unmaps)).Str(" old tables or pieces returned in ")
      .Num(static_cast<int64_t>(use.release_calls)).Str(" system calls, ")
      .Num(static_cast<int64_t>(use.retired_bytes)).Str(" bytes queued); other ")
      .Num(mapped - table_bytes + static_cast<int64_t>(sizeof g_live_blocks))
      .Str(" bytes (stack table ").Num(static_cast<int64_t>(g_stack_table.MappedBytes()))
      .Str(", libunwind ").Num(static_cast<int64_t>(PrivateLibunwindMappedBytes()))
      .Str(" (at most ").Num(static_cast<int64_t>(PrivateLibunwindPeakBytes())).Str(")")
      .Str(", the rest thread buffers, arena, module map)");
  if (g_address_frees) {
    // Address frees: the program's live blocks are in the cells (the live
    // table above holds heapsight's own blocks). Mapped apart (MAP_NORESERVE),
    // not in "other": mapped is address space, touched what can be resident.
    m.Str("; live cells ").Num(static_cast<int64_t>(g_live_cells.MappedBytes()))
        .Str(" bytes mapped, ").Num(static_cast<int64_t>(g_live_cells.TouchedBytes()))
        .Str(" touched, ").Num(static_cast<int64_t>(g_live_cells.HugeRegions()))
        .Str(" of ").Num(static_cast<int64_t>(g_live_cells.HugeAttempts()))
        .Str(" dense 2 MiB regions in huge pages");
  }
  if (size_t filter = g_live_blocks.FilterBytes(); filter != 0) {
    // Sampled mode: the table's counting filter (counted in the table's
    // bytes above; mapped, touched only where marked).
    m.Str("; sampled-mode filter ").Num(static_cast<int64_t>(filter)).Str(" bytes, ")
        .Num(static_cast<int64_t>(g_live_blocks.FilterMarkedSlots())).Str(" slots marked");
  }
  RawLog(m);
}

}  // namespace

void StartTracingEarly() {
  // Inside our own work (the start itself, a scan...) or inside dlsym: not
  // the program's first event. Before libc's constructor: too early.
  if (InHeapsight() || environ == nullptr) return;
  // The heap limit counts from the same first allocation as the trace.
  ReadHeapLimitOnce();
  StartTracing();
}

void StartTracing() {
  if (g_tracing_status.load() != kUninit || !EnsureRealFunctions()) return;
  // Once: a hook's lazy start and the constructor (or two threads that a
  // library constructor started) may race here. A loser goes on untraced
  // for this one event (it stays internal, as before any start).
  if (g_start_claimed.exchange(true)) return;
  ErrnoKeeper keep_errno;  // main() (or the caller of the hook) keeps its errno
  NoCancel no_cancel;
  ReentryGuard guard;
  char error[256];
  bool options_ok = ParseOptions(GetenvLookup, nullptr, &g_options, error, sizeof error);
  if (g_options.DISABLE) {
    g_tracing_status.store(kDisabled);
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
    g_tracing_status.store(kDisabled);
    return;
  }
  long page = sysconf(_SC_PAGESIZE);
  g_page_size = page > 0 ? static_cast<uint32_t>(page) : 4096;
  ConfigureRecorder(g_options, g_page_size);
  if (std::strcmp(g_options.PAIRING, "address") == 0 && !g_address_frees && !g_options.QUIET) {
    // ConfigureRecorder kept table mode: say why, once.
    RawBuffer b;
    b.Str("HEAPSIGHT_PAIRING=address is for exact traces; with ")
        .Str(g_options.SAMPLE_BYTES != 0 ? "HEAPSIGHT_SAMPLE_BYTES"
             : g_options.COMPACT_FREES   ? "HEAPSIGHT_COMPACT_FREES"
                                         : "HEAPSIGHT_START=paused")
        .Str(" frees are paired by table (format version 4 or 5)");
    RawLog(b);
  }
  InitSampler(static_cast<uint64_t>(g_options.SAMPLE_BYTES));
  // Sampled mode: frees of unsampled blocks test the live table's filter
  // instead of probing it (live_table.h). Without it they still probe.
  if (g_sample_period != 0) g_live_blocks.EnableFilter();
  // And the hooks test for an unsampled event before anything else
  // (recorder.h): sound in every tracing status, so already now.
  EnableSampledFastPaths();
  StartTraceClock(g_options.CLOCK);
  g_start_realtime_ns = RealtimeNs();
  g_pid = getpid();
  if (getcwd(g_start_dir, sizeof g_start_dir) == nullptr) g_start_dir[0] = '\0';
  uint32_t flags = 0;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    if (std::strncmp(*e, kExecParentVar, kExecParentVarLen) == 0) {
      std::strncpy(g_parent_trace, *e + kExecParentVarLen, sizeof g_parent_trace - 1);
      flags |= format::kFileFlagExeced;
    }
  }
  ScrubEnvironment();
  // Our own copy of libunwind, before the first unwind
  // (private_libunwind.h); without it, the frame-pointer walk is the
  // best stack left (it warned once).
  const bool have_libunwind = LoadPrivateLibunwind();
  g_paused_mode = std::strcmp(g_options.START, "paused") == 0;
  g_start_flags = flags;
  // Paused: no file until `heapsight attach` (AttachWindow).
  if (!g_paused_mode && !StartTraceFile(flags)) return;
  UnwindMode unwind = ParseUnwindMode(g_options.UNWIND);
  if (unwind == UnwindMode::kLibunwind && !have_libunwind) {
    unwind = UnwindMode::kFramePointer;
    FallBackToFramePointers();
  }
  bool unwind_cache = unwind == UnwindMode::kLibunwind && g_options.UNWIND_CACHE;
  InitThreadStates(TraceZstdLevel(), unwind == UnwindMode::kFramePointer, unwind_cache);
  if (g_paused_mode) {
    // Dormant: the exit and fork handlers are registered now (their order
    // relative to the program's is the reason, see AtExitHandler) and do
    // nothing while paused. The control socket's thread starts from our
    // constructor (control.h), not here inside some library's malloc.
    pthread_atfork(ForkPrepare, ForkParent, ForkChild);
    atexit(AtExitHandler);
    g_tracing_status.store(kPaused);
    return;
  }
  ThreadState* ts = CurrentThreadState(0);
  if (ts == nullptr) {
    g_tracing_status.store(kDisabled);
    return;
  }
  {
    SpinLockHolder hold(&ts->lock);
    WriteProcessRecord(ts, 0);
  }
  RescanModules(ModuleRecords(ts));
  uintptr_t self_begin, self_end;
  if (ModuleRangeOf(reinterpret_cast<uintptr_t>(&StartTracing), &self_begin, &self_end)) {
    SetSelfRange(self_begin, self_end);
    g_self_range_set = true;
  }
  {
    SpinLockHolder hold(&ts->lock);
    RecordRss(ts, 0);
  }
  ScheduleFirstRssSample();
  pthread_atfork(ForkPrepare, ForkParent, ForkChild);
  atexit(AtExitHandler);
  g_tracing_status.store(kActive);
  // After the status (the writer starts only for an active trace).
  StartFlusherForFreshness();
}

bool PausedMode() { return g_paused_mode; }

int AttachWindow(char* path, size_t path_size) {
  SpinLockHolder window(&g_window_lock);
  if (g_tracing_status.load() != kPaused) return EALREADY;
  ErrnoKeeper keep_errno;
  NoCancel no_cancel;
  ReentryGuard guard;
  // The window's state from scratch: no blocks of an earlier window, a
  // clock that counts from the attach (the header's start), every thread's
  // chunks numbered from 0 in the new file.
  DropProgramBlocks();
  g_start_realtime_ns = RealtimeNs();
  g_trace_start_ns = CoarseClockInUse() ? CoarseMonotonicNs() : FastMonotonicNs();
  RestartAllThreadStates(0);
  ResetExitPointInChild();  // no exit point yet (the process runs on)
  g_end_written.store(false);
  if (int err = OpenTraceFile(g_start_flags | format::kFileFlagAttached, false); err != 0) {
    return err;
  }
  ThreadState* ts = CurrentThreadState(0);
  if (ts == nullptr) {
    CloseTrace();
    return ENOMEM;
  }
  {
    SpinLockHolder hold(&ts->lock);
    WriteProcessRecord(ts, 0);
  }
  // Modules known from an earlier window (or from the scan before the
  // control task started, control.cc), then what changed since. On the
  // control task (a raw task, service_task.h) no rescan: dl_iterate_phdr
  // takes the loader's lock, a recursive mutex keyed on the caller's glibc
  // thread descriptor, which the task does not have. A module loaded while
  // paused is recorded by the thread that loaded it at its next event (its
  // t_modules_dirty), or at exit.
  ForEachLiveModule(ModuleRecords(ts));
  if (!InServiceTask()) RescanModules(ModuleRecords(ts));
  uintptr_t self_begin, self_end;
  if (!g_self_range_set &&
      ModuleRangeOf(reinterpret_cast<uintptr_t>(&StartTracing), &self_begin, &self_end)) {
    SetSelfRange(self_begin, self_end);
    g_self_range_set = true;
  }
  {
    SpinLockHolder hold(&ts->lock);
    // Every stack node interned so far (earlier windows): threads emit a
    // node only when they create it, so the new file needs them all.
    for (uint64_t node = 1, count = g_stack_table.NodeCount(); node <= count; ++node) {
      uint64_t parent, ip;
      g_stack_table.Node(node, &parent, &ip);
      AppendRecord(ts, 0, &ChunkEncoder::PutStackNode, node, parent, ip);
    }
    RecordRss(ts, 0);
    // Written now: the file is readable (and its path is reported) at once.
    FlushLocked(ts, 0);
  }
  ScheduleFirstRssSample();
  std::strncpy(path, TracePath(), path_size - 1);
  path[path_size - 1] = '\0';
  g_partial_window.store(true);
  // Last: from here on the hooks record.
  g_tracing_status.store(kActive);
  // After the status (the writer starts only for an active trace): the
  // last detach stopped the writer (FlushAllThreads); this window gets its
  // own, with a spool beside its own trace.
  AllowFlusherRestart();
  return 0;
}

int DetachWindow(char* path, size_t path_size) {
  SpinLockHolder window(&g_window_lock);
  if (g_tracing_status.load() != kActive || !g_partial_window.load()) return ENOENT;
  if (getpid() != g_pid) return ENOENT;
  ErrnoKeeper keep_errno;
  NoCancel no_cancel;
  ReentryGuard guard;
  // First: the hooks stop recording. A thread that read kActive just
  // before may still be inside its event: taking and releasing every
  // thread's lock waits for those holding it, and a short pause for those
  // about to take it (they are microseconds from it: the stack is
  // unwound). A record that still comes later stays in its thread's buffer
  // and is dropped by the next attach (RestartAllThreadStates), or its
  // chunk's write is dropped by the closed writer: the file never gets it.
  g_tracing_status.store(kPaused);
  LockAllThreadStates();
  UnlockAllThreadStates();
  timespec pause{0, 2 * 1000 * 1000};
  nanosleep(&pause, nullptr);
  uint64_t now = NowUs();
  ThreadState* ts = CurrentThreadState(now);
  // Not on the control task (no dl_iterate_phdr there, see AttachWindow).
  if (ts != nullptr && !InServiceTask()) RecordPendingModuleChanges(ts);
  FlushAllThreads(now);
  if (ts != nullptr) {
    SpinLockHolder hold(&ts->lock);
    RecordRss(ts, now);
    AppendRecord(ts, now, &ChunkEncoder::PutEnd, now, format::EndReason::kDetach, int64_t{0});
    FlushLocked(ts, now);
  }
  g_end_written.store(true);
  std::strncpy(path, TracePath(), path_size - 1);
  path[path_size - 1] = '\0';
  CloseTrace();
  g_partial_window.store(false);
  return 0;
}

void RecordExitStatus(int status) {
  g_exit_status = status;
  // exit() called, or main returned: the exit point. Not in a vfork child
  // (it shares our memory; its exit is not ours).
  if (g_tracing_status.load() == kActive && getpid() == g_pid) BeginExit();
}

void FinishTrace(format::EndReason reason, int64_t status) {
  if (g_tracing_status.load() != kActive) return;
  // A vfork child shares our memory: it must not write the parent's trace.
  if (getpid() != g_pid) return;
  // Paused mode: not while the control thread starts or ends a window (the
  // end written here would race its records); then look again.
  MaybeLock window(g_paused_mode ? &g_window_lock : nullptr);
  if (g_tracing_status.load() != kActive) return;
  // _exit, _Exit, quick_exit, or an exit whose exit() and main() return we
  // did not see: the exit point at the latest.
  if (reason != format::EndReason::kExec) BeginExit();
  ErrnoKeeper keep_errno;
  NoCancel no_cancel;
  ReentryGuard guard;
  uint64_t now = NowUs();
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) return;
  RecordPendingModuleChanges(ts);
  // Issue 5: classify the live heap while it is intact and the other
  // threads still run (they are stopped for the scan).
  // The writer thread goes first (its chunks written, the thread joined):
  // the leak scan stops every other thread with a signal the writer blocks,
  // and from here on every chunk is written inline.
  StopFlusher();
  if (!g_end_written.load() && reason != format::EndReason::kExec) {
    RunLeakScan(reason == format::EndReason::kExit ? format::ScanReason::kExit
                                                   : format::ScanReason::kExitNow);
    now = NowUs();
  }
  FlushAllThreads(now);
  SpinLockHolder hold(&ts->lock);
  if (!g_end_written.exchange(true)) {
    RecordRss(ts, now);
    AppendRecord(ts, now, &ChunkEncoder::PutEnd, now, reason, status);
    if (g_options.STATS) LogStats();
  }
  FlushLocked(ts, now);
}

void FlushAllForFini() {
  if (g_tracing_status.load() != kActive || getpid() != g_pid) return;
  BeginExit();  // _dl_fini runs inside exit(): the exit point at the latest
  ErrnoKeeper keep_errno;
  NoCancel no_cancel;
  ReentryGuard guard;
  FlushAllThreads(NowUs());
}

void RecordFork(int64_t child_pid) {
  if (g_tracing_status.load() != kActive || child_pid <= 0) return;
  ErrnoKeeper keep_errno;  // fork() succeeded: errno as it was
  ReentryGuard guard;
  uint64_t now = NowUs();
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) return;
  SpinLockHolder hold(&ts->lock);
  AppendRecord(ts, now, &ChunkEncoder::PutFork, now, static_cast<uint64_t>(child_pid));
  EndEvent(ts, now);
}

bool PrepareExec(const char* path, char* const* envp, char*** new_envp) {
  *new_envp = nullptr;
  if (g_tracing_status.load() != kActive || getpid() != g_pid) return false;
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
    AppendRecord(ts, now, &ChunkEncoder::PutExec, now, p, len);
    RecordRss(ts, now);
    AppendRecord(ts, now, &ChunkEncoder::PutEnd, now, format::EndReason::kExec, int64_t{0});
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
  if (g_tracing_status.load() != kActive) return;
  NoCancel no_cancel;
  ReentryGuard guard;
  uint64_t now = NowUs();
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) return;
  {
    SpinLockHolder hold(&ts->lock);
    // The exec did not happen: the kEnd just written is void, tracing goes on.
    AppendRecord(ts, now, &ChunkEncoder::PutExecFailed, now);
    g_end_written.store(false);
    EndEvent(ts, now);
  }
  // PrepareExec stopped the writer thread; with no lock held, a later
  // hand-over may start another (execvp tries one PATH entry after another).
  AllowFlusherRestart();
}

}  // namespace heapsight::preload
