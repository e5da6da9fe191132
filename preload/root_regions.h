// preload/root_regions.h: where a leak scan looks for pointers, besides
// the heap: the process's memory map (/proc/self/maps, read raw), the
// writable PT_LOAD segments of every loaded module except libheapsight.so,
// and the static-TLS layout (each module's TLS block offset from the thread
// pointer, the same in every thread).
//
// Constraints: no malloc (PageAlloc). CollectModuleRoots calls
// dl_iterate_phdr, which takes the loader lock: call it before other threads
// are stopped. ReadMemoryMap uses only open/read/close and may run while
// other threads are stopped. Not async-signal-safe.
#ifndef HEAPSIGHT_PRELOAD_ROOT_REGIONS_H_
#define HEAPSIGHT_PRELOAD_ROOT_REGIONS_H_

#include <cstddef>
#include <cstdint>

namespace heapsight::preload {

struct Vma {
  uintptr_t start = 0;
  uintptr_t end = 0;
  bool readable = false;
  bool writable = false;
  bool executable = false;
  bool file_backed = false;
  bool shared = false;
  // "[heap]": the brk area, glibc's main arena.
  bool brk_heap = false;
  // A character or block device other than /dev/zero (memcheck does not
  // read those: reading device memory may hang or have side effects).
  // /dev/zero, "/dev/zero (deleted)" (MAP_SHARED|MAP_ANONYMOUS) and files
  // under /dev/shm are ordinary memory.
  bool device = false;

  // Private anonymous memory: a page of it never written reads as zeros
  // (page_residency.h). A file mapping's page not yet faulted in reads the
  // file; a shared or device mapping's may be written by others.
  bool PrivateAnonymous() const { return !file_backed && !shared && !device; }
};

struct MemoryMap {
  Vma* vmas = nullptr;  // sorted by start, disjoint
  size_t count = 0;
  size_t bytes = 0;

  // The mapping containing `address`, or nullptr.
  const Vma* Find(uintptr_t address) const;
  // Calls fn(lo, hi) for every readable piece of [lo, hi).
  template <typename Fn>
  void ForEachReadable(uintptr_t lo, uintptr_t hi, Fn fn) const {
    while (lo < hi) {
      const Vma* v = Find(lo);
      if (v == nullptr) {
        // Skip to the next mapping above lo.
        const Vma* next = nullptr;
        for (size_t i = 0; i < count; ++i) {
          if (vmas[i].start > lo) {
            next = &vmas[i];
            break;
          }
        }
        if (next == nullptr) return;
        lo = next->start;
        continue;
      }
      uintptr_t piece_end = v->end < hi ? v->end : hi;
      if (v->readable) fn(lo, piece_end);
      lo = piece_end;
    }
  }
  // True if all of [lo, hi) is mapped readable.
  bool Readable(uintptr_t lo, uintptr_t hi) const;
};

bool ReadMemoryMap(MemoryMap* out);
void FreeMemoryMap(MemoryMap* map);

struct AddressRange {
  uintptr_t lo = 0;
  uintptr_t hi = 0;
};

struct TlsModule {
  uintptr_t offset = 0;  // block = thread pointer - offset (x86-64 TLS variant II)
  uint64_t size = 0;     // PT_TLS p_memsz
};

struct ModuleRoots {
  static constexpr size_t kMaxRanges = 4096;
  static constexpr size_t kMaxTls = 512;
  AddressRange* ranges = nullptr;  // writable PT_LOAD segments
  size_t range_count = 0;
  TlsModule* tls = nullptr;        // modules with static TLS
  size_t tls_count = 0;
  // libheapsight.so's own writable segments and static TLS block: never
  // roots (its data holds the program's addresses only as heapsight's
  // bookkeeping).
  static constexpr size_t kMaxSelfRanges = 8;
  AddressRange self_ranges[kMaxSelfRanges];
  size_t self_range_count = 0;
  TlsModule self_tls;
  size_t bytes = 0;
};

// `self` is any address inside libheapsight.so (its segments are skipped);
// `thread_pointer` is the calling thread's.
bool CollectModuleRoots(uintptr_t self, uintptr_t thread_pointer, ModuleRoots* out);
void FreeModuleRoots(ModuleRoots* roots);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_ROOT_REGIONS_H_
