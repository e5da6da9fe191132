/* tests/scenarios/programs/late_lib.c: linked by exit_program. Its
 * constructor runs before heapsight's (it is a dependency of the
 * executable), so the atexit handler it registers runs after heapsight's
 * exit handler: the last moment a program can still free memory. */
#include <stdlib.h>

static void* g_block;

static void LateHandler(void) {
  if (g_block == NULL) return;
  free(g_block);
  void* p = malloc(9004);
  free(p);
}

__attribute__((constructor)) static void RegisterLateHandler(void) { atexit(LateHandler); }

void late_lib_set_block(void* p) { g_block = p; }
