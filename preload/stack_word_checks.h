// preload/stack_word_checks.h: whether stack words still hold what an
// unwind read from them (the unwind cache's checks, unwind_cache.h).
//
// A check is an address and the word it held; a pair check is two adjacent
// words (a frame-pointer frame's saved rbp and return address) compared
// with one 16-byte load. The callers bound every address to the thread's
// live stack before they ask.
//
// Constraints: plain loads and arithmetic; no calls, no locks, no malloc.
#ifndef HEAPSIGHT_PRELOAD_STACK_WORD_CHECKS_H_
#define HEAPSIGHT_PRELOAD_STACK_WORD_CHECKS_H_

#include <cstdint>

#include <emmintrin.h>

namespace heapsight::preload {

inline uintptr_t LoadStackWord(uintptr_t address) {
  return *reinterpret_cast<const uintptr_t*>(address);
}

// Whether any of pairs [begin, end) differs from the stack now: one 16-byte
// load, xor and or per pair, no early exit (the common case is a full
// match, and the loads stay independent of each other). `PairCheck` has
// `address` and a 16-aligned `value[2]`.
template <typename PairCheck>
__attribute__((always_inline)) inline bool PairsDiffer(const PairCheck* pairs, uint32_t begin,
                                                       uint32_t end) {
  __m128i diff = _mm_setzero_si128();
#pragma GCC unroll 4
  for (uint32_t j = begin; j < end; ++j) {
    const __m128i now = _mm_loadu_si128(reinterpret_cast<const __m128i*>(pairs[j].address));
    diff = _mm_or_si128(diff,
                        _mm_xor_si128(now, _mm_load_si128(reinterpret_cast<const __m128i*>(
                                               pairs[j].value))));
  }
  return _mm_movemask_epi8(_mm_cmpeq_epi8(diff, _mm_setzero_si128())) != 0xffff;
}

// The same for single words (`Check` has `address` and `value`).
template <typename Check>
__attribute__((always_inline)) inline bool SinglesDiffer(const Check* singles, uint32_t begin,
                                                         uint32_t end) {
  uintptr_t diff = 0;
#pragma GCC unroll 8
  for (uint32_t j = begin; j < end; ++j) {
    diff |= LoadStackWord(singles[j].address) ^ singles[j].value;
  }
  return diff != 0;
}

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_STACK_WORD_CHECKS_H_
