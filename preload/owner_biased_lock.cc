// preload/owner_biased_lock.cc: see owner_biased_lock.h.
//
// Constraints: no allocation, no libc calls but sched_yield; system calls
// through RawSyscall (errno untouched: the hooks keep the program's).
#include "preload/owner_biased_lock.h"

#include <linux/membarrier.h>
#include <errno.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>

#include "preload/raw_syscall.h"

namespace heapsight::preload {

namespace {

std::atomic<bool> g_enabled{false};
std::atomic<uint64_t> g_fallbacks{0};

long Membarrier(int cmd) { return RawSyscall(SYS_membarrier, cmd, 0, 0); }

// Spins, then yields: the other side holds the lock for one event (or one
// flush, a compression and a write).
class Backoff {
 public:
  void Pause() {
    if (++spins_ > 64) {
      sched_yield();
      spins_ = 0;
    } else {
      __builtin_ia32_pause();
    }
  }

 private:
  int spins_ = 0;
};

// A full barrier on every CPU that runs a thread of this process, after the
// caller's earlier stores. Returns false when the kernel gives none.
bool HeavyBarrier() {
  if (__builtin_expect(Membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0, 1)) return true;
  g_fallbacks.fetch_add(1, std::memory_order_relaxed);
  // Not registered (a process image whose registration we did not see),
  // then the older, slower command that needs none.
  if (Membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) == 0 &&
      Membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) {
    return true;
  }
  return Membarrier(MEMBARRIER_CMD_GLOBAL) == 0;
}

}  // namespace

bool EnableOwnerBiasedLocks(bool wanted) {
  if (g_enabled.load(std::memory_order_relaxed)) return true;
  if (!wanted) return false;
  long commands = Membarrier(MEMBARRIER_CMD_QUERY);
  if (commands < 0 || (commands & MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0) return false;
  if (Membarrier(MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED) != 0) return false;
  // One barrier now: a kernel (or a filter) that registers but refuses the
  // barrier itself leaves the locks off.
  if (Membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED) != 0) return false;
  g_enabled.store(true, std::memory_order_relaxed);
  return true;
}

bool OwnerBiasedLocksEnabled() { return g_enabled.load(std::memory_order_relaxed); }

uint64_t OwnerLockBarrierFallbacks() { return g_fallbacks.load(std::memory_order_relaxed); }

void OwnerBiasedLock::OwnerLockSlow() {
  Backoff backoff;
  for (;;) {
    // A remote wants in (or is in): step out, wait until it is done, and
    // announce ourselves again.
    active_.store(0, std::memory_order_release);
    while (wants_.load(std::memory_order_acquire) != 0) backoff.Pause();
    active_.store(1, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (wants_.load(std::memory_order_acquire) == 0) return;
  }
}

void OwnerBiasedLock::RemoteLockSlow() {
  // seq_cst: our own store is visible before our loads of active_ (the
  // syscall below orders it as well; the last fallback relies on this).
  wants_.store(1, std::memory_order_seq_cst);
  if (!HeavyBarrier()) {
    // No barrier from the kernel at all (a seccomp filter forbids every
    // membarrier command): the owner may be inside with its store of
    // active_ not yet visible. Store buffers drain in nanoseconds; 10 ms
    // is the margin, then the flag is trusted.
    timespec left{0, 10'000'000};
    while (RawSyscall(SYS_nanosleep, reinterpret_cast<long>(&left), reinterpret_cast<long>(&left)) ==
           -EINTR) {
    }
  }
  Backoff backoff;
  while (active_.load(std::memory_order_acquire) != 0) backoff.Pause();
}

bool OwnerBiasedLock::TryLock() {
  if (HeldByOwnerPath()) {
    active_.store(1, std::memory_order_relaxed);
    std::atomic_signal_fence(std::memory_order_seq_cst);
    if (wants_.load(std::memory_order_acquire) == 0) return true;
    active_.store(0, std::memory_order_release);
    return false;
  }
  if (!remote_.TryLock()) return false;
  if (owner_.load(std::memory_order_relaxed) == nullptr) return true;
  wants_.store(1, std::memory_order_seq_cst);
  // Without a kernel barrier, give up: TryLock's callers try again later.
  if (HeavyBarrier() && active_.load(std::memory_order_acquire) == 0) return true;
  wants_.store(0, std::memory_order_release);
  remote_.Unlock();
  return false;
}

void OwnerBiasedLock::Claim() {
  if (!OwnerBiasedLocksEnabled()) return;
  SpinLockHolder hold(&remote_);
  owner_.store(__builtin_thread_pointer(), std::memory_order_relaxed);
}

void OwnerBiasedLock::Disown() {
  if (owner_.load(std::memory_order_relaxed) == nullptr) return;
  SpinLockHolder hold(&remote_);
  owner_.store(nullptr, std::memory_order_relaxed);
}

void OwnerBiasedLock::ResetInChild(bool keep_owner) {
  remote_.ResetInChild();
  active_.store(0, std::memory_order_relaxed);
  wants_.store(0, std::memory_order_relaxed);
  if (!keep_owner) owner_.store(nullptr, std::memory_order_relaxed);
}

}  // namespace heapsight::preload
