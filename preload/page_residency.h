// preload/page_residency.h: which pages of a private anonymous range may
// hold something other than zeros, from /proc/self/pagemap.
//
// The leak scan reads every word of every live block and of every writable
// mapping. A page of private anonymous memory that was never written (or
// was given back with MADV_DONTNEED) reads as zeros, and zeros point
// nowhere; reading it anyway faults in the zero page and scans 512 words
// for nothing. A program's large blocks are often mostly such pages: sort's
// 8 MiB buffer, a reserved vector, a calloc'd table, a thread stack. The
// pagemap entry of a page says whether it is present (bit 63) or swapped
// out (bit 62); a page that is neither has never been written since it was
// last discarded, so its words are zero. A swapped page is NOT skipped: its
// words are on disk, not zero (mincore(2) cannot tell the two apart, which
// is why it is not used).
//
// Only for private anonymous memory: a page not yet faulted in from a file
// mapping reads the file, not zeros, and a shared mapping's page may be
// present in another process only. The caller checks the mapping.
//
// Without /proc/self/pagemap (a sandbox, no /proc), or with one that does
// not say the caller's own stack page is present (an emulated /proc), every
// page counts as used: the scan reads everything, as before.
//
// Constraints: no malloc, no locks, no loader calls (raw system calls:
// safe while other threads are stopped, and errno is untouched); not
// async-signal-safe only in that it keeps an fd open between calls. Not
// thread-safe: one per scan.
#ifndef HEAPSIGHT_PRELOAD_PAGE_RESIDENCY_H_
#define HEAPSIGHT_PRELOAD_PAGE_RESIDENCY_H_

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace heapsight::preload {

class PageResidency {
 public:
  // Ranges shorter than this are read whole: below it the pagemap read
  // (a system call) costs about what scanning the words would.
  static constexpr size_t kMinBytes = 256 << 10;

  PageResidency() = default;
  ~PageResidency();
  PageResidency(const PageResidency&) = delete;
  PageResidency& operator=(const PageResidency&) = delete;

  // Calls fn(lo', hi', ctx) for each maximal run of [lo, hi) whose pages
  // may hold non-zero words, in address order, clipped to [lo, hi). A range
  // of fewer than kMinBytes, or one the pagemap cannot answer for, is one
  // run: the whole range. Returns the bytes left out (known zero).
  uint64_t ForEachUsedRun(uintptr_t lo, uintptr_t hi, void (*fn)(uintptr_t, uintptr_t, void*),
                          void* ctx);
  // The same with any callable fn(lo', hi') (a lambda with captures).
  template <typename Fn>
  uint64_t ForEachUsedRun(uintptr_t lo, uintptr_t hi, Fn&& fn) {
    using Callable = std::remove_reference_t<Fn>;
    return ForEachUsedRun(
        lo, hi,
        [](uintptr_t a, uintptr_t b, void* ctx) { (*static_cast<Callable*>(ctx))(a, b); }, &fn);
  }

  // Closes the pagemap (the next call opens it again). For the leak scan,
  // before it lets the other threads run: an fd of ours open while the
  // program runs could be one a daemon's dup2 or close-all loop takes.
  void Close();

  // Pagemap entries read and pages found unused, over every call
  // (HEAPSIGHT_STATS, tests).
  uint64_t pages_checked() const { return pages_checked_; }
  uint64_t pages_skipped() const { return pages_skipped_; }

  // Bits of a pagemap entry (Documentation/admin-guide/mm/pagemap.rst).
  static constexpr uint64_t kPresent = uint64_t{1} << 63;
  static constexpr uint64_t kSwapped = uint64_t{1} << 62;

 private:
  // Opens the pagemap on first use; false if it cannot be read.
  bool Open();

  static constexpr int kUnopened = -2;
  int fd_ = kUnopened;
  uint64_t pages_checked_ = 0;
  uint64_t pages_skipped_ = 0;
};

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_PAGE_RESIDENCY_H_
