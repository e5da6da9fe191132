/* tests/preload/alloc_tally.c: a counting allocator shim for issue 14's
 * "a traced program allocates exactly what it allocates untraced" test.
 *
 * It counts every allocation call that reaches it (malloc, calloc,
 * realloc, reallocarray, posix_memalign, aligned_alloc, memalign, valloc,
 * pvalloc: calls and bytes asked for) and every free of a non-null pointer,
 * from the process's first call on (static counters, no constructor
 * needed), and at the end (its destructor) appends one line
 * "allocs=N bytes=B frees=F" to the file named by ALLOC_TALLY_OUT.
 *
 * Run alone (LD_PRELOAD=liballoc_tally.so) it sees the program's calls.
 * Run behind heapsight (LD_PRELOAD="libheapsight.so liballoc_tally.so") it
 * is heapsight's "real" allocator (dlsym(RTLD_NEXT)): it sees every call
 * heapsight forwards and every call heapsight (or a library it loads)
 * makes on its own. Equal lines mean heapsight added and lost nothing.
 *
 * The blocks come from glibc's __libc_* entry points; no stdio, no
 * allocation of its own. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void __libc_free(void*);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void* __libc_valloc(size_t);
extern void* __libc_pvalloc(size_t);

static unsigned long g_allocs;
static unsigned long g_bytes;
static unsigned long g_frees;

static void Count(size_t bytes) {
  __atomic_add_fetch(&g_allocs, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&g_bytes, bytes, __ATOMIC_RELAXED);
}

static char* PutNum(char* p, unsigned long v) {
  char digits[24];
  int n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  while (n > 0) *p++ = digits[--n];
  return p;
}

__attribute__((destructor)) static void WriteTally(void) {
  const char* path = getenv("ALLOC_TALLY_OUT");
  if (path == NULL) return;
  char line[128];
  char* p = line;
  memcpy(p, "allocs=", 7);
  p = PutNum(p + 7, __atomic_load_n(&g_allocs, __ATOMIC_SEQ_CST));
  memcpy(p, " bytes=", 7);
  p = PutNum(p + 7, __atomic_load_n(&g_bytes, __ATOMIC_SEQ_CST));
  memcpy(p, " frees=", 7);
  p = PutNum(p + 7, __atomic_load_n(&g_frees, __ATOMIC_SEQ_CST));
  *p++ = '\n';
  int saved = errno;
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd >= 0) {
    ssize_t w = write(fd, line, (size_t)(p - line));
    (void)w;
    close(fd);
  }
  errno = saved;
}

void* malloc(size_t n) {
  Count(n);
  return __libc_malloc(n);
}
void free(void* p) {
  if (p == NULL) return;
  __atomic_add_fetch(&g_frees, 1, __ATOMIC_RELAXED);
  __libc_free(p);
}
void* calloc(size_t n, size_t m) {
  size_t total;
  Count(__builtin_mul_overflow(n, m, &total) ? SIZE_MAX : total);
  return __libc_calloc(n, m);
}
void* realloc(void* p, size_t n) {
  Count(n);
  return __libc_realloc(p, n);
}
void* reallocarray(void* p, size_t n, size_t m) {
  size_t total;
  if (__builtin_mul_overflow(n, m, &total)) {
    Count(SIZE_MAX);
    errno = ENOMEM;
    return NULL;
  }
  Count(total);
  return __libc_realloc(p, total);
}
int posix_memalign(void** out, size_t align, size_t n) {
  Count(n);
  void* p = __libc_memalign(align, n);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}
void* aligned_alloc(size_t align, size_t n) {
  Count(n);
  return __libc_memalign(align, n);
}
void* memalign(size_t align, size_t n) {
  Count(n);
  return __libc_memalign(align, n);
}
void* valloc(size_t n) {
  Count(n);
  return __libc_valloc(n);
}
void* pvalloc(size_t n) {
  Count(n);
  return __libc_pvalloc(n);
}
