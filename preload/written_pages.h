// preload/written_pages.h: a thread's private tables are first touched by a
// write, never by a read.
//
// Why. The per-thread caches (unwind cache, its rule table and edge cache,
// the stack cache) are zero-filled anonymous memory (PageAlloc), and a
// lookup reads a slot before the miss path writes it. A read of a page no
// one has touched maps the kernel's shared zero page; the write that
// follows faults again (a write-protect fault), gets a page of its own and
// flushes the old translation from the TLB of every CPU that runs a thread
// of the process: an inter-processor interrupt per page in a multi-threaded
// program. 200 threads of 40 allocations each spent 30% of their traced
// run there (thr27/wp27, docs/performance.md). A store, or any
// read-modify-write, to an untouched page faults in a page of its own at
// once, with nothing to flush.
//
// So memory that a thread's lookups read first is written first: at once
// where every thread uses it (WriteTouchRange: the unwind cache's entry
// records, frame index and counters when its warm-up ends, the stack
// cache's counters when it is mapped; the big rule table is populated when
// mapped), or page by page where a thread may use a few pages of a hashed
// table (WrittenPages: one bit per 4 KiB; the first time a page is about to
// be read, an OR of zero writes it and leaves its bytes as they are). The
// bit test costs alloc_bench --recursive 2.1% more instructions (two
// lookups a stepped frame); writing the hashed tables whole instead cost
// 58 KiB more a thread.
//
// Constraints: no malloc, no locks, no system calls (the fault is the
// kernel's); owner thread only (the bits are plain words);
// async-signal-safe as far as the owner's use of the table is.
#ifndef HEAPSIGHT_PRELOAD_WRITTEN_PAGES_H_
#define HEAPSIGHT_PRELOAD_WRITTEN_PAGES_H_

#include <cstddef>
#include <cstdint>

namespace heapsight::preload {

// 4 KiB: the smallest page, so every page of any size gets its write.
inline constexpr size_t kWrittenPageBytes = 4096;

// Writes the byte at `p` without changing it: a read-modify-write, which
// faults as a write on an untouched page (a plain load first would map the
// zero page). An instruction the compiler cannot drop; not a locked one
// (the tables are their owner's alone).
inline void WriteTouch(void* p) {
#if defined(__x86_64__)
  asm volatile("orb $0, %0" : "+m"(*static_cast<unsigned char*>(p)));
#else
  __atomic_fetch_or(static_cast<unsigned char*>(p), static_cast<unsigned char>(0),
                    __ATOMIC_RELAXED);
#endif
}

// WriteTouch on every page of [p, p + bytes).
inline void WriteTouchRange(void* p, size_t bytes) {
  auto* c = static_cast<unsigned char*>(p);
  auto begin = reinterpret_cast<uintptr_t>(c);
  for (uintptr_t a = begin & ~uintptr_t{kWrittenPageBytes - 1}; a < begin + bytes;
       a += kWrittenPageBytes) {
    WriteTouch(c + (a < begin ? 0 : a - begin));
  }
}

// One bit per 4 KiB of a table of `kBytes` bytes: set once the page has
// been written through BeforeRead. Zero-filled = no page written.
template <size_t kBytes>
class WrittenPages {
 public:
  static constexpr size_t kPages = (kBytes + kWrittenPageBytes - 1) / kWrittenPageBytes + 1;

  // Call before reading `p`, which lies in the table that starts at `base`:
  // the first time, writes its page. About 10 instructions while some page
  // is unwritten; a load and a branch once every page is (kPages counts one
  // more page than a page-aligned table has: a table need not start on a
  // page).
  void BeforeRead(const void* base, void* p) {
    if (__builtin_expect(all_, 1)) return;
    size_t page = ((reinterpret_cast<uintptr_t>(p) & ~uintptr_t{kWrittenPageBytes - 1}) -
                   (reinterpret_cast<uintptr_t>(base) & ~uintptr_t{kWrittenPageBytes - 1})) /
                  kWrittenPageBytes;
    uint64_t bit = uint64_t{1} << (page % 64);
    uint64_t& word = bits_[page / 64];
    if ((word & bit) != 0) return;
    word |= bit;
    WriteTouch(p);
    // kPages counts one page more than a page-aligned table has (a table
    // that starts inside a page may touch one page more; if that one is
    // left unwritten, its first read only costs the fault this avoids).
    all_ = ++written_ >= kPages - 1;
  }
 private:
  uint64_t bits_[(kPages + 63) / 64];
  uint32_t written_;  // bits set
  bool all_;          // every page written: no more checks
};

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_WRITTEN_PAGES_H_
