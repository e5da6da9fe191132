// preload/reentry_guard.h: the per-thread "inside heapsight" flag.
//
// Constraints: initial-exec TLS only (no __tls_get_addr, which may allocate
// on first use in a thread). No allocation, no locks. While the flag is set,
// every hook passes straight to the real function; blocks allocated that way
// are entered in the live table as internal (see live_table.h), so freeing
// them later never reports a bogus bad free.
#ifndef HEAPSIGHT_PRELOAD_REENTRY_GUARD_H_
#define HEAPSIGHT_PRELOAD_REENTRY_GUARD_H_

namespace heapsight::preload {

extern constinit thread_local int t_reentry_depth __attribute__((tls_model("initial-exec")));

inline bool InHeapsight() { return t_reentry_depth != 0; }

class ReentryGuard {
 public:
  ReentryGuard() { ++t_reentry_depth; }
  ~ReentryGuard() { --t_reentry_depth; }
  ReentryGuard(const ReentryGuard&) = delete;
  ReentryGuard& operator=(const ReentryGuard&) = delete;
};

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_REENTRY_GUARD_H_
