// tests/cli/temporaries_program.cc: a program whose temporary allocations
// per call site are known exactly (tests/cli/site_temporaries_test.cc, and
// the heaptrack comparison in docs/temporaries.md). One thread; every
// allocating function is noinline so each is a site of its own.
//
//   temp_loop        100 x malloc(32), each freed at once       100 temporary
//   make_inner        50 x malloc(16), freed at once             50 temporary
//   make_outer        50 x malloc(64), freed after make_inner     0
//   make_kept         40 x malloc(8), freed between alloc/free    0
//   make_free_between 40 x malloc(24), freed after a make_kept
//                        block is freed (a free in between)      0 (heaptrack: 40)
//   grow_realloc      20 x realloc to 100, then freed            20 (realloc site)
//   start_realloc     20 x malloc(10), then realloc'd             0
//   new_array         30 x new int[4], delete[] at once          30
//   make_long_lived  200 x malloc(48), freed oldest first         0
//
// Exits 0; prints nothing.
#include <cstdlib>

#define NOINLINE __attribute__((noinline))

namespace {

// Keeps the compiler from eliding a malloc/free pair.
void* volatile g_sink;

NOINLINE void* temp_alloc() { return std::malloc(32); }
NOINLINE void temp_loop() {
  for (int i = 0; i < 100; ++i) {
    void* p = temp_alloc();
    g_sink = p;
    std::free(p);
  }
}

NOINLINE void* make_outer() { return std::malloc(64); }
NOINLINE void* make_inner() { return std::malloc(16); }
NOINLINE void nested_pairs() {
  for (int i = 0; i < 50; ++i) {
    void* outer = make_outer();
    void* inner = make_inner();
    g_sink = inner;
    std::free(inner);
    std::free(outer);
  }
}

NOINLINE void* make_kept() { return std::malloc(8); }
NOINLINE void* make_free_between() { return std::malloc(24); }
NOINLINE void free_between() {
  for (int i = 0; i < 40; ++i) {
    void* kept = make_kept();
    void* p = make_free_between();
    g_sink = p;
    std::free(kept);  // another block freed before p: p is not temporary
    std::free(p);
  }
}

NOINLINE void* start_realloc() { return std::malloc(10); }
NOINLINE void* grow_realloc(void* p) { return std::realloc(p, 100); }
NOINLINE void realloc_then_free() {
  for (int i = 0; i < 20; ++i) {
    void* p = start_realloc();
    g_sink = p;
    p = grow_realloc(p);
    g_sink = p;
    std::free(p);
  }
}

NOINLINE int* new_array() { return new int[4]; }
NOINLINE void new_delete() {
  for (int i = 0; i < 30; ++i) {
    int* p = new_array();
    g_sink = p;
    delete[] p;
  }
}

NOINLINE void* make_long_lived() { return std::malloc(48); }
NOINLINE void long_lived() {
  void* blocks[200];
  for (void*& b : blocks) b = make_long_lived();
  for (void* b : blocks) std::free(b);
}

}  // namespace

int main() {
  temp_loop();
  nested_pairs();
  free_between();
  realloc_then_free();
  new_delete();
  long_lived();
  return 0;
}
