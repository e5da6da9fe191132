// tests/scenarios/programs/diff_program.cc: two versions of one program for
// `heapsight diff` (tests/analyzer/report/trace_diff_test.cc).
//
//                  old                      new
//   ParseRequest   100 x malloc(1024)       10 x malloc(1024)      (all freed)
//   BuildIndex     50 x malloc(4096)        the same               (all freed)
//   NewFeature     -                        5 x malloc(300)        (freed)
//   LeakyCache     -                        7 x malloc(64), never freed
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

namespace {

void* g_leaked[7];

void AllocateAndFree(int n, size_t size) {
  for (int i = 0; i < n; ++i) {
    void* p = malloc(size);
    memset(p, 1, 16);
    free(p);
  }
}

}  // namespace

// extern "C" and noinline: the diff matches sites by these names.
extern "C" __attribute__((noinline)) void ParseRequest(int n) { AllocateAndFree(n, 1024); }
extern "C" __attribute__((noinline)) void BuildIndex() { AllocateAndFree(50, 4096); }
extern "C" __attribute__((noinline)) void NewFeature() { AllocateAndFree(5, 300); }
extern "C" __attribute__((noinline)) void LeakyCache() {
  for (void*& p : g_leaked) p = malloc(64);
}

int main(int argc, char** argv) {
  bool is_new = argc > 1 && strcmp(argv[1], "new") == 0;
  ParseRequest(is_new ? 10 : 100);
  BuildIndex();
  if (is_new) {
    NewFeature();
    LeakyCache();
  }
  puts("diff done");
  return 0;
}
