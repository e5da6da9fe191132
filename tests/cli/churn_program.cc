// tests/cli/churn_program.cc: a program for the command-line tests
// (conveniences_test.py): `churn_program N` makes N malloc/free pairs (a
// trace large enough for the progress bar), then leaks 3 blocks of 100
// bytes that nothing points to (definite leaks, for the leak gate).
#include <cstdio>
#include <cstdlib>

// Through a volatile so the compiler keeps the allocation; cleared after.
void* volatile g_sink = nullptr;

namespace {

// Not inlined, so every leak has this frame.
__attribute__((noinline)) void LeakOne() { g_sink = std::malloc(100); }

}  // namespace

int main(int argc, char** argv) {
  long n = argc > 1 ? std::strtol(argv[1], nullptr, 10) : 0;
  for (long i = 0; i < n; ++i) {
    void* volatile p = std::malloc(16 + static_cast<size_t>(i % 64));
    std::free(p);
  }
  for (int i = 0; i < 3; ++i) LeakOne();
  g_sink = nullptr;
  std::puts("done");
  return 0;
}
