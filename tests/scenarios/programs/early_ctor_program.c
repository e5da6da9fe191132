/* tests/scenarios/programs/early_ctor_program.c: links early_ctor_lib,
 * whose constructor allocates before heapsight's constructor runs; main
 * allocates too (4007, still reachable) and checks the library ran. */
#include <stdio.h>
#include <stdlib.h>

extern void* g_early_kept;
static void* volatile g_main_kept;

int main(void) {
  if (g_early_kept == NULL) return 1;
  g_main_kept = malloc(4007);
  puts("early done");
  return 0;
}
