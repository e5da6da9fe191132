// preload/mix.h: the splitmix64 finalizer, the preload's one 64-bit mixer
// (live-table slots and shards, stack hashes, the sampler's seeds).
//
// Constraints: pure arithmetic; no allocation, no locks, async-signal-safe.
#ifndef HEAPSIGHT_PRELOAD_MIX_H_
#define HEAPSIGHT_PRELOAD_MIX_H_

#include <cstdint>

namespace heapsight::preload {

// Spreads every input bit over the whole result (addresses share low zero
// bits and high prefixes; counters differ in their low bits only).
inline uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_MIX_H_
