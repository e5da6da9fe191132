// preload/leak_scan.h: memcheck's leak classification over a set of heap
// blocks: a conservative mark phase from root memory, then "cliques" of
// unreached blocks (definitely vs indirectly lost).
//
// The caller supplies the live blocks sorted by start address and feeds the
// roots (memory ranges and single words such as saved registers); the
// classifier flood-fills through the blocks, one aligned word at a time,
// with an explicit mark stack (no recursion). Rules, as in Valgrind's
// mc_leakcheck.c:
//  - a word that points into a block (its start, or anywhere inside it; a
//    zero-size block only at its start) is a pointer to that block;
//  - from a root or a still-reachable block ("definite" source), a pointer to
//    the start makes the block still reachable; an interior pointer makes it
//    possibly lost unless one of memcheck's default heuristics explains it
//    (new[] cookie, length64, std::string, multiple inheritance), in which
//    case it is still reachable;
//  - from a possibly-lost block every pointer only makes its target
//    possibly lost;
//  - then, in address order, every block still unreached is the leader of a
//    clique: every unreached block reachable from it (through any pointer)
//    is indirectly lost; a leader that no other clique absorbs is definitely
//    lost (in a lost cycle the lowest-addressed block is the definite one).
//
// Constraints: never calls malloc (state from PageAlloc); no locks; reads
// every block's memory, so blocks must be readable (mark the others with
// SetUnreadable) and must not be freed while the classifier runs. Not
// async-signal-safe (mmap). Usable in unit tests on synthetic blocks.
#ifndef HEAPSIGHT_PRELOAD_LEAK_SCAN_H_
#define HEAPSIGHT_PRELOAD_LEAK_SCAN_H_

#include <cstddef>
#include <cstdint>

#include "format/trace_format.h"
#include "preload/page_residency.h"

namespace heapsight::preload {

class LeakClassifier {
 public:
  // Optional helpers, may be null:
  //  usable_size(start): the allocator's usable size of a block; used to
  //   ignore pointers to the *next* heap chunk's header (glibc's arena bins
  //   and top pointer), which can fall inside the last 8 bytes of a block.
  //  is_vtable(addr): true if addr looks like a C++ vtable address (for the
  //   multiple-inheritance heuristic).
  //  min_request(index, ctx): address frees (HEAPSIGHT_PAIRING=address)
  //   know no block's requested size, only its extent (the allocator's
  //   usable size, which `sizes` then holds): the smallest size the program
  //   may have asked for. The heuristics that test a block's exact size
  //   (stdstring, length64, newarray) then accept any size in
  //   [min_request, size]. Null: `sizes` are the sizes asked for.
  struct Hooks {
    size_t (*usable_size)(uintptr_t start) = nullptr;
    bool (*is_vtable)(uintptr_t addr, void* ctx) = nullptr;
    uint64_t (*min_request)(size_t index, void* ctx) = nullptr;
    void* ctx = nullptr;
  };

  LeakClassifier() = default;
  ~LeakClassifier();
  LeakClassifier(const LeakClassifier&) = delete;
  LeakClassifier& operator=(const LeakClassifier&) = delete;

  // `starts` must be sorted ascending and blocks must not overlap; both
  // arrays must outlive the classifier. False if memory ran out.
  bool Init(const uintptr_t* starts, const uint64_t* sizes, size_t count, const Hooks& hooks);

  // A block whose contents must not be read (unmapped or protected pages).
  void SetUnreadable(size_t index);
  // A block in private anonymous memory: its pages that were never written
  // read as zeros, and a large block's are skipped (page_residency.h).
  void SetAnonymous(size_t index);

  // Roots. ScanRange reads the aligned words of [lo, hi); the caller
  // guarantees the range is readable.
  void ScanRange(uintptr_t lo, uintptr_t hi);
  void ScanWord(uintptr_t word);
  // A root whose words were copied out of the process's memory (a safe read
  // of a mapping that might fault): scans words[0, n).
  void ScanCopiedWords(const uintptr_t* words, size_t n);
  // Treats the block as a root (still reachable, contents scanned).
  void MarkReachable(size_t index);

  // Runs the rest of the mark phase and the clique phase. Call once, after
  // every root. Closes the pagemap it read (page_residency.h).
  void Finish();

  format::LeakClass ClassOf(size_t index) const;
  size_t count() const { return count_; }
  // Index of the block containing `address`, or SIZE_MAX.
  size_t Find(uintptr_t address) const;

  // Pages of anonymous blocks found never written and not read
  // (page_residency.h), for the scan summary.
  uint64_t pages_skipped() const { return pages_.pages_skipped(); }
  // Words looked at (roots + blocks), for the scan summary / benchmark.
  uint64_t words_scanned() const { return words_scanned_; }
  // Of those, the words the granule filter let through to the block search
  // (Find); the others cost a compare or two and one filter bit.
  uint64_t words_searched() const { return words_searched_; }

 private:
  enum State : uint8_t { kUnreached = 0, kPossible = 1, kReachable = 2, kIndirect = 3 };

  void Push(uint32_t index);
  void Drain(int64_t clique);
  void ScanWords(uintptr_t lo, uintptr_t hi, bool prior_definite, int64_t clique);
  // ScanWords of a block's [lo, hi) but its pages never written.
  void ScanUsedPages(uintptr_t lo, uintptr_t hi, bool prior_definite, int64_t clique);
  void ScanSpan(const uintptr_t* p, const uintptr_t* end, bool prior_definite, int64_t clique);
  void Visit(uintptr_t word, bool prior_definite, int64_t clique);
  bool Heuristic(size_t index, uintptr_t ptr) const;
  bool BuildGranuleFilter();
  // False: no block overlaps w's granule (w cannot point into a block).
  static bool FilterHas(const uint64_t* filter, int shift, uintptr_t w) {
    uint64_t bit = ((w >> kGranuleShift) * kGranuleMix) >> shift;
    return ((filter[bit >> 6] >> (bit & 63)) & 1) != 0;
  }
  bool MayHoldBlock(uintptr_t w) const { return FilterHas(filter_, filter_shift_, w); }
  bool IsNextChunkHeader(size_t index, uintptr_t ptr) const;

  const uintptr_t* starts_ = nullptr;
  const uint64_t* sizes_ = nullptr;
  size_t count_ = 0;
  uintptr_t min_ = 0;
  uintptr_t max_ = 0;  // exclusive
  uint8_t* state_ = nullptr;
  // Per block: kUnreadable, kAnonymous (SetUnreadable, SetAnonymous).
  uint8_t* unreadable_ = nullptr;
  static constexpr uint8_t kUnreadable = 1, kAnonymous = 2;
  PageResidency pages_;
  uint32_t* stack_ = nullptr;
  size_t stack_size_ = 0;
  size_t stack_capacity_ = 0;
  size_t state_bytes_ = 0;
  size_t stack_bytes_ = 0;
  Hooks hooks_;
  uint64_t words_scanned_ = 0;
  uint64_t words_searched_ = 0;

  // The granule filter: one bit per hashed 64 KiB granule that some block
  // overlaps (a Bloom filter with one hash). Most words of a large root set that
  // fall between the lowest block and the highest block end point
  // elsewhere (another allocator's pages, code, the stacks between two
  // mmap'ed chunks); without it each costs a binary search over every block.
  static constexpr int kGranuleShift = 16;
  static constexpr uint64_t kGranuleMix = 0x9e3779b97f4a7c15u;
  uint64_t* filter_ = nullptr;  // 2^(64 - filter_shift_) bits
  size_t filter_bytes_ = 0;
  int filter_shift_ = 64;

  // Every kFenceStride-th block start, so that Find's first steps stay in a
  // table small enough for the L1 cache (6.4 KB for 51,000 blocks) and its
  // last ones within kFenceStride neighbouring starts, instead of touching
  // a cache line of the whole array at every step.
  static constexpr size_t kFenceStride = 64;
  uintptr_t* fences_ = nullptr;
  size_t fence_count_ = 0;
  size_t fence_bytes_ = 0;
};

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_LEAK_SCAN_H_
