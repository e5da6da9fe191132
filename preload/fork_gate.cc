// preload/fork_gate.cc: see fork_gate.h.
//
// Constraints: no malloc, no locks; initial-exec TLS only; the waits are
// sched_yield loops (the prepare handler's bounded).
#include "preload/fork_gate.h"

#include <sched.h>
#include <time.h>

#include <atomic>

namespace heapsight::preload {

constinit thread_local int t_fork_gate_depth __attribute__((tls_model("initial-exec"))) = 0;

namespace {

// Threads inside (or about to enter) a gated call.
std::atomic<uint32_t> g_inside{0};
std::atomic<bool> g_closed{false};
std::atomic<uint64_t> g_timeouts{0};

uint64_t MonotonicNsNow() {
  timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return static_cast<uint64_t>(t.tv_sec) * 1000000000ull + static_cast<uint64_t>(t.tv_nsec);
}

}  // namespace

void EnterForkGateSlow() {
  // Counted before the gate is read (both seq_cst), as the prepare handler
  // closes it before it reads the count: either it sees us, or we see it
  // closed and step back out.
  for (;;) {
    g_inside.fetch_add(1, std::memory_order_seq_cst);
    if (!g_closed.load(std::memory_order_seq_cst)) return;
    g_inside.fetch_sub(1, std::memory_order_seq_cst);
    while (g_closed.load(std::memory_order_acquire)) sched_yield();
  }
}

void LeaveForkGateSlow() { g_inside.fetch_sub(1, std::memory_order_release); }

int GatedIteratePhdr(int (*callback)(dl_phdr_info*, size_t, void*), void* data) {
  ForkGateHolder gate;
  return dl_iterate_phdr(callback, data);
}

void CloseForkGate() {
  g_closed.store(true, std::memory_order_seq_cst);
  // Our own call, if the fork runs in a handler nested in it, never leaves.
  const uint32_t own = t_fork_gate_depth != 0 ? 1 : 0;
  if (g_inside.load(std::memory_order_seq_cst) <= own) return;
  const uint64_t deadline = MonotonicNsNow() + 2000000000ull;
  while (g_inside.load(std::memory_order_seq_cst) > own) {
    if (MonotonicNsNow() >= deadline) {
      g_timeouts.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    sched_yield();
  }
}

void OpenForkGate() { g_closed.store(false, std::memory_order_release); }

void ResetForkGateInChild() {
  // The child's one thread: its own call, if any, is still counted.
  g_inside.store(t_fork_gate_depth != 0 ? 1 : 0, std::memory_order_relaxed);
  g_closed.store(false, std::memory_order_release);
}

uint64_t ForkGateTimeouts() { return g_timeouts.load(std::memory_order_relaxed); }

}  // namespace heapsight::preload
