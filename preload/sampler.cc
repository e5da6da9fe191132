// preload/sampler.cc: see sampler.h.
//
// Constraints: no allocation, no locks, no libm; initial-exec TLS only.
#include "preload/sampler.h"

#include <atomic>
#include <bit>

#include "preload/mix.h"

namespace heapsight::preload {

uint64_t g_sample_period = 0;
constinit thread_local int64_t t_sample_bytes_left __attribute__((tls_model("initial-exec"))) = 0;
constinit thread_local int64_t t_slow_sample_bytes_left
    __attribute__((tls_model("initial-exec"))) = 0;
bool g_fast_countdown = false;

namespace {

thread_local uint64_t t_rng __attribute__((tls_model("initial-exec"))) = 0;
std::atomic<uint64_t> g_next_seed{0};

uint64_t NextRandom() {
  // xorshift64*: never 0 once seeded with a non-zero state.
  uint64_t x = t_rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  t_rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

// ln(x) for x in (0, 1]: x = m * 2^e with m in [1, 2), ln(m) from the
// series 2 * atanh((m - 1) / (m + 1)) (four terms: error below 1e-5).
double Ln(double x) {
  uint64_t bits = std::bit_cast<uint64_t>(x);
  int e = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
  double m = std::bit_cast<double>((bits & 0x000fffffffffffffull) | 0x3ff0000000000000ull);
  double t = (m - 1.0) / (m + 1.0);
  double t2 = t * t;
  double ln_m = 2.0 * t * (1.0 + t2 * (1.0 / 3 + t2 * (1.0 / 5 + t2 * (1.0 / 7))));
  return e * 0.69314718055994530942 + ln_m;
}

}  // namespace

uint64_t ExponentialInterval(uint64_t random_bits, uint64_t mean) {
  // u in (0, 1]: never 0, so the logarithm is finite (at most 36.7 * mean).
  double u = static_cast<double>((random_bits >> 11) + 1) * (1.0 / 9007199254740992.0);
  double interval = -Ln(u) * static_cast<double>(mean);
  return interval < 1.0 ? 1 : static_cast<uint64_t>(interval);
}

void InitSampler(uint64_t mean_bytes) { g_sample_period = mean_bytes; }

void UseFastCountdown() { g_fast_countdown = true; }

bool SampleSlowPath() {
  int64_t& left = SampleCountdown();
  bool first = t_rng == 0;
  if (first) {
    // Seeds in thread order: the first thread to allocate gets seed 1.
    // splitmix64: the golden-ratio step, then the finalizer.
    t_rng = Mix64(g_next_seed.fetch_add(1, std::memory_order_relaxed) + 1 +
                  0x9E3779B97F4A7C15ull) | 1;
    // A thread starts a whole interval away from its first sample, the
    // allocation that got here included.
    left += static_cast<int64_t>(ExponentialInterval(NextRandom(), g_sample_period));
    if (left > 0) return false;
  }
  // This allocation crossed a sampling point: it is recorded, and the next
  // point is drawn afresh (intervals are memoryless, so the overshoot is
  // dropped rather than carried).
  left = static_cast<int64_t>(ExponentialInterval(NextRandom(), g_sample_period));
  return true;
}

}  // namespace heapsight::preload
