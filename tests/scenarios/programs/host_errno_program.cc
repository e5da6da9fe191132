// tests/scenarios/programs/host_errno_program.cc: issue 12, host harm 4.
// Sets errno before every hooked call and prints what the call left in it,
// for each hook family, first in the main thread (its first hooked calls
// included), then in a new thread. argv[1] == "huge-first": the very first
// call is malloc(g_huge) (must fail with ENOMEM). argv[2]: a shared
// library for dlopen/dlclose.
#include <dlfcn.h>
#include <malloc.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <new>

namespace {

char g_out[8192];
size_t g_len = 0;
const char* g_library = nullptr;
// Impossible sizes, hidden from the compiler's size checks.
volatile size_t g_huge = SIZE_MAX;

// Collected in memory (printf could itself allocate and change errno).
void Note(const char* what, int err) {
  int n = snprintf(g_out + g_len, sizeof g_out - g_len, "%s %d\n", what, err);
  if (n > 0) g_len += static_cast<size_t>(n);
}

#define CHECK_ERRNO(what, call) \
  do {                          \
    errno = 55;                 \
    call;                       \
    Note(what, errno);          \
  } while (0)

void Sequence(const char* where) {
  void* p = nullptr;
  void* q = nullptr;
  char label[64];
  auto L = [&](const char* name) {
    snprintf(label, sizeof label, "%s %s", where, name);
    return label;
  };
  CHECK_ERRNO(L("malloc"), p = malloc(10));
  CHECK_ERRNO(L("malloc-again"), q = malloc(20));
  CHECK_ERRNO(L("free"), free(q));
  CHECK_ERRNO(L("malloc-huge"), q = malloc(g_huge));
  CHECK_ERRNO(L("calloc"), q = calloc(3, 7));
  CHECK_ERRNO(L("calloc-overflow"), free(calloc(g_huge / 2, 3)));
  CHECK_ERRNO(L("realloc"), q = realloc(q, 300));
  CHECK_ERRNO(L("realloc-huge"), free(realloc(q, g_huge)));
  CHECK_ERRNO(L("free-realloced"), free(q));
  CHECK_ERRNO(L("reallocarray"), q = reallocarray(nullptr, 10, 10));
  CHECK_ERRNO(L("reallocarray-overflow"), free(reallocarray(q, g_huge, 2)));
  CHECK_ERRNO(L("free-reallocarray"), free(q));
  CHECK_ERRNO(L("memalign"), q = memalign(64, 50));
  CHECK_ERRNO(L("free-memalign"), free(q));
  CHECK_ERRNO(L("valloc"), q = valloc(100));
  CHECK_ERRNO(L("free-valloc"), free(q));
  CHECK_ERRNO(L("posix_memalign"), (void)posix_memalign(&q, 64, 100));
  CHECK_ERRNO(L("free-aligned"), free(q));
  CHECK_ERRNO(L("aligned_alloc"), q = aligned_alloc(128, 256));
  CHECK_ERRNO(L("free-aligned2"), free(q));
  CHECK_ERRNO(L("new"), q = new char[33]);
  CHECK_ERRNO(L("delete"), delete[] static_cast<char*>(q));
  CHECK_ERRNO(L("new-nothrow-huge"), q = ::operator new(g_huge / 2, std::nothrow));
  CHECK_ERRNO(L("dlopen"), q = dlopen(g_library, RTLD_NOW));
  CHECK_ERRNO(L("dlclose"), (void)(q != nullptr ? dlclose(q) : -1));
  CHECK_ERRNO(L("free-first"), free(p));
}

void* Thread(void*) {
  Sequence("thread");
  return nullptr;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  g_library = argc > 2 ? argv[2] : "libm.so.6";
  if (strcmp(mode, "huge-first") == 0) {
    errno = 55;
    void* p = malloc(g_huge);
    int err = errno;
    printf("huge-first %s %d\n", p == nullptr ? "null" : "non-null", err);
    return 0;
  }
  Sequence("main");
  pthread_t t;
  if (pthread_create(&t, nullptr, Thread, nullptr) != 0) return 3;
  pthread_join(t, nullptr);
  fwrite(g_out, 1, g_len, stdout);
  return 0;
}
