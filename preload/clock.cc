// preload/clock.cc: TSC calibration for FastMonotonicNs(), and the trace's
// clock policy (HEAPSIGHT_CLOCK: coarse, precise, or auto) (see clock.h).
//
// Constraints: no allocation, no locks, no stdio. InitClock() runs once at
// start-up; RecalibrateClock() runs from the RSS-sampling thread of the
// moment. Writers are serialized by a try-flag (a second writer skips its
// turn rather than wait), so readers never see a mix of two calibrations.
// ResetClockInChild() repairs the seqlock in a fork child, where a writer
// may have vanished mid-update. The policy's switch from the coarse to the
// precise clock happens once, guarded by an exchange flag.
#include "preload/clock.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace heapsight::preload {

TscCalibration g_tsc_calibration;
bool g_tsc_enabled = false;
std::atomic<bool> g_coarse_clock{true};
uint64_t g_trace_start_ns = 0;

namespace {

// HEAPSIGHT_CLOCK: auto (coarse until a second thread appears), coarse, precise.
enum class ClockMode { kAuto, kCoarse, kPrecise };
ClockMode g_clock_mode = ClockMode::kAuto;
std::atomic<bool> g_clock_switching{false};

uint64_t g_init_tsc = 0;
uint64_t g_init_ns = 0;

// Held by the one thread publishing a calibration.
std::atomic<bool> g_publishing{false};

// A (tsc, ns) pair is trusted only if clock_gettime took less than this many
// TSC ticks (~10 us at 3 GHz): a thread preempted between the two TSC reads
// would otherwise anchor the conversion milliseconds off, and every later
// timestamp with it (a fork-heavy test under load once saw times jump 27 ms
// backwards, before the trace's start).
constexpr uint64_t kMaxPairTicks = 30000;
constexpr int kPairAttempts = 16;

// True if the kernel's current clocksource is the TSC: the kernel selects it
// only when the TSC is invariant and synchronized across CPUs.
bool KernelUsesTsc() {
  int fd = static_cast<int>(syscall(SYS_openat, AT_FDCWD,
                                    "/sys/devices/system/clocksource/clocksource0/"
                                    "current_clocksource",
                                    O_RDONLY | O_CLOEXEC));
  if (fd < 0) return false;
  char buf[32] = {};
  long n = syscall(SYS_read, fd, buf, sizeof buf - 1);
  syscall(SYS_close, fd);
  return n >= 3 && std::memcmp(buf, "tsc", 3) == 0 && (n == 3 || buf[3] == '\n');
}

// One (tsc, ns) pair; the TSC is read on both sides of clock_gettime and
// averaged, which halves the pairing error. Of several tries it keeps the
// tightest; returns false if even that one was too wide to trust.
bool PairedRead(uint64_t* tsc, uint64_t* ns) {
  uint64_t best_width = ~uint64_t{0};
  for (int i = 0; i < kPairAttempts; ++i) {
    uint64_t before = __rdtsc();
    uint64_t now_ns = MonotonicNs();
    uint64_t after = __rdtsc();
    if (after < before) continue;  // migrated to a CPU whose TSC lags
    uint64_t width = after - before;
    if (width < best_width) {
      best_width = width;
      *tsc = before + width / 2;
      *ns = now_ns;
      if (width < kMaxPairTicks / 4) break;  // good enough
    }
  }
  return best_width <= kMaxPairTicks;
}

void Publish(uint64_t anchor_tsc, uint64_t anchor_ns, uint64_t rate) {
  uint32_t seq = g_tsc_calibration.sequence.load(std::memory_order_relaxed);
  g_tsc_calibration.sequence.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  g_tsc_calibration.anchor_tsc.store(anchor_tsc, std::memory_order_relaxed);
  g_tsc_calibration.anchor_ns.store(anchor_ns, std::memory_order_relaxed);
  g_tsc_calibration.ns_per_tick_q32.store(rate, std::memory_order_relaxed);
  g_tsc_calibration.sequence.store(seq + 2, std::memory_order_release);
}

uint64_t Rate(uint64_t ticks, uint64_t ns) {
  if (ticks == 0) return 0;
  return static_cast<uint64_t>((static_cast<UInt128>(ns) << 32) / ticks);
}

}  // namespace

void InitClock() {
  g_tsc_enabled = false;
  if (!KernelUsesTsc()) return;
  uint64_t tsc0 = 0, ns0 = 0, tsc1 = 0, ns1 = 0;
  if (!PairedRead(&tsc0, &ns0)) return;
  // ~200 us of spinning gives a first rate good to a few parts in 10^4;
  // RecalibrateClock() refines it over longer spans.
  do {
    if (!PairedRead(&tsc1, &ns1)) return;
  } while (ns1 - ns0 < 200000 && ns1 >= ns0);
  if (tsc1 <= tsc0 || ns1 <= ns0) return;
  uint64_t rate = Rate(tsc1 - tsc0, ns1 - ns0);
  // Sanity: 0.1 to 20 GHz.
  if (rate == 0 || rate > (uint64_t{10} << 32) || rate < (uint64_t{1} << 32) / 20) return;
  g_init_tsc = tsc0;
  g_init_ns = ns0;
  Publish(tsc1, ns1, rate);
  g_tsc_enabled = true;
}

void RecalibrateClock() {
  if (!g_tsc_enabled) return;
  if (g_publishing.exchange(true, std::memory_order_acquire)) return;  // someone else is
  uint64_t tsc = 0, ns = 0;
  if (PairedRead(&tsc, &ns) && tsc > g_init_tsc && ns > g_init_ns) {
    uint64_t rate = Rate(tsc - g_init_tsc, ns - g_init_ns);
    // The same sanity bounds as InitClock(): 0.1 to 20 GHz.
    if (rate != 0 && rate <= (uint64_t{10} << 32) && rate >= (uint64_t{1} << 32) / 20) {
      Publish(tsc, ns, rate);
    }
  }
  g_publishing.store(false, std::memory_order_release);
}

void ResetClockInChild() {
  // Only the forking thread survives: a writer caught mid-Publish left the
  // sequence odd, and readers would spin on it forever.
  g_publishing.store(false, std::memory_order_relaxed);
  uint32_t seq = g_tsc_calibration.sequence.load(std::memory_order_relaxed);
  if ((seq & 1) != 0) g_tsc_calibration.sequence.store(seq + 1, std::memory_order_release);
  // Its fields may be torn, so publish a fresh anchor (keeping the rate if
  // this pair cannot be trusted is not an option: fall back to the kernel).
  if (!g_tsc_enabled) return;
  uint64_t tsc = 0, ns = 0;
  uint64_t rate = 0;
  if (PairedRead(&tsc, &ns) && tsc > g_init_tsc && ns > g_init_ns) {
    rate = Rate(tsc - g_init_tsc, ns - g_init_ns);
  }
  if (rate == 0 || rate > (uint64_t{10} << 32) || rate < (uint64_t{1} << 32) / 20) {
    g_tsc_enabled = false;
    return;
  }
  Publish(tsc, ns, rate);
}

void StartTraceClock(const char* policy) {
  // The coarse clock needs no set-up; the precise one calibrates the TSC
  // (a ~200 us busy wait) before its first timestamp: here with
  // HEAPSIGHT_CLOCK=precise, at a second thread's start with auto.
  g_clock_mode = std::strcmp(policy, "precise") == 0  ? ClockMode::kPrecise
                 : std::strcmp(policy, "coarse") == 0 ? ClockMode::kCoarse
                                                      : ClockMode::kAuto;
  if (g_clock_mode == ClockMode::kPrecise) {
    InitClock();
    g_coarse_clock.store(false, std::memory_order_release);
  }
  g_trace_start_ns = g_clock_mode == ClockMode::kPrecise ? FastMonotonicNs() : CoarseMonotonicNs();
}

void OnThreadStateCreated(uint32_t index) {
  if (index < 2 || g_clock_mode != ClockMode::kAuto ||
      !g_coarse_clock.load(std::memory_order_relaxed) ||
      g_clock_switching.exchange(true, std::memory_order_acq_rel)) {
    return;
  }
  // Calibrated before the switch is published: until then every thread
  // keeps reading the coarse clock.
  InitClock();
  g_coarse_clock.store(false, std::memory_order_release);
}

}  // namespace heapsight::preload
