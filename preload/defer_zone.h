// preload/defer_zone.h: the per-thread marker "a hook nested here must
// defer its work": this thread is inside a live-table operation (holds, or
// is taking, a shard lock) or inside a hook's call of the real allocator.
//
// A signal handler that allocates or frees runs our hooks on the thread it
// interrupted. Nested in a live-table operation, such a hook must not
// touch the table: the shard lock it would take may be the one the
// interrupted frame holds, and a spin lock taken twice by one thread spins
// forever. Nested in the real allocator, it must not wait for any
// heapsight lock: glibc holds an arena lock there, and a thread in fork()
// holds every heapsight lock (our atfork prepare handler, lifecycle.cc)
// while glibc's fork then waits for that arena lock. The hooks test
// InDeferZone() first and then defer (nested_hooks.h).
//
// Set by the live table around each of its shard locks (ShardLockHolder,
// LockAll/UnlockAll), so it covers every caller (the hooks, InsertInternal,
// fork, exit's walks), and by the generic hooks around the real call
// (CallReal, CallRealFree).
//
// Constraints: initial-exec TLS only (no __tls_get_addr, which may allocate
// on a thread's first use); no allocation, no locks of its own;
// async-signal-safe: the marker is this thread's own counter, and a handler
// nested in its update (even between a load and a store) leaves it as it
// found it, since every handler's raises and lowers pair up.
#ifndef HEAPSIGHT_PRELOAD_DEFER_ZONE_H_
#define HEAPSIGHT_PRELOAD_DEFER_ZONE_H_

#include <atomic>

#include "preload/spin_lock.h"

namespace heapsight::preload {

// Shard locks (or LockAll) this thread holds or is taking, plus real
// allocator calls it is in. Defined in live_table.cc.
extern constinit thread_local int t_defer_zone __attribute__((tls_model("initial-exec")));

inline bool InDeferZone() { return __builtin_expect(t_defer_zone != 0, 0); }

// The marker around a lock (or call): raised before the lock is taken,
// lowered after it is released, so at no instruction in between can a nested hook see the
// marker down while this thread holds (or spins for) the lock. The signal
// fences keep the compiler from moving the marker's update across the
// lock's atomic (an acquire lets earlier stores sink below it, a release
// lets later ones rise above it); the CPU's order does not matter for a
// handler on the same thread.
inline void EnterDeferZone() {
  ++t_defer_zone;
  std::atomic_signal_fence(std::memory_order_seq_cst);
}
inline void LeaveDeferZone() {
  std::atomic_signal_fence(std::memory_order_seq_cst);
  --t_defer_zone;
}

// The real allocator's call in a generic hook, inside the zone.
template <typename R, typename... Params, typename... Args>
inline R CallReal(R (*fn)(Params...), Args... args) {
  EnterDeferZone();
  R r = fn(args...);
  LeaveDeferZone();
  return r;
}
inline void CallRealFree(void (*fn)(void*), void* p) {
  EnterDeferZone();
  fn(p);
  LeaveDeferZone();
}

// SpinLockHolder with the marker: for the live table's shard locks.
class ShardLockHolder {
 public:
  explicit ShardLockHolder(SpinLock* lock) : lock_(lock) {
    EnterDeferZone();
    lock_->Lock();
  }
  ~ShardLockHolder() {
    lock_->Unlock();
    LeaveDeferZone();
  }
  ShardLockHolder(const ShardLockHolder&) = delete;
  ShardLockHolder& operator=(const ShardLockHolder&) = delete;

 private:
  SpinLock* lock_;
};

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_DEFER_ZONE_H_
