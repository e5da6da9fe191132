/* tests/scenarios/programs/plugin.c: a small dlopen'ed module that
 * allocates. */
#include <stdlib.h>

void* g_plugin_kept;

__attribute__((noinline)) void plugin_allocate(void) {
  g_plugin_kept = malloc(6001);
  void* p = malloc(6002);
  free(p);
}
