// tests/scenarios/programs/api_program.cc: calls every allocation API with
// a distinct "magic" size (1000-1100) so the test can count exactly.
#include <stdint.h>
#include <stdio.h>
#include <malloc.h>
#include <stdlib.h>

#include <new>

extern "C" void free_sized(void*, size_t) __attribute__((weak));
extern "C" void free_aligned_sized(void*, size_t, size_t) __attribute__((weak));

// Keeps the compiler from eliding or fusing allocations.
void* volatile g_sink;

// A new-handler that gives up on its third call.
int g_handler_calls = 0;
void GiveUpOnThirdCall() {
  if (++g_handler_calls == 3) std::set_new_handler(nullptr);
}

int main() {
  for (int i = 0; i < 3; ++i) {
    void* p = malloc(1001);
    g_sink = p;
    free(p);
  }
  void* p = calloc(2, 501);  // 1002
  free(p);
  void* volatile null_block = nullptr;  // keeps the compiler from making this malloc
  p = realloc(null_block, 1003);    // kAlloc, api realloc
  p = realloc(p, 1004);             // kRealloc (growth)
  g_sink = realloc(p, 0);           // kFree, api realloc (glibc frees, returns NULL)
  p = malloc(1005);
  void* q = realloc(p, SIZE_MAX / 2);  // fails: kAllocFailed, p still live
  if (q != nullptr) return 10;
  free(p);
  p = reallocarray(null_block, 2, 503);  // 1006
  p = reallocarray(p, 2, 504);        // 1008
  free(p);
  if (posix_memalign(&p, 64, 1009) != 0) return 11;
  free(p);
  p = aligned_alloc(64, 1010);
  free(p);
  p = memalign(64, 1011);
  free(p);
  p = valloc(1012);
  free(p);
  p = pvalloc(1013);
  free(p);
  if (malloc(SIZE_MAX / 2) != nullptr) return 12;  // kAllocFailed, api malloc

  p = operator new(1015);
  operator delete(p);
  p = operator new(1016);
  operator delete(p, size_t{1016});
  p = operator new[](1017);
  operator delete[](p);
  p = operator new[](1018);
  operator delete[](p, size_t{1018});
  p = operator new(1019, std::nothrow);
  operator delete(p, std::nothrow);
  p = operator new[](1020, std::nothrow);
  operator delete[](p, std::nothrow);
  std::align_val_t a{64};
  p = operator new(1021, a);
  operator delete(p, a);
  p = operator new[](1022, a);
  operator delete[](p, a);
  p = operator new(1023, a);
  operator delete(p, size_t{1023}, a);
  p = operator new[](1024, a);
  operator delete[](p, size_t{1024}, a);
  p = operator new(1025, a, std::nothrow);
  operator delete(p, a, std::nothrow);
  p = operator new[](1026, a, std::nothrow);
  operator delete[](p, a, std::nothrow);
  if (operator new(SIZE_MAX / 2, std::nothrow) != nullptr) return 13;  // kAllocFailed
  try {
    g_sink = operator new(SIZE_MAX / 2);
    return 14;
  } catch (const std::bad_alloc&) {
    // kAllocFailed recorded before the throw
  }
  // operator new loops on the new-handler until it is removed, then throws.
  std::set_new_handler(GiveUpOnThirdCall);
  try {
    g_sink = operator new[](SIZE_MAX / 2);
    return 15;
  } catch (const std::bad_alloc&) {
  }
  if (g_handler_calls != 3) return 16;
  if (free_sized != nullptr && free_aligned_sized != nullptr) {
    p = malloc(1027);
    free_sized(p, 1027);
    p = aligned_alloc(64, 1028);
    free_aligned_sized(p, 64, 1028);
  }
  g_sink = malloc(1029);  // stays live
  free(nullptr);          // no record
  puts("api done");
  return 0;
}
