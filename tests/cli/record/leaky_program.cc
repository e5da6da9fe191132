// tests/cli/record/leaky_program.cc: leaks three 100-byte blocks, unless run with
// the argument "clean", then frees everything. Prints one line either way,
// with write(2): no stdio buffer, so these are the program's only blocks.
#include <unistd.h>

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
  const char* line = clean ? "no leaks\n" : "leaked 3 blocks\n";
  return write(STDOUT_FILENO, line, std::strlen(line)) < 0 ? 1 : 0;
}
