// tests/record/leaky_program.cc: leaks three 100-byte blocks, unless run with
// the argument "clean", then frees everything. Prints one line either way.
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {
void* volatile g_sink;  // keeps the allocations from being optimized out
}  // namespace

int main(int argc, char** argv) {
  bool clean = argc > 1 && std::strcmp(argv[1], "clean") == 0;
  for (int i = 0; i < 3; ++i) {
    void* p = std::malloc(100);
    g_sink = p;
    if (clean) std::free(p);
  }
  g_sink = nullptr;
  std::puts(clean ? "no leaks" : "leaked 3 blocks");
  return 0;
}
