// tests/scenarios/programs/deep_stack_program.cc: one block leaked at the
// bottom of a 200-deep recursion, so the test can count the recursion's
// frames in its stack and find main above them.
#include <stdlib.h>

void* volatile g_sink;

extern "C" __attribute__((noinline)) void LeakAtTheBottom() {
  g_sink = malloc(4242);
  g_sink = nullptr;  // lost
  asm volatile("");  // keep the call from becoming a tail call
}

extern "C" __attribute__((noinline)) void Recurse(int depth) {
  if (depth > 1) {
    Recurse(depth - 1);
  } else {
    LeakAtTheBottom();
  }
  asm volatile("");  // no tail call: one frame per level
}

int main() {
  Recurse(200);
  return 0;
}
