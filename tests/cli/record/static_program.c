/* tests/cli/record/static_program.c: a statically linked program, which
   LD_PRELOAD cannot trace; heapsight record must refuse it by name. */
#include <stdio.h>

int main(void) {
  puts("static");
  return 0;
}
