/* tests/scenarios/programs/tls_plugin.c: a dlopen'ed module with a __thread
 * variable (general-dynamic TLS: its block is allocated by ld.so on first
 * use in each thread and owned by the thread's DTV). leak_classes_program's
 * "dyntls" mode keeps a heap block only there. */
#include <stdlib.h>
#include <string.h>

__thread void* t_plugin_block;

void plugin_keep(size_t n) {
  t_plugin_block = malloc(n);
  memset(t_plugin_block, 0, n);
}
