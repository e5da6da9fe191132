// tests/scenarios/programs/sampled_apis_program.cc: every allocation API
// through sampled mode's fast paths (preload/recorder.h), for
// tests/scenarios/sampled_frees_test.cc.
//
// kRounds times, one block of 3,000-3,999 bytes through each of 16
// allocation calls, freed at once through the matching call:
//   malloc/free, calloc/free, realloc(NULL)/free, malloc(100) + realloc
//   to the size/free, reallocarray(NULL)/free, posix_memalign/free,
//   aligned_alloc/free, memalign/free, valloc/free, pvalloc/free,
//   malloc/free_sized, new[]/delete[], new/sized delete, aligned
//   new/aligned delete, nothrow new/nothrow delete, aligned nothrow
//   new[]/aligned delete[].
// Then each allocation call once with a size no allocator can serve
// (SIZE_MAX, or a product that overflows), plus realloc of a live block
// to SIZE_MAX: 15 failures. Each must fail as without heapsight (NULL and
// errno ENOMEM, posix_memalign's ENOMEM, std::bad_alloc); the program
// says so, or exits 1.
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <new>

namespace {

constexpr int kRounds = 500;
constexpr std::align_val_t kAlign{64};

volatile unsigned char g_sink;
// Read at run time, so the compiler neither warns about nor folds the
// impossible sizes.
volatile size_t g_huge = SIZE_MAX;
volatile size_t g_half = SIZE_MAX / 2;

size_t MagicSize(int i) { return 3000 + (static_cast<size_t>(i) * 37) % 1000; }

void Touch(void* p, size_t n) {
  if (p == nullptr) {
    fprintf(stderr, "allocation of %zu bytes failed\n", n);
    exit(1);
  }
  memset(p, 7, 16);
  g_sink = static_cast<unsigned char*>(p)[n - 1];
}

int g_bad = 0;

// A NULL result with errno ENOMEM, as glibc gives. errno is read here,
// after the call (an argument's order of evaluation is unspecified).
void ExpectEnomem(const char* what, void* p) {
  int err = errno;
  if (p != nullptr || err != ENOMEM) {
    fprintf(stderr, "%s: %p, errno %d\n", what, p, err);
    ++g_bad;
  }
}

// glibc's realloc(NULL, n) folded to malloc(n) by the compiler would not
// be a realloc call: the null pointer is read at run time.
void* volatile g_null = nullptr;

}  // namespace

int main() {
  using FreeSized = void (*)(void*, size_t);
  auto free_sized = reinterpret_cast<FreeSized>(dlsym(RTLD_DEFAULT, "free_sized"));
  if (free_sized == nullptr) {
    fprintf(stderr, "no free_sized (run under libheapsight.so)\n");
    return 1;
  }
  for (int i = 0; i < kRounds; ++i) {
    size_t n = MagicSize(i);
    void* p = malloc(n);
    Touch(p, n);
    free(p);
    p = calloc(1, n);
    Touch(p, n);
    free(p);
    p = realloc(g_null, n);
    Touch(p, n);
    free(p);
    p = malloc(100);
    Touch(p, 100);
    p = realloc(p, n);
    Touch(p, n);
    free(p);
    p = reallocarray(g_null, 1, n);
    Touch(p, n);
    free(p);
    p = nullptr;
    if (posix_memalign(&p, 64, n) != 0) p = nullptr;
    Touch(p, n);
    free(p);
    p = aligned_alloc(64, n);
    Touch(p, n);
    free(p);
    p = memalign(64, n);
    Touch(p, n);
    free(p);
    p = valloc(n);
    Touch(p, n);
    free(p);
    p = pvalloc(n);
    Touch(p, n);
    free(p);
    p = malloc(n);
    Touch(p, n);
    free_sized(p, n);
    auto* a = new char[n];
    Touch(a, n);
    delete[] a;
    p = ::operator new(n);
    Touch(p, n);
    ::operator delete(p, n);
    p = ::operator new(n, kAlign);
    Touch(p, n);
    ::operator delete(p, kAlign);
    p = ::operator new(n, std::nothrow);
    Touch(p, n);
    ::operator delete(p, std::nothrow);
    p = ::operator new[](n, kAlign, std::nothrow);
    Touch(p, n);
    ::operator delete[](p, kAlign);
  }

  // The failures. errno is set to 0 first: each failing call must set it.
  const size_t huge = g_huge, half = g_half;
  errno = 0;
  ExpectEnomem("malloc", malloc(huge));
  errno = 0;
  ExpectEnomem("calloc", calloc(half, 4));
  errno = 0;
  ExpectEnomem("realloc(NULL)", realloc(g_null, huge));
  void* live = malloc(64);
  Touch(live, 64);
  void* volatile kept = live;  // the failed realloc leaves it live
  errno = 0;
  ExpectEnomem("realloc(live)", realloc(live, huge));
  free(kept);
  errno = 0;
  ExpectEnomem("reallocarray", reallocarray(g_null, half, 4));
  void* p = nullptr;
  if (posix_memalign(&p, 64, huge) != ENOMEM || p != nullptr) {
    fprintf(stderr, "posix_memalign did not fail with ENOMEM\n");
    ++g_bad;
  }
  errno = 0;
  ExpectEnomem("aligned_alloc", aligned_alloc(64, huge));
  errno = 0;
  ExpectEnomem("memalign", memalign(64, huge));
  errno = 0;
  ExpectEnomem("valloc", valloc(huge));
  errno = 0;
  ExpectEnomem("pvalloc", pvalloc(huge));
  if (::operator new(huge, std::nothrow) != nullptr) ++g_bad;
  if (::operator new[](huge, kAlign, std::nothrow) != nullptr) ++g_bad;
  int caught = 0;
  try {
    g_sink = *static_cast<unsigned char*>(::operator new(huge));
  } catch (const std::bad_alloc&) {
    ++caught;
  }
  try {
    g_sink = *static_cast<unsigned char*>(::operator new[](huge));
  } catch (const std::bad_alloc&) {
    ++caught;
  }
  try {
    g_sink = *static_cast<unsigned char*>(::operator new(huge, kAlign));
  } catch (const std::bad_alloc&) {
    ++caught;
  }
  if (caught != 3) ++g_bad;
  if (g_bad != 0) return 1;
  puts("sampled apis done");
  return 0;
}
