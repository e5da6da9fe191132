// preload/leak_check.cc: see leak_check.h.
//
// Constraints: no malloc (PageAlloc only); between StopOtherThreads and
// ResumeOtherThreads no locks, no loader calls, no allocation.
#include "preload/leak_check.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "preload/clock.h"
#include "preload/host_guards.h"
#include "preload/internal_alloc.h"
#include "preload/leak_scan.h"
#include "preload/live_table.h"
#include "preload/options.h"
#include "preload/reentry_guard.h"
#include "preload/root_regions.h"
#include "preload/sampler.h"
#include "preload/thread_capture.h"
#include "preload/thread_state.h"
#include "preload/tracer_state.h"

namespace heapsight::preload {
namespace {

using format::LeakClass;

std::atomic<bool> g_scan_running{false};
std::atomic<uint64_t> g_scan_number{0};

// x86-64: the red zone below the stack pointer may hold a leaf function's
// live data.
constexpr uintptr_t kRedZone = 128;
// glibc 2.36's struct pthread (the TCB at the thread pointer) is about 2.3 KiB;
// it holds the DTV pointer and the first-level pthread_setspecific values.
constexpr uintptr_t kThreadControlBlockBytes = 4096;
constexpr int kStopTimeoutMs = 200;

struct Block {
  uintptr_t start;
  uint64_t size;
  uint64_t id;
  bool internal;
};

struct Snapshot {
  Block* blocks = nullptr;
  size_t count = 0;
  size_t capacity = 0;
  const MemoryMap* map = nullptr;
};

void CountOne(uintptr_t, const LiveEntry&, void* ctx) { ++*static_cast<size_t*>(ctx); }

void CopyOne(uintptr_t address, const LiveEntry& e, void* ctx) {
  auto* s = static_cast<Snapshot*>(ctx);
  if (s->count >= s->capacity) return;
  uint64_t size = e.size;
  // Internal blocks (allocated inside heapsight's own calls or before
  // tracing began) have no recorded size; they are part of the heap graph
  // (a library's registry may hold the program's blocks), never reported.
  if (e.internal) {
    // Only if the chunk header is mapped: a stale entry (freed around us,
    // its memory unmapped) must not fault.
    bool mapped = address >= 16 && s->map->Readable(address - 16, address + 1);
    size = mapped ? malloc_usable_size(reinterpret_cast<void*>(address)) : 0;
  }
  s->blocks[s->count++] = Block{address, size, e.id, e.internal};
}

size_t UsableSize(uintptr_t start) { return malloc_usable_size(reinterpret_cast<void*>(start)); }

// memcheck's vtable test: the table's first entries are null or point to
// executable code, at least two of them non-null.
bool LooksLikeVtable(uintptr_t addr, void* ctx) {
  const auto* map = static_cast<const MemoryMap*>(ctx);
  if (addr < 4096 || addr % sizeof(uintptr_t) != 0) return false;
  const Vma* v = map->Find(addr);
  if (v == nullptr || !v->readable || v->writable || !v->file_backed) return false;
  constexpr int kEntries = 4;
  if (!map->Readable(addr, addr + kEntries * sizeof(uintptr_t))) return false;
  int code = 0;
  for (int i = 0; i < kEntries; ++i) {
    uintptr_t entry;
    std::memcpy(&entry, reinterpret_cast<const void*>(addr + i * sizeof(uintptr_t)),
                sizeof entry);
    if (entry == 0) continue;
    const Vma* t = map->Find(entry);
    if (t == nullptr || !t->executable) return false;
    ++code;
  }
  return code >= 2;
}

struct RootScanner {
  LeakClassifier* classifier;
  const MemoryMap* map;
  const Snapshot* snapshot;
  const uintptr_t* starts;
  uint64_t root_bytes = 0;

  void Range(uintptr_t lo, uintptr_t hi) {
    if (hi <= lo) return;
    map->ForEachReadable(lo, hi, [&](uintptr_t a, uintptr_t b) {
      root_bytes += b - a;
      classifier->ScanRange(a, b);
    });
  }

  // A thread's stack from its stack pointer to the top of the mapping that
  // holds it (for a pthread that includes its static TLS and TCB); a stack
  // inside a heap block (pthread_attr_setstack) ends with the block.
  void Stack(uintptr_t sp) {
    uintptr_t lo = sp > kRedZone ? sp - kRedZone : sp;
    size_t block = classifier->Find(sp);
    if (block != SIZE_MAX) {
      const Block& b = snapshot->blocks[block];
      Range(lo < b.start ? b.start : lo, b.start + b.size);
      return;
    }
    const Vma* v = map->Find(sp);
    if (v == nullptr) return;
    if (lo < v->start) lo = v->start;
    Range(lo, v->end);
  }

  // Static TLS blocks, the TCB, and the DTV (whose entries own the dynamic
  // TLS blocks: those are roots, as in memcheck and LeakSanitizer).
  void ThreadPointer(uintptr_t tp, const ModuleRoots& modules) {
    if (tp == 0) return;
    for (size_t i = 0; i < modules.tls_count; ++i) {
      uintptr_t lo = tp - modules.tls[i].offset;
      Range(lo, lo + modules.tls[i].size);
    }
    Range(tp, tp + kThreadControlBlockBytes);
    uintptr_t dtv = 0;
    if (!map->Readable(tp + sizeof(uintptr_t), tp + 2 * sizeof(uintptr_t))) return;
    std::memcpy(&dtv, reinterpret_cast<const void*>(tp + sizeof(uintptr_t)), sizeof dtv);
    // dtv[-1].counter is the number of slots; each slot is 16 bytes.
    if (dtv < 16 || !map->Readable(dtv - 16, dtv)) return;
    uint64_t slots;
    std::memcpy(&slots, reinterpret_cast<const void*>(dtv - 16), sizeof slots);
    if (slots > (1u << 16)) return;
    uintptr_t hi = dtv + 16 * (slots + 1);
    size_t block = classifier->Find(dtv - 16);
    if (block != SIZE_MAX && starts[block] == dtv - 16) classifier->MarkReachable(block);
    if (map->Readable(dtv - 16, hi)) Range(dtv - 16, hi);
  }
};

uint64_t PutClasses(ThreadState* ts, uint64_t scan, LeakClass leak_class, const Snapshot& snap,
                    const LeakClassifier& classifier, uint64_t now) {
  constexpr size_t kBatch = 1024;
  uint64_t ids[kBatch];
  size_t n = 0;
  uint64_t written = 0;
  auto flush = [&]() {
    if (n == 0) return;
    AppendRecord(ts, now, &format::ChunkEncoder::PutBlockClasses, scan, leak_class, ids, n);
    written += n;
    n = 0;
  };
  for (size_t i = 0; i < snap.count; ++i) {
    if (snap.blocks[i].internal || classifier.ClassOf(i) != leak_class) continue;
    ids[n++] = snap.blocks[i].id;
    if (n == kBatch) flush();
  }
  flush();
  return written;
}

bool ScanLocked(format::ScanReason reason, uintptr_t caller_frame, const uintptr_t* own_regs,
                size_t own_reg_count, LeakScanResult* result) {
  // The scan's duration comes from the precise clock: event times may have
  // only the kernel tick's resolution (HEAPSIGHT_CLOCK=coarse).
  uint64_t t0_ns = MonotonicNs();
  uintptr_t self_tp = CurrentThreadPointer();
  ModuleRoots modules;
  if (!CollectModuleRoots(reinterpret_cast<uintptr_t>(&RunLeakScan), self_tp, &modules)) {
    return false;
  }
  ThreadCapture capture;
  bool stopped = StopOtherThreads(static_cast<int>(g_options.LEAK_SCAN_SIGNAL),
                                  kStopTimeoutMs, &capture);
  if (!stopped) {
    // Other threads run and cannot be stopped (every real-time signal is
    // taken, or no memory): reading the heap under them could fault on a
    // block they unmap. No scan; the blocks stay "not freed".
    FreeModuleRoots(&modules);
    return false;
  }
  // From here until ResumeOtherThreads: no malloc, no locks.
  LiveTable& live = g_live_blocks;
  size_t estimate = 0;
  live.ForEachUnlocked(CountOne, &estimate);
  Snapshot snap;
  snap.capacity = estimate + 1024;  // missed threads may still allocate
  size_t snap_bytes = snap.capacity * sizeof(Block);
  size_t array_bytes = snap.capacity * 2 * sizeof(uint64_t);
  snap.blocks = static_cast<Block*>(PageAlloc(snap_bytes));
  auto* arrays = static_cast<uint64_t*>(PageAlloc(array_bytes));
  MemoryMap map;
  bool ok = snap.blocks != nullptr && arrays != nullptr && ReadMemoryMap(&map);
  LeakClassifier classifier;
  uintptr_t* starts = reinterpret_cast<uintptr_t*>(arrays);
  uint64_t* sizes = arrays + snap.capacity;
  uint64_t root_bytes = 0;
  if (ok) {
    snap.map = &map;
    live.ForEachUnlocked(CopyOne, &snap);
    std::sort(snap.blocks, snap.blocks + snap.count,
              [](const Block& a, const Block& b) { return a.start < b.start; });
    for (size_t i = 0; i < snap.count; ++i) {
      // A stale entry (its free went around us) overlapping a newer block
      // is cut back so blocks stay disjoint.
      if (i + 1 < snap.count && snap.blocks[i].start + snap.blocks[i].size >
                                    snap.blocks[i + 1].start) {
        snap.blocks[i].size = snap.blocks[i + 1].start - snap.blocks[i].start;
      }
      starts[i] = snap.blocks[i].start;
      sizes[i] = snap.blocks[i].size;
    }
    LeakClassifier::Hooks hooks;
    hooks.usable_size = UsableSize;
    hooks.is_vtable = LooksLikeVtable;
    hooks.ctx = &map;
    ok = classifier.Init(starts, sizes, snap.count, hooks);
  }
  if (ok) {
    for (size_t i = 0; i < snap.count; ++i) {
      uintptr_t lo = starts[i], hi = lo + sizes[i];
      const Vma* v = map.Find(lo);
      bool readable = v != nullptr && v->readable && hi <= v->end;
      if (!readable && !map.Readable(lo, hi)) classifier.SetUnreadable(i);
    }
    RootScanner roots{&classifier, &map, &snap, starts};
    for (size_t i = 0; i < modules.range_count; ++i) {
      roots.Range(modules.ranges[i].lo, modules.ranges[i].hi);
    }
    // This thread: from our caller's frame up (our own frames hold nothing
    // of the program's).
    roots.Stack(caller_frame);
    for (size_t i = 0; i < own_reg_count; ++i) classifier.ScanWord(own_regs[i]);
    roots.ThreadPointer(self_tp, modules);
    for (size_t t = 0; t < capture.count; ++t) {
      const CapturedThread& th = capture.threads[t];
      if (th.stopped) {
        for (uintptr_t r : th.regs) classifier.ScanWord(r);
        roots.root_bytes += sizeof th.regs;
      }
      if (th.sp_known) roots.Stack(th.sp);
      roots.ThreadPointer(th.tp, modules);
    }
    classifier.Finish();
    root_bytes = roots.root_bytes;
  }
  uint64_t threads_stopped = capture.stopped;
  uint64_t threads_missed = capture.missed;
  ResumeOtherThreads(&capture);
  FreeMemoryMap(&map);
  FreeModuleRoots(&modules);

  bool written = false;
  if (ok) {
    uint64_t blocks[format::kLeakClassCount] = {}, bytes[format::kLeakClassCount] = {};
    uint64_t program_blocks = 0;
    for (size_t i = 0; i < snap.count; ++i) {
      if (snap.blocks[i].internal) continue;
      int c = static_cast<int>(classifier.ClassOf(i)) - 1;
      ++blocks[c];
      bytes[c] += snap.blocks[i].size;
      ++program_blocks;
    }
    uint64_t now = NowUs();
    uint64_t duration_us = (MonotonicNs() - t0_ns) / 1000;
    uint64_t scan = g_scan_number.fetch_add(1) + 1;
    if (ThreadState* ts = CurrentThreadState(now); ts != nullptr) {
      SpinLockHolder hold(&ts->lock);
      // The scan's records get chunks of their own (a reader that predates
      // them loses only those chunks; docs/trace-format.md section 11).
      if (!ts->encoder.empty()) FlushLocked(ts, now);
      AppendRecord(ts, now, &format::ChunkEncoder::PutLeakScan, now, scan, reason, duration_us,
                   threads_stopped, threads_missed, root_bytes, program_blocks, blocks, bytes);
      for (int c = 1; c <= format::kLeakClassCount; ++c) {
        PutClasses(ts, scan, static_cast<LeakClass>(c), snap, classifier, now);
      }
      FlushLocked(ts, now);
      written = true;
    }
    if (result != nullptr) {
      result->scan = scan;
      std::memcpy(result->blocks, blocks, sizeof blocks);
      std::memcpy(result->bytes, bytes, sizeof bytes);
      result->duration_us = duration_us;
      result->threads_stopped = threads_stopped;
      result->threads_missed = threads_missed;
    }
  }
  if (snap.blocks != nullptr) PageFree(snap.blocks, snap_bytes);
  if (arrays != nullptr) PageFree(arrays, array_bytes);
  return written;
}

}  // namespace

__attribute__((noinline)) bool RunLeakScan(format::ScanReason reason, LeakScanResult* result) {
  // Not with sampling: unsampled blocks are not in the live table, so a
  // sampled block reachable only through one would look lost.
  if (!TracingActive() || !g_options.LEAK_SCAN || g_sample_period != 0) return false;
  // Not cancellable while g_scan_running is set and other threads are
  // stopped (host_guards.h); errno as the caller left it.
  NoCancel no_cancel;
  ErrnoKeeper keep_errno;
  if (g_scan_running.exchange(true)) return false;
  ReentryGuard guard;
  // The caller's callee-saved registers may hold the program's only copy of
  // a pointer; our callees would save them below the frame the stack scan
  // starts from, so they are captured here.
  uintptr_t regs[6] = {};
#if defined(__x86_64__)
  __asm__ volatile(
      "mov %%rbx, 0(%0)\n\t"
      "mov %%rbp, 8(%0)\n\t"
      "mov %%r12, 16(%0)\n\t"
      "mov %%r13, 24(%0)\n\t"
      "mov %%r14, 32(%0)\n\t"
      "mov %%r15, 40(%0)\n\t"
      :
      : "r"(regs)
      : "memory");
#endif
  bool ok = ScanLocked(reason, reinterpret_cast<uintptr_t>(__builtin_frame_address(0)), regs, 6,
                       result);
  g_scan_running.store(false);
  return ok;
}

}  // namespace heapsight::preload

// The in-program entry point (found with dlsym by include/heapsight.h's
// wrapper, which the API owner adds): scans now, records the classes, and
// returns the number of definitely + possibly lost program blocks, or -1
// when no scan ran (tracing off, HEAPSIGHT_LEAK_SCAN=0, a scan running).
extern "C" __attribute__((visibility("default"))) long __heapsight_leak_check() {
  heapsight::preload::LeakScanResult result;
  if (!heapsight::preload::RunLeakScan(heapsight::format::ScanReason::kRequest, &result)) {
    return -1;
  }
  return static_cast<long>(result.blocks[0] + result.blocks[2]);
}
