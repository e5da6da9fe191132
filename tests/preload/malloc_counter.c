/* tests/preload/malloc_counter.c: a counting malloc shim for the
 * "never re-enters malloc" test. Preloaded AFTER libheapsight.so, so
 * heapsight's dlsym(RTLD_NEXT) finds these functions as the "real" ones:
 * every allocation call that reaches this library was either forwarded by a
 * heapsight hook or made by heapsight (or by something it called) on its
 * own. Between malloc_counter_reset() and malloc_counter_read() it counts
 * all calls, and those whose return address lies inside libheapsight.so.
 * The blocks come from glibc's __libc_* entry points, so no dlsym is
 * needed here. */
#define _GNU_SOURCE
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <string.h>

extern void* __libc_malloc(size_t);
extern void __libc_free(void*);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void* __libc_valloc(size_t);
extern void* __libc_pvalloc(size_t);

static volatile int g_enabled;
static long g_count;
static long g_from_heapsight;
static uintptr_t g_lo, g_hi;

static int FindHeapsight(struct dl_phdr_info* info, size_t size, void* data) {
  (void)size;
  (void)data;
  if (info->dlpi_name == NULL || strstr(info->dlpi_name, "libheapsight.so") == NULL) return 0;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)* ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD) continue;
    uintptr_t a = info->dlpi_addr + ph->p_vaddr;
    if (g_lo == 0 || a < g_lo) g_lo = a;
    if (a + ph->p_memsz > g_hi) g_hi = a + ph->p_memsz;
  }
  return 1;
}

__attribute__((visibility("default"))) void malloc_counter_reset(void) {
  dl_iterate_phdr(FindHeapsight, NULL);
  __atomic_store_n(&g_count, 0, __ATOMIC_SEQ_CST);
  __atomic_store_n(&g_from_heapsight, 0, __ATOMIC_SEQ_CST);
  g_enabled = 1;
}

__attribute__((visibility("default"))) void malloc_counter_read(long* count, long* from_hs) {
  g_enabled = 0;
  *count = __atomic_load_n(&g_count, __ATOMIC_SEQ_CST);
  *from_hs = __atomic_load_n(&g_from_heapsight, __ATOMIC_SEQ_CST);
}

#define COUNT()                                                                  \
  do {                                                                           \
    if (g_enabled) {                                                             \
      uintptr_t ra = (uintptr_t)__builtin_return_address(0);                     \
      __atomic_add_fetch(&g_count, 1, __ATOMIC_RELAXED);                         \
      if (ra >= g_lo && ra < g_hi) __atomic_add_fetch(&g_from_heapsight, 1, __ATOMIC_RELAXED); \
    }                                                                            \
  } while (0)

void* malloc(size_t n) {
  COUNT();
  return __libc_malloc(n);
}
void free(void* p) {
  if (p == NULL) return;  /* free(NULL) is not an allocation call */
  COUNT();
  __libc_free(p);
}
void* calloc(size_t n, size_t m) {
  COUNT();
  return __libc_calloc(n, m);
}
void* realloc(void* p, size_t n) {
  COUNT();
  return __libc_realloc(p, n);
}
void* reallocarray(void* p, size_t n, size_t m) {
  COUNT();
  size_t total;
  if (__builtin_mul_overflow(n, m, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return __libc_realloc(p, total);
}
int posix_memalign(void** out, size_t align, size_t n) {
  COUNT();
  void* p = __libc_memalign(align, n);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}
void* aligned_alloc(size_t align, size_t n) {
  COUNT();
  return __libc_memalign(align, n);
}
void* memalign(size_t align, size_t n) {
  COUNT();
  return __libc_memalign(align, n);
}
void* valloc(size_t n) {
  COUNT();
  return __libc_valloc(n);
}
void* pvalloc(size_t n) {
  COUNT();
  return __libc_pvalloc(n);
}
