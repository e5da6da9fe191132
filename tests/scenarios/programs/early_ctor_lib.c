/* tests/scenarios/programs/early_ctor_lib.c: a library whose ELF
 * constructor allocates. It is a DT_NEEDED library of
 * early_ctor_program, so the loader initializes it before
 * libheapsight.so (which is LD_PRELOADed: earlier in the search list,
 * initialized later), and its allocations happen before heapsight's
 * constructor runs (issue 14 fault 3). Sizes 4001-4006:
 *   4001 still reachable (a global points to it)
 *   4002 definitely lost, 4003 indirectly lost (only 4002 points to it)
 *   4004 freed in the constructor
 *   4005 calloc, still reachable (4001 points to it)
 *   4006 still reachable (4001 points to it), made by realloc of a
 *        100-byte malloc */
#include <stdlib.h>

void* g_early_kept;

__attribute__((noinline)) static void MakeLostPair(void) {
  void** lost = malloc(4002);
  lost[0] = malloc(4003);
  lost = NULL;
}

__attribute__((noinline)) static int ClearScratch(void) {
  volatile char scratch[512];
  for (int i = 0; i < 512; ++i) scratch[i] = 0;
  return scratch[7];
}

__attribute__((constructor)) void EarlyLibConstructor(void) {
  void** kept = malloc(4001);
  kept[0] = calloc(1, 4005);
  void* p = malloc(100);
  kept[1] = realloc(p, 4006);
  g_early_kept = kept;
  free(malloc(4004));
  MakeLostPair();
  (void)ClearScratch();  /* no stale copy of 4002's address on the stack */
}
