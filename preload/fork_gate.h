// preload/fork_gate.h: heapsight's calls into the loader's dl_iterate_phdr
// and into libunwind, kept out of fork (sig23, 2026-12-07).
//
// Both hold locks a fork child cannot get back:
// - dl_iterate_phdr holds the loader's _dl_load_write_lock while it runs.
//   glibc 2.36's fork resets dl_load_lock and dl_load_tls_lock in the
//   child, not that one;
// - libunwind's step holds its global register-state cache lock (a
//   pthread mutex, taken with every signal blocked); libunwind has no
//   atfork handler.
// A child forked while another thread was inside either inherits the lock
// held by a thread that does not exist there, and the child's first unwind
// waits forever. heapsight makes these calls on the program's threads
// (libunwind on an unwind-cache miss, module rescans, leak scans' roots),
// so a traced child could hang where the program alone would not:
// lock_stress children hung in __GI___dl_iterate_phdr on _rtld_global+2608
// (sig22's runs) and in libunwind's pthread_mutex_lock (this branch's first
// runs, once the dl_iterate_phdr calls were gated), both from the child's
// first unw_backtrace.
//
// The gate: every such call is made between EnterForkGate and
// LeaveForkGate (ForkGateHolder; GatedIteratePhdr), which count it in;
// fork's prepare handler, once it holds every heapsight lock, closes the
// gate and waits until no call is inside (CloseForkGate); calls
// arriving meanwhile wait at the gate until ForkParent or ForkChild opens
// it again. So no heapsight call holds either lock at the fork. Calls of
// the program's own (or of other libraries) are not covered: that hazard
// is glibc's and libunwind's and exists without heapsight.
//
// Deadlock-free because the prepare handler closes the gate last: it then
// holds every heapsight lock, so a thread waiting at the gate holds none
// that the fork still needs, and a call inside runs only code that takes
// no heapsight lock (libunwind with our bindings, private_libunwind.h, and
// the dl_iterate_phdr callbacks of module_map, root_regions, cxx_runtime).
// A call nested in this thread's own (a signal handler's) passes (the
// thread is already counted), and the prepare handler does not wait for
// its own thread. The wait is bounded (2 s: a thread stopped inside by a
// debugger); past it the fork goes on as before the gate, counted in
// HEAPSIGHT_STATS.
//
// Cost: two atomic read-modify-writes on a process-wide counter per gated
// call; the calls are the slow paths (an unwind-cache miss unwinds with
// libunwind, microseconds), never an unwind-cache hit.
//
// Constraints: no malloc, no locks of its own (two atomics and an
// initial-exec TLS depth); the waits are sched_yield loops. Callers are
// under the reentry guard.
#ifndef HEAPSIGHT_PRELOAD_FORK_GATE_H_
#define HEAPSIGHT_PRELOAD_FORK_GATE_H_

#include <link.h>

#include <cstddef>
#include <cstdint>

#include "preload/defer_zone.h"

namespace heapsight::preload {

extern constinit thread_local int t_fork_gate_depth __attribute__((tls_model("initial-exec")));

void EnterForkGateSlow();
void LeaveForkGateSlow();
// Inside the gate the thread is also in the defer zone (defer_zone.h): a
// signal handler's hook nested in a gated call must not wait for a lock
// (an internal block's shard lock), since the prepare handler may hold
// every lock while it waits for this very call to leave the gate (seen:
// a fork that waited the full 2 s, lock_stress in address mode).
inline void EnterForkGate() {
  EnterDeferZone();
  if (t_fork_gate_depth++ == 0) EnterForkGateSlow();
}
inline void LeaveForkGate() {
  if (--t_fork_gate_depth == 0) LeaveForkGateSlow();
  LeaveDeferZone();
}

class ForkGateHolder {
 public:
  ForkGateHolder() { EnterForkGate(); }
  ~ForkGateHolder() { LeaveForkGate(); }
  ForkGateHolder(const ForkGateHolder&) = delete;
  ForkGateHolder& operator=(const ForkGateHolder&) = delete;
};

// dl_iterate_phdr(callback, data) inside the gate.
int GatedIteratePhdr(int (*callback)(dl_phdr_info*, size_t, void*), void* data);

// ForkPrepare, after every other lock: closes the gate and waits for the
// calls inside. ForkParent: opens it. ForkChild: opens it and forgets the
// parent's other threads' calls.
void CloseForkGate();
void OpenForkGate();
void ResetForkGateInChild();

// Forks whose prepare handler stopped waiting for a call inside the gate
// (HEAPSIGHT_STATS; 0 expected).
uint64_t ForkGateTimeouts();

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_FORK_GATE_H_
