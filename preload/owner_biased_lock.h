// preload/owner_biased_lock.h: a lock whose owning thread takes it with
// plain stores and loads; other threads pay for both sides.
//
// A thread's ThreadState lock is taken by its own thread at every event
// (twice per malloc/free pair), and by other threads only rarely: the
// writer thread's freshness flush, exit, exec, fork, detach, markers with a
// flush of every thread. A SpinLock costs its owner an atomic exchange per
// take (a full fence on x86: the store buffer drains), about 5% of an
// event's cycles on the 12-frame loop. This lock moves that fence to the
// rare side (the asymmetric, or "biased", Dekker lock):
//
//   owner:   active = 1; compiler barrier; if (wants) back off and wait
//   remote:  take remote_ (a SpinLock among non-owners); wants = 1;
//            membarrier(MEMBARRIER_CMD_PRIVATE_EXPEDITED); wait for active == 0
//
// The owner's store and load may be reordered by its CPU (x86 lets a load
// pass an earlier store to another location), so on their own both sides
// could see the other's flag clear and enter together. membarrier() makes
// every CPU that runs a thread of this process execute a full barrier
// before it returns: if the owner's load of `wants` came before that
// barrier, its store of `active` did too and the remote's load after the
// syscall sees it; if it came after, it sees `wants`. (A thread that is not
// running went through a context switch, itself a full barrier.) So at
// least one side sees the other; the owner backs off whenever it sees
// `wants`.
//
// Who is the owner: the thread that Claim()ed the lock (its thread pointer,
// unique among live threads), until it Disown()s it; with no owner every
// taker goes through remote_, a plain spin lock. The owner check is made
// per take, so any thread may call Lock/Unlock: the owner of a state gets
// the fast path also when it flushes every state (exit, fork), and a dead
// owner that never disowned (a thread that left without its key
// destructor) is harmless: its pointer matches at most one live thread.
//
// Off (every lock a spin lock: Claim does nothing) when the kernel refuses
// MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED (Linux before 4.14, a seccomp
// filter) or with HEAPSIGHT_OWNER_LOCKS=0. If the barrier fails later (a
// seccomp filter installed by the program after our start), the remote
// registers again, then falls back to MEMBARRIER_CMD_GLOBAL (an RCU grace
// period: every CPU passes a full barrier), then to waiting out the
// owner's flag over 10 ms of yields (owner_biased_lock.cc).
//
// Constraints: no allocation; no syscall on the owner's path (remote takers:
// membarrier, sched_yield under contention). Not re-entrant, like SpinLock:
// a signal handler must not take a lock its thread holds (the hooks hold
// these only under the reentry guard, which makes a nested hook pass
// through). Usable across fork: ResetInChild.
#ifndef HEAPSIGHT_PRELOAD_OWNER_BIASED_LOCK_H_
#define HEAPSIGHT_PRELOAD_OWNER_BIASED_LOCK_H_

#include <atomic>
#include <cstdint>

#include "preload/spin_lock.h"

namespace heapsight::preload {

// Registers the process for private expedited membarrier, once; from then
// on Claim() makes owners. Returns whether owner-biased locks are on.
// `wanted`: false leaves them off (HEAPSIGHT_OWNER_LOCKS=0). Call before
// the process has many threads (registration with threads running waits
// for an RCU grace period, a few ms, once).
bool EnableOwnerBiasedLocks(bool wanted);
bool OwnerBiasedLocksEnabled();

// For tests: the heavy barrier's fallbacks taken so far (0 when the kernel
// never refused membarrier after registration).
uint64_t OwnerLockBarrierFallbacks();

class OwnerBiasedLock {
 public:
  constexpr OwnerBiasedLock() = default;
  OwnerBiasedLock(const OwnerBiasedLock&) = delete;
  OwnerBiasedLock& operator=(const OwnerBiasedLock&) = delete;

  // Whether the calling thread is the owner (then Lock/Unlock take the
  // fast path). Stable for the caller: only the owner changes owner_ to or
  // from itself.
  bool HeldByOwnerPath() const {
    return owner_.load(std::memory_order_relaxed) == __builtin_thread_pointer();
  }

  void Lock() {
    if (HeldByOwnerPath()) {
      OwnerLock();
    } else {
      RemoteLock();
    }
  }
  void Unlock() {
    if (HeldByOwnerPath()) {
      OwnerUnlock();
    } else {
      RemoteUnlock();
    }
  }
  // Never waits for the owner to leave (a remote that finds it inside gives
  // up); may wait for another remote's flag to clear, like SpinLock's.
  bool TryLock();

  // The owner's side; the caller is the owner (HeldByOwnerPath()).
  void OwnerLock() {
    active_.store(1, std::memory_order_relaxed);
    // The store before the load, in program order: the compiler must not
    // move them; the CPU may, and membarrier() on the remote side answers
    // for that (see the top of this file).
    std::atomic_signal_fence(std::memory_order_seq_cst);
    // Acquire: a remote that held the lock and cleared wants_ (release)
    // published its writes to the state.
    if (__builtin_expect(wants_.load(std::memory_order_acquire) != 0, 0)) OwnerLockSlow();
  }
  void OwnerUnlock() { active_.store(0, std::memory_order_release); }

  // Every other thread's side. Inline up to the owner test: a lock
  // without an owner (the orphan state, HEAPSIGHT_OWNER_LOCKS=0) costs what
  // a SpinLock costs.
  void RemoteLock() {
    remote_.Lock();
    if (__builtin_expect(owner_.load(std::memory_order_relaxed) != nullptr, 0)) RemoteLockSlow();
  }
  void RemoteUnlock() {
    if (__builtin_expect(owner_.load(std::memory_order_relaxed) != nullptr, 0)) {
      wants_.store(0, std::memory_order_release);
    }
    remote_.Unlock();
  }

  // The calling thread becomes the owner (when owner-biased locks are on).
  // Call with the lock not held, before the thread's first Lock as owner.
  void Claim();
  // The owner gives the lock up (thread exit): from here every taker,
  // the caller included, goes through remote_. Call with the lock not held.
  void Disown();
  // A fork child: the threads that took it are gone. `keep_owner`: the
  // owner is the calling thread (whose thread pointer the child keeps).
  void ResetInChild(bool keep_owner);

 private:
  void OwnerLockSlow();
  // RemoteLock with an owner: announce, barrier, wait for it to leave.
  void RemoteLockSlow();

  // The owner's thread pointer, or nullptr. Written only under remote_
  // (Claim, Disown) or in a fork child.
  std::atomic<const void*> owner_{nullptr};
  // Serializes the takers that are not the owner.
  SpinLock remote_;
  std::atomic<uint8_t> active_{0};  // written only by the owner
  std::atomic<uint8_t> wants_{0};   // written only by the remote holding remote_
};

// The holder the call sites already use (`SpinLockHolder hold(&ts->lock)`):
// the owner test is made once, at the take.
template <>
class SpinLockHolder<OwnerBiasedLock> {
 public:
  explicit SpinLockHolder(OwnerBiasedLock* lock)
      : lock_(lock), owner_path_(lock->HeldByOwnerPath()) {
    if (owner_path_) {
      lock_->OwnerLock();
    } else {
      lock_->RemoteLock();
    }
  }
  ~SpinLockHolder() {
    if (owner_path_) {
      lock_->OwnerUnlock();
    } else {
      lock_->RemoteUnlock();
    }
  }
  SpinLockHolder(const SpinLockHolder&) = delete;
  SpinLockHolder& operator=(const SpinLockHolder&) = delete;

 private:
  OwnerBiasedLock* lock_;
  bool owner_path_;
};

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_OWNER_BIASED_LOCK_H_
