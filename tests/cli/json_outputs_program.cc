// tests/cli/json_outputs_program.cc: a program for the consistency tests of
// the report commands (tests/cli/json_outputs_test.cc): one function,
// load(int), grows three vectors by resize, reserve and push_back, so
// three call sites differ only in the library frame above load; and a
// definite leak and a still-reachable block for `leaks`.
//
//   json_outputs_program N
//     load(N): resize to N ints, reserve N ints, N push_backs (kept alive
//              until the end of load, then freed)
//     lose():  malloc(100), pointer dropped (definitely lost)
//     keep():  malloc(200) held by a global (still reachable)
//     grow():  50 x malloc(1000), 2 ms apart, freed at the end (a steady
//              climb for `growth`)
//
// Exits 0; prints nothing.
#include <unistd.h>

#include <cstdlib>
#include <string>
#include <vector>

#define NOINLINE __attribute__((noinline))

void* volatile g_reachable;
void* volatile g_sink;

NOINLINE void load(int n) {
  std::vector<int> a;
  a.resize(static_cast<size_t>(n));
  std::vector<int> b;
  b.reserve(static_cast<size_t>(n));
  std::vector<int> c;
  for (int i = 0; i < n; ++i) c.push_back(i);
  g_sink = a.data();
  g_sink = b.data();
  g_sink = c.data();
}

NOINLINE void lose() {
  void* p = std::malloc(100);
  g_sink = p;
  g_sink = nullptr;
}

NOINLINE void keep() { g_reachable = std::malloc(200); }

NOINLINE void* grow_one() { return std::malloc(1000); }
NOINLINE void grow() {
  void* blocks[50];
  for (void*& b : blocks) {
    b = grow_one();
    usleep(2000);
  }
  for (void* b : blocks) std::free(b);
}

int main(int argc, char** argv) {
  int n = argc > 1 ? std::stoi(argv[1]) : 1000;
  load(n);
  lose();
  keep();
  grow();
  return 0;
}
