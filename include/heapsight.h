/* include/heapsight.h: the in-program API of heapsight.
 *
 * A program may call these functions whether or not heapsight is preloaded.
 * The functions are looked up at run time with dlsym(RTLD_DEFAULT, ...), so a
 * program never needs heapsight to link or to run: without the preload every
 * call is a no-op that returns -1.
 *
 *   heapsight_write_profile("mem.pb.gz");   // like Go's pprof.WriteHeapProfile
 *   heapsight_marker("after-warmup");       // a named point on the timeline
 *   heapsight_leak_check();                 // classify live blocks now
 *
 * Plain C; include it from C or C++. Link with -ldl on glibc < 2.34.
 */
#ifndef HEAPSIGHT_HEAPSIGHT_H_
#define HEAPSIGHT_HEAPSIGHT_H_

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <dlfcn.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef int (*heapsight_profile_fn)(const char *path);
typedef int (*heapsight_marker_fn)(const char *name);

/* Writes a gzipped pprof heap profile of the live heap now to `path`.
 * Returns 0 on success, -1 if heapsight is not preloaded or the profile could
 * not be written. Blocks until the file is complete. */
static inline int heapsight_write_profile(const char *path) {
  heapsight_profile_fn fn =
      (heapsight_profile_fn)dlsym(RTLD_DEFAULT, "__heapsight_write_profile");
  return fn ? fn(path) : -1;
}

/* Puts a named marker on the trace's timeline; reports and pprof can refer to
 * it (`heapsight pprof --at=marker:NAME`). Returns 0, or -1 without heapsight. */
static inline int heapsight_marker(const char *name) {
  heapsight_marker_fn fn = (heapsight_marker_fn)dlsym(RTLD_DEFAULT, "__heapsight_marker");
  return fn ? fn(name) : -1;
}

typedef long (*heapsight_leak_check_fn)(void);

/* Classifies every live block by reachability now (as at exit: definitely,
 * indirectly, possibly lost, still reachable) and writes the result to the
 * trace. Returns the number of definitely and possibly lost blocks, or -1
 * without heapsight (or when the scan could not run). */
static inline long heapsight_leak_check(void) {
  heapsight_leak_check_fn fn =
      (heapsight_leak_check_fn)dlsym(RTLD_DEFAULT, "__heapsight_leak_check");
  return fn ? fn() : -1;
}

#ifdef __cplusplus
}
#endif

#endif /* HEAPSIGHT_HEAPSIGHT_H_ */
