// preload/clock.cc: TSC calibration for FastMonotonicNs() (see clock.h).
//
// Constraints: no allocation, no locks, no stdio. InitClock() runs once at
// start-up (and again in a fork child, harmlessly); RecalibrateClock() runs
// from the RSS-sampling thread of the moment, one at a time (the caller won
// a CAS), so writers never race each other.
#include "preload/clock.h"

#include <fcntl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstring>

namespace heapsight::preload {

TscCalibration g_tsc_calibration;
bool g_tsc_enabled = false;

namespace {

uint64_t g_init_tsc = 0;
uint64_t g_init_ns = 0;

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
// averaged, which halves the pairing error.
void PairedRead(uint64_t* tsc, uint64_t* ns) {
  uint64_t before = __rdtsc();
  *ns = MonotonicNs();
  uint64_t after = __rdtsc();
  *tsc = before + (after - before) / 2;
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
  uint64_t tsc0, ns0, tsc1, ns1;
  PairedRead(&tsc0, &ns0);
  // ~200 us of spinning gives a first rate good to a few parts in 10^4;
  // RecalibrateClock() refines it over longer spans.
  do {
    PairedRead(&tsc1, &ns1);
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
  uint64_t tsc, ns;
  PairedRead(&tsc, &ns);
  if (tsc <= g_init_tsc || ns <= g_init_ns) return;
  uint64_t rate = Rate(tsc - g_init_tsc, ns - g_init_ns);
  if (rate == 0) return;
  Publish(tsc, ns, rate);
}

}  // namespace heapsight::preload
