// preload/spin_lock.h: a one-byte spin lock for the preload's own tables.
//
// Constraints: no allocation, no syscalls except sched_yield under
// contention; usable before the real malloc is known and across fork (the
// atfork handlers take and release these). Locks are held for a few hundred
// instructions at most, except the trace-file lock (one write(2)).
#ifndef HEAPSIGHT_PRELOAD_SPIN_LOCK_H_
#define HEAPSIGHT_PRELOAD_SPIN_LOCK_H_

#include <sched.h>

#include <atomic>

namespace heapsight::preload {

class SpinLock {
 public:
  constexpr SpinLock() = default;
  void Lock() {
    for (int spins = 0; locked_.exchange(true, std::memory_order_acquire); ++spins) {
      while (locked_.load(std::memory_order_relaxed)) {
        if (++spins > 64) {
          sched_yield();
          spins = 0;
        } else {
          __builtin_ia32_pause();
        }
      }
    }
  }
  bool TryLock() { return !locked_.exchange(true, std::memory_order_acquire); }
  void Unlock() { locked_.store(false, std::memory_order_release); }
  // Only for a fork child, whose other threads are gone.
  void ResetInChild() { locked_.store(false, std::memory_order_relaxed); }

 private:
  std::atomic<bool> locked_{false};
};

class SpinLockHolder {
 public:
  explicit SpinLockHolder(SpinLock* lock) : lock_(lock) { lock_->Lock(); }
  ~SpinLockHolder() { lock_->Unlock(); }
  SpinLockHolder(const SpinLockHolder&) = delete;
  SpinLockHolder& operator=(const SpinLockHolder&) = delete;

 private:
  SpinLock* lock_;
};

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_SPIN_LOCK_H_
