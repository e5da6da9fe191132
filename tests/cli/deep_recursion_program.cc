// tests/cli/deep_recursion_program.cc: allocations at the bottom of a
// 300-deep recursion, deeper than the recorder's default depth cap (256
// frames, HEAPSIGHT_MAX_DEPTH), so every stack is cut
// (tests/cli/cut_stacks_test.cc). At the bottom, GrowAtTheBottom keeps
// argv[1] blocks of 100 bytes (default 400), one every 250 us: a site that
// grows for `heapsight growth`, and a different total per argument for
// `heapsight diff`. Exits 0; prints nothing.
#include <stdlib.h>
#include <time.h>

void* volatile g_sink;

namespace {

int g_blocks = 400;

__attribute__((noinline)) void GrowAtTheBottom() {
  const timespec pause = {0, 250 * 1000};
  for (int i = 0; i < g_blocks; ++i) {
    g_sink = malloc(100);  // never freed: grows, and leaks
    nanosleep(&pause, nullptr);
  }
  asm volatile("");  // keep the call from becoming a tail call
}

__attribute__((noinline)) void Recurse(int depth) {
  if (depth > 1) {
    Recurse(depth - 1);
  } else {
    GrowAtTheBottom();
  }
  asm volatile("");  // no tail call: one frame per level
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) g_blocks = atoi(argv[1]);
  Recurse(300);
  return 0;
}
