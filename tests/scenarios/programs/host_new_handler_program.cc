// tests/scenarios/programs/host_new_handler_program.cc: the nothrow
// operator new forms with a new-handler installed, which the preload runs
// inside the host's C++ runtime (preload/cxx_runtime.h). Run with
// HEAPSIGHT_HEAP_LIMIT=1M. Exit status 0 when every call behaved as
// libstdc++'s operator new does; the test counts the records.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <new>

void* volatile g_sink;
int g_calls = 0;
void* g_reserve = nullptr;

void GiveUpOnThirdCall() {
  if (++g_calls == 3) std::set_new_handler(nullptr);
}
void Throw() {
  ++g_calls;
  throw std::bad_alloc();
}
// Frees the reserve (so the retry fits under the limit) and steps down.
void FreeReserve() {
  ++g_calls;
  free(g_reserve);
  g_reserve = nullptr;
  std::set_new_handler(nullptr);
}

int main() {
  // The handler loop runs until the handler removes itself: nullptr.
  std::set_new_handler(GiveUpOnThirdCall);
  if (operator new(SIZE_MAX / 2, std::nothrow) != nullptr || g_calls != 3) return 1;
  // A handler that throws: nothrow new catches and returns nullptr.
  g_calls = 0;
  std::set_new_handler(Throw);
  if (operator new[](SIZE_MAX / 2, std::nothrow) != nullptr || g_calls != 1) return 2;
  g_calls = 0;
  if (operator new(SIZE_MAX / 2, std::align_val_t{64}, std::nothrow) != nullptr || g_calls != 1) {
    return 3;
  }
  // A handler that makes room: the retry succeeds (one allocation).
  g_calls = 0;
  g_reserve = malloc(700000);
  std::set_new_handler(FreeReserve);
  void* p = operator new(600000, std::nothrow);
  if (p == nullptr || g_calls != 1) return 4;
  operator delete(p);
  // The throwing form still throws through a handler that throws.
  g_calls = 0;
  std::set_new_handler(Throw);
  try {
    g_sink = operator new(SIZE_MAX / 2);
    return 5;
  } catch (const std::bad_alloc&) {
  }
  if (g_calls != 1) return 6;
  puts("new-handler done");
  return 0;
}
