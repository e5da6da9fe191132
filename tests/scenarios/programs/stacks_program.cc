// tests/scenarios/programs/stacks_program.cc: allocations from a known
// function, so the test can check that the function appears in the stacks.
#include <stdlib.h>

void* volatile g_sink;

extern "C" __attribute__((noinline)) void AllocateHere() {
  g_sink = malloc(10001);
  asm volatile("");  // keep the call from becoming a tail call
}

extern "C" __attribute__((noinline)) void CallerOfAllocateHere() {
  AllocateHere();
  asm volatile("");
}

int main() {
  for (int i = 0; i < 3; ++i) CallerOfAllocateHere();
  return 0;
}
