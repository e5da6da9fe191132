// preload/host_guards.h: scoped guards that keep the program's per-thread
// state as the program left it while heapsight works inside a hook: errno,
// and the thread's cancelability.
//
// ErrnoKeeper: every hook leaves errno exactly as the real function left it
// (issue 12: libunwind's pipe read turned `errno=55; malloc(10)` into 11).
// The recorder's entry points take one after the real call (so the saved
// value is the real function's) and restore it on return; work done before
// the real call restores the entry value first (EnsureRealFunctions).
//
// NoCancel: no heapsight code may be cancelled while it holds a lock or
// has half-written state (issue 12: write(2) in a flush is a cancellation
// point, so pthread_cancel killed threads holding their state lock and the
// file lock, and every later flush spun for ever). Every region of ours that
// reaches a cancellation point (write, open, read, close, nanosleep,
// waitpid) disables cancellation around it. pthread_setcancelstate does not
// allocate, take a lock or touch errno (glibc: one compare-and-swap on the
// thread descriptor); a pending cancel is acted upon at the program's next
// cancellation point, outside heapsight. Not on the per-event path: only
// around flushes, RSS samples and the rare /proc reads.
//
// Constraints: header-only, no allocation, no locks; both are
// async-signal-safe in practice (glibc), though POSIX does not list
// pthread_setcancelstate.
#ifndef HEAPSIGHT_PRELOAD_HOST_GUARDS_H_
#define HEAPSIGHT_PRELOAD_HOST_GUARDS_H_

#include <errno.h>
#include <pthread.h>

namespace heapsight::preload {

// True on heapsight's service task (service_task.h), a thread glibc does
// not know: it has no real thread descriptor, so NoCancel leaves
// pthread_setcancelstate alone there (nothing can cancel that task anyway).
inline thread_local bool t_in_service_task __attribute__((tls_model("initial-exec"))) = false;

class ErrnoKeeper {
 public:
  ErrnoKeeper() : saved_(errno) {}
  ~ErrnoKeeper() { errno = saved_; }
  ErrnoKeeper(const ErrnoKeeper&) = delete;
  ErrnoKeeper& operator=(const ErrnoKeeper&) = delete;

 private:
  int saved_;
};

class NoCancel {
 public:
  NoCancel() {
    if (!t_in_service_task) pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &old_);
  }
  ~NoCancel() {
    if (old_ != PTHREAD_CANCEL_DISABLE) pthread_setcancelstate(old_, nullptr);
  }
  NoCancel(const NoCancel&) = delete;
  NoCancel& operator=(const NoCancel&) = delete;

 private:
  int old_ = PTHREAD_CANCEL_DISABLE;
};

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_HOST_GUARDS_H_
