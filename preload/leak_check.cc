// preload/leak_check.cc: see leak_check.h.
//
// Constraints: no malloc (PageAlloc only); between StopOtherThreads and
// ResumeOtherThreads no locks, no loader calls, no allocation. Mappings
// other than module data and stacks are read through process_vm_readv on
// ourselves (a page that cannot be read fails the call instead of raising
// SIGBUS/SIGSEGV); errno is restored after.
#include "preload/leak_check.h"

#include <errno.h>
#include <malloc.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>

#include "preload/clock.h"
#include "preload/host_guards.h"
#include "preload/internal_alloc.h"
#include "preload/leak_scan.h"
#include "preload/leak_snapshot.h"
#include "preload/options.h"
#include "preload/page_residency.h"
#include "preload/raw_log.h"
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

// One scan's costs, for HEAPSIGHT_STATS.
struct LeakScanStats {
  uint64_t scan = 0;
  uint64_t blocks = 0;           // blocks classified (program + internal)
  uint64_t pending_skipped = 0;  // address frees: blocks left out (leak_snapshot.h)
  uint64_t duration_us = 0;
  uint64_t snapshot_us = 0;      // of which taking the block set
  uint64_t snapshot_bytes = 0;   // the block arrays (leak_snapshot.h)
  uint64_t peak_bytes = 0;       // PageAlloc memory the scan had mapped at once, at most
  uint64_t words_scanned = 0;    // roots + blocks
  uint64_t threads_stopped = 0;
  uint64_t threads_missed = 0;         // their stacks scanned from a syscall's sp, if known
  uint64_t threads_not_signalled = 0;  // of the missed: judged unable to answer (no wait)
  uint64_t stop_us = 0;                // of duration_us: stopping the other threads
  uint64_t words_searched = 0;  // of words_scanned: past the granule filter (leak_scan.h)
  uint64_t pages_skipped = 0;   // never-written pages not read (page_residency.h)
};

void LogScanStats(const LeakScanStats& scan) {
  RawBuffer l;
  l.Str("stats: pid ").Num(static_cast<int64_t>(getpid())).Str(": leak scan ")
      .Num(static_cast<int64_t>(scan.scan)).Str(": ").Num(static_cast<int64_t>(scan.blocks))
      .Str(" blocks (").Str(g_address_frees ? "from the cells" : "from the live table")
      .Str(", ").Num(static_cast<int64_t>(scan.pending_skipped)).Str(" left out mid-hook), ")
      .Num(static_cast<int64_t>(scan.duration_us)).Str(" us (block set ")
      .Num(static_cast<int64_t>(scan.snapshot_us)).Str(" us), ")
      .Num(static_cast<int64_t>(scan.words_scanned)).Str(" words scanned; memory ")
      .Num(static_cast<int64_t>(scan.peak_bytes)).Str(" bytes mapped at most (block arrays ")
      .Num(static_cast<int64_t>(scan.snapshot_bytes)).Str("); other threads ")
      .Num(static_cast<int64_t>(scan.threads_stopped)).Str(" stopped, ")
      .Num(static_cast<int64_t>(scan.threads_missed)).Str(" missed (")
      .Num(static_cast<int64_t>(scan.threads_not_signalled)).Str(" not signalled), stop ")
      .Num(static_cast<int64_t>(scan.stop_us)).Str(" us; ")
      .Num(static_cast<int64_t>(scan.words_searched)).Str(" words searched; ")
      .Num(static_cast<int64_t>(scan.pages_skipped)).Str(" pages never written skipped");
  RawLog(l);
}

// x86-64: the red zone below the stack pointer may hold a leaf function's
// live data.
constexpr uintptr_t kRedZone = 128;
// glibc 2.36's struct pthread (the TCB at the thread pointer) is about 2.3 KiB;
// it holds the DTV pointer and the first-level pthread_setspecific values.
constexpr uintptr_t kThreadControlBlockBytes = 4096;
constexpr int kStopTimeoutMs = 200;

// What the classifier's hooks read.
struct HookContext {
  const MemoryMap* map;
  const LeakSnapshot* snap;
};

size_t UsableSize(uintptr_t start) { return malloc_usable_size(reinterpret_cast<void*>(start)); }

// memcheck's vtable test (mc_leakcheck.c, aligned_ptr_above_page0_is_
// vtable_addr): `addr` is in a readable file mapping, and reading its words
// in order (at most 21, never the mapping's last word, as memcheck bounds
// the scan), null entries are skipped, a non-null entry that is not in an
// executable file mapping rejects the table, and the second entry in
// executable code accepts it. Entries after the second code pointer are not
// looked at (a vtable is often followed by other data: the next table's
// offset-to-top and typeinfo).
bool LooksLikeVtable(uintptr_t addr, void* ctx) {
  const MemoryMap* map = static_cast<const HookContext*>(ctx)->map;
  if (addr < 4096 || addr % sizeof(uintptr_t) != 0) return false;
  const Vma* v = map->Find(addr);
  if (v == nullptr || !v->readable || !v->file_backed) return false;
  constexpr uintptr_t kMaxEntries = 20;
  uintptr_t last = addr + kMaxEntries * sizeof(uintptr_t);
  if (v->end < 9 + addr) return false;
  if (last > v->end - 9) last = v->end - 9;
  int code = 0;
  for (uintptr_t at = addr; at <= last; at += sizeof(uintptr_t)) {
    uintptr_t entry;
    std::memcpy(&entry, reinterpret_cast<const void*>(at), sizeof entry);
    if (entry == 0) continue;
    const Vma* t = map->Find(entry);
    if (t == nullptr || !t->file_backed || !t->executable) return false;
    if (++code == 2) return true;
  }
  return false;
}

// Address frees: an arena chunk's size is exact (its cell's low bits,
// leak_snapshot.h); an mmap'ed chunk's is an upper bound.
uint64_t MinRequest(size_t index, void* ctx) {
  const LeakSnapshot* snap = static_cast<const HookContext*>(ctx)->snap;
  if ((snap->flags[index] & LeakSnapshot::kMmapped) == 0) return snap->sizes[index];
  return LeastRequestFor(snap->sizes[index], true);
}

struct RootScanner {
  LeakClassifier* classifier;
  const MemoryMap* map;
  const LeakSnapshot* snapshot;
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
      uintptr_t start = snapshot->starts[block];
      Range(lo < start ? start : lo, start + snapshot->sizes[block]);
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
    if (block != SIZE_MAX && snapshot->starts[block] == dtv - 16) {
      classifier->MarkReachable(block);
    }
    if (map->Readable(dtv - 16, hi)) Range(dtv - 16, hi);
  }
};

// ---------------------------------------------------------------------
// Roots in the other writable mappings (memcheck scans every readable and
// writable client mapping except devices; docs/leak-classification.md,
// "Which memory is a root"). Excluded: memory the allocator owns (glibc's
// brk heap, the heaps of its other arenas, mmap'ed chunks of live blocks),
// heapsight's own memory, thread stacks below the stack pointer, and what
// the module and stack scans already covered.

// glibc's non-main arenas live in heaps of HEAP_MAX_SIZE (64 MiB on 64-bit
// with the default tunables), aligned to that size, each starting with a
// heap_info header {ar_ptr, prev, size, mprotect_size, pagesize}.
constexpr uintptr_t kArenaHeapBytes = uintptr_t{64} << 20;
constexpr uintptr_t kPage = 4096;
constexpr size_t kCopyBytes = 64 << 10;

// A 64 MiB-aligned address where a non-main arena's heap starts: the header
// is consistent (page-multiple sizes within the heap, a power-of-two page
// size, the arena pointer just after a heap header of this or an earlier
// heap, `prev` null or another heap start).
// `w` holds the first five words at h.
bool IsArenaHeap(uintptr_t h, const uintptr_t* w) {
  if (h % kArenaHeapBytes != 0) return false;
  uintptr_t ar_ptr = w[0], prev = w[1], size = w[2], mprotect_size = w[3], pagesize = w[4];
  if (pagesize < kPage || (pagesize & (pagesize - 1)) != 0) return false;
  if (size == 0 || size > kArenaHeapBytes || size % kPage != 0) return false;
  if (mprotect_size < size || mprotect_size > kArenaHeapBytes) return false;
  if (prev % kArenaHeapBytes != 0) return false;
  uintptr_t in_heap = ar_ptr % kArenaHeapBytes;
  if (ar_ptr % sizeof(uintptr_t) != 0 || in_heap < 5 * sizeof(uintptr_t) || in_heap > 128) {
    return false;
  }
  // The first heap of an arena holds the arena itself.
  return prev != 0 || ar_ptr - in_heap == h;
}

struct Hole {
  uintptr_t lo;
  uintptr_t hi;
};

class MappingRoots {
 public:
  MappingRoots(LeakClassifier* classifier, const MemoryMap* map, const LeakSnapshot* snap)
      : classifier_(classifier), map_(map), snap_(snap), starts_(snap->starts) {}
  ~MappingRoots() {
    if (holes_ != nullptr) PageFree(holes_, hole_bytes_);
    if (buffer_ != nullptr) PageFree(buffer_, kCopyBytes);
  }

  // Pages of private anonymous mappings found never written and not read.
  uint64_t pages_skipped() const { return pages_.pages_skipped(); }

  // Memory first (PageAlloc registers it, so it is excluded too), then a
  // copy of heapsight's own regions; false if memory ran out.
  bool Init(size_t extra_holes) {
    // Some of heapsight's own memory is not in the registry: scanning the
    // mappings would take its bookkeeping for the program's pointers.
    if (OwnRegionsOverflowed()) return false;
    buffer_ = static_cast<uintptr_t*>(PageAlloc(kCopyBytes));
    size_t own = CopyOwnRegions(nullptr, 0) + 64;  // + the hole array itself
    // Per mapping at most one dead stack plus its arena heaps (one per
    // 64 MiB): twice the mappings is plenty.
    hole_capacity_ = own + extra_holes + 2 * map_->count + 64;
    hole_bytes_ = hole_capacity_ * sizeof(Hole);
    holes_ = static_cast<Hole*>(PageAlloc(hole_bytes_));
    if (buffer_ == nullptr || holes_ == nullptr) return false;
    static_assert(sizeof(OwnRegion) == sizeof(Hole));
    size_t n = CopyOwnRegions(reinterpret_cast<OwnRegion*>(holes_), own);
    hole_count_ = n < own ? n : own;
    return true;
  }

  void Exclude(uintptr_t lo, uintptr_t hi) {
    if (hi > lo && hole_count_ < hole_capacity_) holes_[hole_count_++] = Hole{lo, hi};
  }

  // The mapping holding a thread's stack pointer: its part from the stack
  // pointer up was scanned as the stack, the part below is dead.
  void ExcludeStackOf(uintptr_t sp) {
    if (classifier_->Find(sp) != SIZE_MAX) return;  // a stack inside a heap block
    const Vma* v = map_->Find(sp);
    if (v != nullptr) Exclude(v->start, v->end);
  }

  // Threads whose stacks were scanned (their thread pointers), and how far
  // below a thread pointer the static TLS blocks reach.
  void SetThreads(uintptr_t self_tp, const ThreadCapture* capture, uintptr_t tls_below) {
    self_tp_ = self_tp;
    capture_ = capture;
    tls_below_ = tls_below;
  }

  // Scans every readable, writable mapping outside the holes. Returns the
  // bytes scanned.
  uint64_t Scan() {
    for (size_t i = 0; i < map_->count; ++i) {
      const Vma& v = map_->vmas[i];
      if (!v.readable || !v.writable || v.brk_heap || v.device || v.file_backed) continue;
      for (uintptr_t h = (v.start + kArenaHeapBytes - 1) & ~(kArenaHeapBytes - 1); h < v.end;
           h += kArenaHeapBytes) {
        uintptr_t w[5];
        if (h + sizeof w <= v.end && SafeRead(h, w, sizeof w) && IsArenaHeap(h, w)) {
          Exclude(h, h + kArenaHeapBytes);
        }
      }
      ExcludeDeadStack(v);
    }
    MergeHoles();
    for (size_t i = 0; i < map_->count; ++i) {
      const Vma& v = map_->vmas[i];
      if (!v.readable || !v.writable || v.brk_heap || v.device) continue;
      ScanVma(v);
    }
    return bytes_;
  }

 private:
  bool LiveThread(uintptr_t tp) const {
    if (tp == self_tp_) return true;
    for (size_t t = 0; capture_ != nullptr && t < capture_->count; ++t) {
      if (capture_->threads[t].tp == tp) return true;
    }
    return false;
  }

  // glibc keeps the stacks of exited threads for reuse; their thread
  // control block (struct pthread, 64-byte aligned near the top of the
  // mapping, its first and third words pointing to itself) and static TLS
  // are still memory memcheck scans (the DTV hangs off it), but the dead
  // frames below are not: memcheck stopped seeing them when the thread's
  // stack pointer moved up. So such a mapping is scanned from its lowest
  // static TLS block up.
  void ExcludeDeadStack(const Vma& v) {
    constexpr uintptr_t kSearch = 16 << 10;
    static_assert(kSearch <= kCopyBytes);
    uintptr_t floor = v.end - v.start > kSearch ? v.end - kSearch : v.start;
    if (!SafeRead(floor, buffer_, v.end - floor)) return;
    for (uintptr_t at = (v.end - 64) & ~uintptr_t{63}; at >= floor; at -= 64) {
      const uintptr_t* w = buffer_ + (at - floor) / sizeof(uintptr_t);
      if (w[0] != at || w[2] != at) continue;
      if (LiveThread(at)) return;
      uintptr_t lo = at - tls_below_ > v.start && at > tls_below_ ? at - tls_below_ : v.start;
      Exclude(v.start, lo & ~uintptr_t{63});
      return;
    }
  }

  // The holes sorted and merged into disjoint ranges.
  void MergeHoles() {
    std::sort(holes_, holes_ + hole_count_,
              [](const Hole& x, const Hole& y) { return x.lo < y.lo; });
    size_t out = 0;
    for (size_t i = 0; i < hole_count_; ++i) {
      if (out > 0 && holes_[i].lo <= holes_[out - 1].hi) {
        if (holes_[i].hi > holes_[out - 1].hi) holes_[out - 1].hi = holes_[i].hi;
      } else {
        holes_[out++] = holes_[i];
      }
    }
    hole_count_ = out;
  }

  // The mapping minus the holes, piece by piece. A mapping in which the
  // allocator keeps blocks that it did not mmap one by one is one of its
  // heaps and is skipped whole (so the first pass only checks).
  void ScanVma(const Vma& v) {
    if (!ForEachPiece(v, /*scan=*/false)) return;
    ForEachPiece(v, /*scan=*/true);
  }

  bool ForEachPiece(const Vma& v, bool scan) {
    // First hole ending after the mapping's start.
    size_t a = 0, b = hole_count_;
    while (a < b) {
      size_t mid = a + (b - a) / 2;
      if (holes_[mid].hi <= v.start) {
        a = mid + 1;
      } else {
        b = mid;
      }
    }
    uintptr_t lo = v.start;
    for (size_t h = a; lo < v.end; ++h) {
      uintptr_t hi = h < hole_count_ && holes_[h].lo < v.end ? holes_[h].lo : v.end;
      if (hi > lo && !Piece(v, lo, hi, scan)) return false;
      if (h >= hole_count_ || holes_[h].lo >= v.end) break;
      if (holes_[h].hi > lo) lo = holes_[h].hi;
    }
    return true;
  }

  // The mapping of an mmap'ed glibc chunk holding live block i:
  // [chunk - prev_size, chunk + size) where the chunk header is the two
  // words before the block and its size field has IS_MMAPPED (2) set.
  bool MmappedChunk(size_t i, uintptr_t* lo, uintptr_t* hi) {
    uintptr_t s = starts_[i];
    uintptr_t header[2];
    if (s < sizeof header || !SafeRead(s - sizeof header, header, sizeof header)) return false;
    uintptr_t prev = header[0], size_field = header[1];
    if ((size_field & 2) == 0) return false;
    uintptr_t size = size_field & ~uintptr_t{7};
    uintptr_t chunk = s - 2 * sizeof(uintptr_t);
    if (prev > chunk || (chunk - prev) % kPage != 0 || (prev + size) % kPage != 0) return false;
    if (chunk + size < s + snap_->sizes[i]) return false;
    *lo = chunk - prev;
    *hi = chunk + size;
    return true;
  }

  // One piece of a mapping: live blocks in it must be mmap'ed chunks (the
  // gaps between them are scanned); a block of any other kind makes the
  // mapping an allocator heap (false).
  bool Piece(const Vma& v, uintptr_t lo, uintptr_t hi, bool scan) {
    size_t count = classifier_->count();
    // First block whose chunk could reach into [lo, hi): the last block
    // starting before lo may be an mmap'ed chunk straddling lo.
    size_t a = 0, b = count;
    while (a < b) {
      size_t mid = a + (b - a) / 2;
      if (starts_[mid] < lo) {
        a = mid + 1;
      } else {
        b = mid;
      }
    }
    size_t i = a > 0 ? a - 1 : 0;
    uintptr_t pos = lo;
    for (; i < count && starts_[i] < hi + 2 * sizeof(uintptr_t); ++i) {
      uintptr_t s = starts_[i];
      uintptr_t e = s + snap_->sizes[i];
      if (e <= lo && s < lo) continue;
      uintptr_t clo, chi;
      if (!MmappedChunk(i, &clo, &chi)) {
        // A stale internal entry (freed around us) says nothing about the
        // mapping now at its address.
        if (snap_->internal(i) || s >= hi) continue;
        return false;
      }
      if (chi <= lo || clo >= hi) continue;
      if (scan && clo > pos) CopyUsed(v, pos, clo);
      if (chi > pos) pos = chi;
    }
    if (scan && pos < hi) CopyUsed(v, pos, hi);
    return true;
  }

  // Copy of [lo, hi) but, in private anonymous memory, the pages never
  // written (page_residency.h): a thread's stack reserve, an arena's
  // untouched tail, a reserved buffer.
  void CopyUsed(const Vma& v, uintptr_t lo, uintptr_t hi) {
    if (!v.PrivateAnonymous()) {
      Copy(v, lo, hi);
      return;
    }
    pages_.ForEachUsedRun(lo, hi, [&](uintptr_t a, uintptr_t b) { Copy(v, a, b); });
  }

  // Copies n bytes at `address` without faulting: process_vm_readv, or a
  // plain copy when that is not available and the map says the range is
  // readable.
  bool SafeRead(uintptr_t address, void* out, size_t n) {
    if (readv_works_) {
      iovec local{out, n};
      iovec remote{reinterpret_cast<void*>(address), n};
      ssize_t got = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
      if (got == static_cast<ssize_t>(n)) return true;
      if (got >= 0 || (errno != ENOSYS && errno != EPERM)) return false;
      readv_works_ = false;
    }
    if (!map_->Readable(address, address + n)) return false;
    std::memcpy(out, reinterpret_cast<const void*>(address), n);
    return true;
  }

  // Reads [lo, hi) through process_vm_readv into the buffer: a mapping of
  // a truncated file (SIGBUS), or one that changed since the map was read,
  // makes the read fail instead of killing the process. Without the system
  // call (seccomp, old kernel) only private anonymous memory is read
  // directly.
  void Copy(const Vma& v, uintptr_t lo, uintptr_t hi) {
    lo = (lo + sizeof(uintptr_t) - 1) & ~(sizeof(uintptr_t) - 1);
    hi &= ~(sizeof(uintptr_t) - 1);
    while (lo < hi) {
      size_t n = hi - lo < kCopyBytes ? hi - lo : kCopyBytes;
      if (!readv_works_) {
        if (v.file_backed || v.shared) return;
        bytes_ += hi - lo;
        classifier_->ScanRange(lo, hi);
        return;
      }
      iovec local{buffer_, n};
      iovec remote{reinterpret_cast<void*>(lo), n};
      ssize_t got = process_vm_readv(pid_, &local, 1, &remote, 1, 0);
      if (got < 0) {
        if (errno == ENOSYS || errno == EPERM) {
          readv_works_ = false;
          continue;
        }
        // This page is unreadable; go on with the next one.
        lo = (lo & ~(kPage - 1)) + kPage;
        continue;
      }
      size_t words = static_cast<size_t>(got) / sizeof(uintptr_t);
      if (words == 0) {
        lo = (lo & ~(kPage - 1)) + kPage;
        continue;
      }
      bytes_ += words * sizeof(uintptr_t);
      classifier_->ScanCopiedWords(buffer_, words);
      lo += words * sizeof(uintptr_t);
    }
  }

  LeakClassifier* classifier_;
  const MemoryMap* map_;
  const LeakSnapshot* snap_;
  const uintptr_t* starts_;
  Hole* holes_ = nullptr;
  size_t hole_count_ = 0;
  size_t hole_capacity_ = 0;
  size_t hole_bytes_ = 0;
  uintptr_t* buffer_ = nullptr;
  pid_t pid_ = getpid();
  uintptr_t self_tp_ = 0;
  const ThreadCapture* capture_ = nullptr;
  uintptr_t tls_below_ = 0;
  bool readv_works_ = true;
  uint64_t bytes_ = 0;
  PageResidency pages_;
};

// The blocks of one class, by name (leak_snapshot.h: an id, or with
// address frees an address), ascending in address order (ids in that
// order are not: the encoding's deltas are signed).
uint64_t PutClasses(ThreadState* ts, uint64_t scan, LeakClass leak_class,
                    const LeakSnapshot& snap, const LeakClassifier& classifier, uint64_t now) {
  constexpr size_t kBatch = 1024;
  uint64_t ids[kBatch];
  // Compact frees (HEAPSIGHT_COMPACT_FREES): the analyzer's live blocks are
  // interchangeable within a stack and size, not these exact ids, so each
  // block's stack and size go with its id (trace_format.h).
  uint64_t stacks[kBatch];
  uint64_t sizes[kBatch];
  const bool compact = g_options.COMPACT_FREES && snap.entries != nullptr;
  size_t n = 0;
  uint64_t written = 0;
  auto flush = [&]() {
    if (n == 0) return;
    AppendRecord(ts, now, &format::ChunkEncoder::PutBlockClasses, scan, leak_class, ids, n,
                 compact ? stacks : nullptr, compact ? sizes : nullptr);
    written += n;
    n = 0;
  };
  for (size_t i = 0; i < snap.count; ++i) {
    if (snap.internal(i) || classifier.ClassOf(i) != leak_class) continue;
    if (compact) {
      stacks[n] = snap.entries[i].stack;
      sizes[n] = snap.entries[i].recorded_size;
    }
    ids[n++] = snap.name(i);
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
  // The scan's own memory: PageAlloc's mapped bytes, sampled where the
  // most is mapped (every structure alive).
  const size_t mapped_before = PageBytesMapped();
  size_t mapped_most = mapped_before;
  auto sample_memory = [&]() {
    if (size_t now_mapped = PageBytesMapped(); now_mapped > mapped_most) mapped_most = now_mapped;
  };
  uintptr_t self_tp = CurrentThreadPointer();
  ModuleRoots modules;
  if (!CollectModuleRoots(reinterpret_cast<uintptr_t>(&RunLeakScan), self_tp, &modules)) {
    return false;
  }
  ThreadCapture capture;
  uint64_t stop_start_ns = MonotonicNs();
  bool stopped = StopOtherThreads(static_cast<int>(g_options.LEAK_SCAN_SIGNAL),
                                  kStopTimeoutMs, &capture);
  uint64_t stop_ns = MonotonicNs() - stop_start_ns;
  if (!stopped) {
    // Other threads run and cannot be stopped (every real-time signal is
    // taken, or no memory): reading the heap under them could fault on a
    // block they unmap. No scan; the blocks stay "not freed".
    FreeModuleRoots(&modules);
    return false;
  }
  // From here until ResumeOtherThreads: no malloc, no locks.
  MemoryMap map;
  LeakSnapshot snap;
  uint64_t snapshot_start_ns = MonotonicNs();
  bool ok = ReadMemoryMap(&map) && TakeLeakSnapshot(g_address_frees, map, &snap);
  uint64_t snapshot_ns = MonotonicNs() - snapshot_start_ns;
  LeakClassifier classifier;
  const uintptr_t* starts = snap.starts;
  const uint64_t* sizes = snap.sizes;
  HookContext hook_context{&map, &snap};
  uint64_t root_bytes = 0;
  uint64_t root_pages_skipped = 0;
  if (ok) {
    LeakClassifier::Hooks hooks;
    hooks.usable_size = UsableSize;
    hooks.is_vtable = LooksLikeVtable;
    if (snap.entries == nullptr) hooks.min_request = MinRequest;
    hooks.ctx = &hook_context;
    ok = classifier.Init(starts, sizes, snap.count, hooks);
  }
  if (ok) {
    for (size_t i = 0; i < snap.count; ++i) {
      uintptr_t lo = starts[i], hi = lo + sizes[i];
      const Vma* v = map.Find(lo);
      bool readable = v != nullptr && v->readable && hi <= v->end;
      if (!readable && !map.Readable(lo, hi)) {
        classifier.SetUnreadable(i);
      } else if (readable && sizes[i] >= PageResidency::kMinBytes && v->PrivateAnonymous()) {
        // Every allocator block lives in such memory; the check is for a
        // block whose mapping was replaced (a stale internal entry).
        classifier.SetAnonymous(i);
      }
    }
    RootScanner roots{&classifier, &map, &snap};
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
    // Every other writable mapping (memcheck's root set); see MappingRoots.
    {
      int saved_errno = errno;
      MappingRoots mappings(&classifier, &map, &snap);
      size_t extra = modules.range_count + ModuleRoots::kMaxSelfRanges + 2 * (capture.count + 1);
      if (mappings.Init(extra)) {
        // Exactly the segments scanned above: the rest of their mappings'
        // pages is memory memcheck scans too. ld.so's early allocations
        // (the main program's link_map and its search list among them)
        // are carved from the page after ld.so's bss end.
        for (size_t i = 0; i < modules.range_count; ++i) {
          mappings.Exclude(modules.ranges[i].lo, modules.ranges[i].hi);
        }
        for (size_t i = 0; i < modules.self_range_count; ++i) {
          mappings.Exclude(modules.self_ranges[i].lo, modules.self_ranges[i].hi);
        }
        auto exclude_self_tls = [&](uintptr_t tp) {
          if (tp == 0 || modules.self_tls.size == 0) return;
          uintptr_t lo = tp - modules.self_tls.offset;
          mappings.Exclude(lo, lo + modules.self_tls.size);
        };
        uintptr_t tls_below = modules.self_tls.offset;
        for (size_t i = 0; i < modules.tls_count; ++i) {
          if (modules.tls[i].offset > tls_below) tls_below = modules.tls[i].offset;
        }
        mappings.SetThreads(self_tp, &capture, tls_below);
        mappings.ExcludeStackOf(caller_frame);
        exclude_self_tls(self_tp);
        for (size_t t = 0; t < capture.count; ++t) {
          const CapturedThread& th = capture.threads[t];
          if (th.sp_known) mappings.ExcludeStackOf(th.sp);
          exclude_self_tls(th.tp);
        }
        sample_memory();
        roots.root_bytes += mappings.Scan();
        root_pages_skipped = mappings.pages_skipped();
      }
      errno = saved_errno;
    }
    classifier.Finish();
    root_bytes = roots.root_bytes;
  }
  sample_memory();
  uint64_t threads_stopped = capture.stopped;
  uint64_t threads_missed = capture.missed;
  uint64_t threads_not_signalled = capture.not_signalled;
  ResumeOtherThreads(&capture);
  FreeMemoryMap(&map);
  FreeModuleRoots(&modules);

  bool written = false;
  if (ok) {
    uint64_t blocks[format::kLeakClassCount] = {}, bytes[format::kLeakClassCount] = {};
    uint64_t program_blocks = 0;
    for (size_t i = 0; i < snap.count; ++i) {
      if (snap.internal(i)) continue;
      int c = static_cast<int>(classifier.ClassOf(i)) - 1;
      ++blocks[c];
      bytes[c] += sizes[i];
      ++program_blocks;
    }
    uint64_t now = NowUs();
    uint64_t duration_us = (MonotonicNs() - t0_ns) / 1000;
    uint64_t scan = g_scan_number.fetch_add(1) + 1;
    if (g_options.STATS) {
      LeakScanStats stats;
      stats.scan = scan;
      stats.blocks = snap.count;
      stats.pending_skipped = snap.pending_skipped;
      stats.duration_us = duration_us;
      stats.snapshot_us = snapshot_ns / 1000;
      stats.snapshot_bytes = snap.bytes;
      stats.peak_bytes = mapped_most - mapped_before;
      stats.words_scanned = classifier.words_scanned();
      stats.pages_skipped = classifier.pages_skipped() + root_pages_skipped;
      stats.threads_stopped = threads_stopped;
      stats.threads_missed = threads_missed;
      stats.threads_not_signalled = threads_not_signalled;
      stats.stop_us = stop_ns / 1000;
      stats.words_searched = classifier.words_searched();
      LogScanStats(stats);
    }
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
  FreeLeakSnapshot(&snap);
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
