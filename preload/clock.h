// preload/clock.h: monotonic time for event timestamps.
//
// Constraints: no allocation, no locks; clock_gettime goes through the vDSO
// (no syscall). Async-signal-safe.
#ifndef HEAPSIGHT_PRELOAD_CLOCK_H_
#define HEAPSIGHT_PRELOAD_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace heapsight::preload {

inline uint64_t MonotonicNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

inline uint64_t RealtimeNs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_CLOCK_H_
