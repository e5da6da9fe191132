// analyzer/model/huge_page_allocator.h: an allocator for the analysis's
// large per-site arrays that asks the kernel to back them with transparent
// huge pages.
//
// The arrays indexed by site (ProcessProfile::sites, 128 bytes a site; the
// site timeline's state, 40) grow by doubling while the pass runs: each
// growth copies the array into fresh memory, and every 4 KiB page of it
// is a page fault when first written. On a cc1plus trace (93 k sites) the
// sites array alone cost about 8,000 of the run's 22,000 page faults (the
// copies and the first writes of new sites), on the analysis thread, at
// 1-3 us each (2026-12-06: `perf record -e page-faults`). Allocations of
// at least kMinBytes are aligned to a huge page and advised
// MADV_HUGEPAGE: where the kernel's THP setting is "madvise" or "always"
// a fault then maps 2 MiB at once; elsewhere the advice is ignored and
// nothing changes. Smaller ones (every small trace's arrays) are
// std::allocator's.
//
// Memory: the array's last huge page may be resident before the array
// reaches it (at most 2 MiB an array); address space as std::allocator's
// plus at most one huge page of alignment.
#ifndef HEAPSIGHT_ANALYZER_MODEL_HUGE_PAGE_ALLOCATOR_H_
#define HEAPSIGHT_ANALYZER_MODEL_HUGE_PAGE_ALLOCATOR_H_

#include <sys/mman.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>

namespace heapsight::analyzer {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

// Advises the huge pages wholly inside [begin, begin + bytes) (best
// effort: an error leaves the memory as it was).
inline void AdviseHugePages(void* begin, size_t bytes) {
  auto first = (reinterpret_cast<uintptr_t>(begin) + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  auto end = (reinterpret_cast<uintptr_t>(begin) + bytes) & ~(kHugePageBytes - 1);
  if (end > first) madvise(reinterpret_cast<void*>(first), end - first, MADV_HUGEPAGE);
}

template <typename T>
class HugePageAllocator {
 public:
  using value_type = T;
  // Smaller allocations go to std::allocator: below two huge pages the
  // faults saved are few and the alignment's cost relatively high.
  static constexpr size_t kMinBytes = 2 * kHugePageBytes;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) {}  // NOLINT: allocator rebinding

  T* allocate(size_t n) {
    if (n > std::numeric_limits<size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    const size_t bytes = n * sizeof(T);
    if (bytes < kMinBytes) return std::allocator<T>().allocate(n);
    void* p = nullptr;
    if (posix_memalign(&p, kHugePageBytes, bytes) != 0) throw std::bad_alloc();
    AdviseHugePages(p, bytes);
    return static_cast<T*>(p);
  }

  void deallocate(T* p, size_t n) {
    // n is the allocation's: the same choice as allocate's.
    if (n * sizeof(T) < kMinBytes) {
      std::allocator<T>().deallocate(p, n);
      return;
    }
    free(p);
  }

  template <typename U>
  bool operator==(const HugePageAllocator<U>&) const {
    return true;
  }
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_HUGE_PAGE_ALLOCATOR_H_
