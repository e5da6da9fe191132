// cli/monotonic_clock.h: CLOCK_MONOTONIC readings for the command's own
// timing (record's rotation ages and conversion wait, the live server's
// timeouts, `heapsight top`'s refresh), and for comparing with a trace's
// start_monotonic_ns, which the preload takes from the same clock.
#ifndef HEAPSIGHT_CLI_MONOTONIC_CLOCK_H_
#define HEAPSIGHT_CLI_MONOTONIC_CLOCK_H_

#include <time.h>

#include <cstdint>

namespace heapsight {

inline uint64_t MonotonicNs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(ts.tv_nsec);
}
inline uint64_t MonotonicUs() { return MonotonicNs() / 1000; }
inline int64_t MonotonicMs() { return static_cast<int64_t>(MonotonicNs() / 1'000'000); }

}  // namespace heapsight

#endif  // HEAPSIGHT_CLI_MONOTONIC_CLOCK_H_
