// bench/raw_varint.h: unchecked varint cursors for the bench tools that
// re-walk a chunk's rows beside ChunkDecoder (trace_anatomy, trace_parts).
//
// Only for traces the decoder has already accepted: nothing here checks
// bounds. The analyzer reads untrusted traces through format::ByteReader.
#ifndef HEAPSIGHT_BENCH_RAW_VARINT_H_
#define HEAPSIGHT_BENCH_RAW_VARINT_H_

#include <cstdint>

namespace heapsight::bench {

// Moves p past one varint; returns where it started.
inline const uint8_t* SkipVarint(const uint8_t*& p) {
  const uint8_t* start = p;
  while (*p & 0x80) ++p;
  ++p;
  return start;
}

// Reads one varint at p and moves p past it.
inline uint64_t ReadVarint(const uint8_t*& p) {
  uint64_t x = 0;
  for (int shift = 0;; shift += 7) {
    uint8_t b = *p++;
    x |= uint64_t{b & 0x7fu} << shift;
    if (!(b & 0x80)) return x;
  }
}

}  // namespace heapsight::bench

#endif  // HEAPSIGHT_BENCH_RAW_VARINT_H_
