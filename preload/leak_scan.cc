// preload/leak_scan.cc: see leak_scan.h.
//
// Constraints: no malloc (PageAlloc), no locks, no recursion.
#include "preload/leak_scan.h"

#include <cstring>

#include "preload/internal_alloc.h"

namespace heapsight::preload {

namespace {
constexpr uintptr_t kWord = sizeof(uintptr_t);

// The last index in [first, first + n) whose value is at or before w
// (values sorted, values[first] <= w, n >= 1), by halving with a
// conditional move per step.
size_t LastAtOrBefore(const uintptr_t* values, size_t first, size_t n, uintptr_t w) {
  while (n > 1) {
    size_t half = n / 2;
    first = values[first + half] <= w ? first + half : first;
    n -= half;
  }
  return first;
}

}  // namespace

LeakClassifier::~LeakClassifier() {
  if (state_ != nullptr) PageFree(state_, state_bytes_);
  if (stack_ != nullptr) PageFree(stack_, stack_bytes_);
  if (filter_ != nullptr) PageFree(filter_, filter_bytes_);
  if (fences_ != nullptr) PageFree(fences_, fence_bytes_);
}

bool LeakClassifier::Init(const uintptr_t* starts, const uint64_t* sizes, size_t count,
                          const Hooks& hooks) {
  starts_ = starts;
  sizes_ = sizes;
  count_ = count;
  hooks_ = hooks;
  // state + unreadable flags in one mapping; the mark stack holds each block
  // at most twice per phase (unreached -> possible -> reachable).
  state_bytes_ = 2 * count + 16;
  state_ = static_cast<uint8_t*>(PageAlloc(state_bytes_));
  stack_capacity_ = 2 * count + 16;
  stack_bytes_ = stack_capacity_ * sizeof(uint32_t);
  stack_ = static_cast<uint32_t*>(PageAlloc(stack_bytes_));
  if (state_ == nullptr || stack_ == nullptr) return false;
  unreadable_ = state_ + count + 8;
  if (count != 0) {
    min_ = starts[0];
    max_ = 0;
    for (size_t i = 0; i < count; ++i) {
      uintptr_t end = starts[i] + (sizes[i] == 0 ? 1 : sizes[i]);
      if (end > max_) max_ = end;
    }
  }
  fence_count_ = (count + kFenceStride - 1) / kFenceStride;
  fence_bytes_ = (fence_count_ + 1) * sizeof(uintptr_t);
  fences_ = static_cast<uintptr_t*>(PageAlloc(fence_bytes_));
  if (fences_ == nullptr) return false;
  for (size_t k = 0; k < fence_count_; ++k) fences_[k] = starts[k * kFenceStride];
  return BuildGranuleFilter();
}

bool LeakClassifier::BuildGranuleFilter() {
  // Granules to set: every granule a block overlaps (a zero-size block its
  // start's). Sized for about 1/16 of the bits set, so that a word outside
  // every block passes with odds of about 1/16; between 4 KiB and 2 MiB
  // of bits (at the top, more granules only raise those odds).
  auto first_granule = [this](size_t i) { return starts_[i] >> kGranuleShift; };
  auto last_granule = [this](size_t i) {
    return (starts_[i] + (sizes_[i] == 0 ? 0 : sizes_[i] - 1)) >> kGranuleShift;
  };
  uint64_t granules = 0;
  for (size_t i = 0; i < count_; ++i) granules += last_granule(i) - first_granule(i) + 1;
  int log2_bits = 15;
  while (log2_bits < 24 && (uint64_t{1} << log2_bits) < 16 * granules) ++log2_bits;
  filter_shift_ = 64 - log2_bits;
  filter_bytes_ = (size_t{1} << log2_bits) / 8;
  filter_ = static_cast<uint64_t*>(PageAlloc(filter_bytes_));
  if (filter_ == nullptr) return false;
  std::memset(filter_, 0, filter_bytes_);
  uintptr_t previous = UINTPTR_MAX;  // consecutive small blocks share a granule
  for (size_t i = 0; i < count_; ++i) {
    uintptr_t first = first_granule(i);
    uintptr_t last = last_granule(i);
    for (uintptr_t g = first == previous ? first + 1 : first; g <= last; ++g) {
      uint64_t bit = (g * kGranuleMix) >> filter_shift_;
      filter_[bit >> 6] |= uint64_t{1} << (bit & 63);
    }
    previous = last;
  }
  return true;
}

void LeakClassifier::SetUnreadable(size_t index) { unreadable_[index] |= kUnreadable; }

void LeakClassifier::SetAnonymous(size_t index) { unreadable_[index] |= kAnonymous; }

size_t LeakClassifier::Find(uintptr_t w) const {
  if (w < min_ || w >= max_) return SIZE_MAX;
  // Last block starting at or before w (starts_[0] = min_ <= w): first the
  // last fence at or before w, then the last start at or before w among the
  // kFenceStride blocks from that fence on (the next fence is past w). Each
  // step is a conditional move, not a branch: the branch of the usual form
  // mispredicts about every other step on pointer data.
  size_t lo = LastAtOrBefore(fences_, 0, fence_count_, w) * kFenceStride;
  lo = LastAtOrBefore(starts_, lo, count_ - lo < kFenceStride ? count_ - lo : kFenceStride, w);
  uintptr_t start = starts_[lo];
  if (w < start) return SIZE_MAX;
  uint64_t size = sizes_[lo];
  if (w - start < size || (size == 0 && w == start)) return lo;
  return SIZE_MAX;
}

void LeakClassifier::Push(uint32_t index) {
  if (stack_size_ < stack_capacity_) stack_[stack_size_++] = index;
}

// glibc keeps pointers to free chunks' headers in its arena (bins, top);
// the header of the chunk after block B sits at B + usable_size(B) - 8,
// which is inside B when B uses all of its usable bytes.
bool LeakClassifier::IsNextChunkHeader(size_t index, uintptr_t ptr) const {
  if (hooks_.usable_size == nullptr || (unreadable_[index] & kUnreadable) != 0) return false;
  uintptr_t start = starts_[index];
  uint64_t size = sizes_[index];
  if (size < kWord || ptr - start + kWord < size) return false;
  size_t usable = hooks_.usable_size(start);
  return usable >= kWord && ptr == start + usable - kWord;
}

// memcheck's --leak-check-heuristics=all (its default): interior pointers
// that runtimes legitimately keep to reachable blocks. Same tests, in the
// same order, as memcheck 3.19 (mc_leakcheck.c, heuristic_reachedness):
bool LeakClassifier::Heuristic(size_t index, uintptr_t ptr) const {
  if ((unreadable_[index] & kUnreadable) != 0 || ptr % kWord != 0) return false;
  uintptr_t start = starts_[index];
  uint64_t size = sizes_[index];
  uintptr_t offset = ptr - start;
  auto word_at = [start](uintptr_t off) {
    uint64_t w;
    std::memcpy(&w, reinterpret_cast<const void*>(start + off), sizeof w);
    return w;
  };
  // The sizes the block may have been asked with: exactly `size`, or with
  // address frees anything from min_request up to its extent.
  uint64_t least = size;
  if (hooks_.min_request != nullptr) {
    least = hooks_.min_request(index, hooks_.ctx);
    if (least > size) least = size;
  }
  auto could_be = [least, size](uint64_t asked) { return asked >= least && asked <= size; };
  // stdstring: an old (COW) std::string rep {length, capacity, refcount},
  // the characters and a NUL; the pointer is to the characters. The block
  // is exactly 3 words + capacity + 1 bytes and length <= capacity.
  if (offset == 3 * kWord && size > 3 * kWord) {
    uint64_t capacity = word_at(kWord);
    if (capacity < size && could_be(3 * kWord + capacity + 1) && word_at(0) <= capacity) {
      return true;
    }
  }
  // length64: a 64-bit count of the bytes that follow it (sqlite's
  // allocator); the pointer is to the bytes after the count. The count is
  // not 0.
  if (offset == 8 && size > 8) {
    uint64_t length = word_at(0);
    if (length > 0 && length < size && could_be(length + 8)) return true;
  }
  // newarray: operator new[]'s cookie (the element count of an array of
  // objects with a destructor) before the array; the pointer is to the
  // array. A count that is not 0 and divides the rest of the block (with
  // address frees: the rest of some size the block may have been asked
  // with, more than one word).
  if (offset == kWord && size > kWord) {
    uint64_t count = word_at(0);
    if (count > 0) {
      uint64_t most = size - kWord;
      uint64_t fewest = least > kWord ? least - kWord : 1;
      if (most / count * count >= fewest) return true;
    }
  }
  // multipleinheritance: a pointer to a secondary base inside the object:
  // the word it points to and the block's first word are both vtable
  // addresses (word-aligned, above the first page; is_vtable does the
  // table test).
  if (hooks_.is_vtable != nullptr && offset + kWord <= size) {
    uintptr_t here = word_at(offset);
    if (here % kWord != 0 || here < 4096) return false;
    uintptr_t first = word_at(0);
    if (first % kWord != 0 || first < 4096) return false;
    if (hooks_.is_vtable(here, hooks_.ctx) && hooks_.is_vtable(first, hooks_.ctx)) return true;
  }
  return false;
}

void LeakClassifier::Visit(uintptr_t w, bool prior_definite, int64_t clique) {
  if (w < min_ || w >= max_ || !MayHoldBlock(w)) return;
  ++words_searched_;
  size_t i = Find(w);
  if (i == SIZE_MAX) return;
  uint8_t& st = state_[i];
  if (st == kReachable) return;
  bool at_start = w == starts_[i];
  if (!at_start && IsNextChunkHeader(i, w)) return;
  if (clique < 0) {
    if (prior_definite && (at_start || Heuristic(i, w))) {
      st = kReachable;
      Push(static_cast<uint32_t>(i));
    } else if (st == kUnreached) {
      st = kPossible;
      Push(static_cast<uint32_t>(i));
    }
    return;
  }
  // Clique phase: any pointer from the clique absorbs an unreached block.
  if (st == kUnreached && static_cast<int64_t>(i) != clique) {
    st = kIndirect;
    Push(static_cast<uint32_t>(i));
  }
}

void LeakClassifier::ScanWords(uintptr_t lo, uintptr_t hi, bool prior_definite,
                               int64_t clique) {
  lo = (lo + kWord - 1) & ~(kWord - 1);
  if (hi < lo + kWord) return;
  const uintptr_t* p = reinterpret_cast<const uintptr_t*>(lo);
  const uintptr_t* end = reinterpret_cast<const uintptr_t*>(hi & ~(kWord - 1));
  words_scanned_ += static_cast<uint64_t>(end - p);
  ScanSpan(p, end, prior_definite, clique);
}

// The hot loop of every scan. Most words of a large root set point into no
// block: outside [lowest block, highest block end) they cost one compare
// (a well-predicted branch that skips the filter's load); inside, one
// filter bit (leak_scan.h) instead of a binary search over every block.
// Tried: the range test and the filter bit combined without a branch (only
// the rare word that passes both taking one): as fast for words inside the
// span, 2-3x slower than this for words outside it, which then all load a
// filter word (bench/leak_scan_bench roots, docs/performance.md, scan24).
void LeakClassifier::ScanSpan(const uintptr_t* p, const uintptr_t* end, bool prior_definite,
                              int64_t clique) {
  // Locals: Visit writes members, so the compiler would reload these.
  const uintptr_t min = min_, span = max_ - min_;
  const uint64_t* filter = filter_;
  const int shift = filter_shift_;
  for (; p < end; ++p) {
    uintptr_t w = *p;
    if (w - min < span && FilterHas(filter, shift, w)) Visit(w, prior_definite, clique);
  }
}

void LeakClassifier::ScanUsedPages(uintptr_t lo, uintptr_t hi, bool prior_definite,
                                   int64_t clique) {
  pages_.ForEachUsedRun(
      lo, hi, [&](uintptr_t a, uintptr_t b) { ScanWords(a, b, prior_definite, clique); });
}

void LeakClassifier::Drain(int64_t clique) {
  while (stack_size_ != 0) {
    uint32_t i = stack_[--stack_size_];
    const uint8_t flags = unreadable_[i];
    if ((flags & kUnreadable) != 0) continue;
    bool definite = clique < 0 && state_[i] == kReachable;
    if ((flags & kAnonymous) != 0) {
      ScanUsedPages(starts_[i], starts_[i] + sizes_[i], definite, clique);
    } else {
      ScanWords(starts_[i], starts_[i] + sizes_[i], definite, clique);
    }
  }
}

void LeakClassifier::ScanRange(uintptr_t lo, uintptr_t hi) {
  ScanWords(lo, hi, true, -1);
  Drain(-1);
}

void LeakClassifier::ScanCopiedWords(const uintptr_t* words, size_t n) {
  words_scanned_ += n;
  ScanSpan(words, words + n, true, -1);
  Drain(-1);
}

void LeakClassifier::ScanWord(uintptr_t word) {
  ++words_scanned_;
  Visit(word, true, -1);
  Drain(-1);
}

void LeakClassifier::MarkReachable(size_t index) {
  if (index >= count_ || state_[index] == kReachable) return;
  state_[index] = kReachable;
  Push(static_cast<uint32_t>(index));
  Drain(-1);
}

void LeakClassifier::Finish() {
  Drain(-1);
  for (size_t i = 0; i < count_; ++i) {
    if (state_[i] != kUnreached) continue;
    Push(static_cast<uint32_t>(i));
    Drain(static_cast<int64_t>(i));
  }
  // No block is read after this: the fd goes before the caller lets the
  // other threads run again.
  pages_.Close();
}

format::LeakClass LeakClassifier::ClassOf(size_t index) const {
  switch (state_[index]) {
    case kReachable: return format::LeakClass::kReachable;
    case kPossible: return format::LeakClass::kPossible;
    case kIndirect: return format::LeakClass::kIndirect;
    default: return format::LeakClass::kDefinite;
  }
}

}  // namespace heapsight::preload
