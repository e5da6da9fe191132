// tests/scenarios/programs/badfree_program.cc: frees that glibc rejects
// (and aborts on). heapsight records them before passing them on.
//   double:  free the same block twice
//   invalid: free a stack address
//   realloc: realloc a stack address
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void* volatile g_sink;

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  char local[64];
  void* p = malloc(13001);
  printf("%p %p\n", p, static_cast<void*>(local));
  fflush(stdout);
  if (strcmp(argv[1], "double") == 0) {
    g_sink = p;
    free(g_sink);
    free(g_sink);  // the same pointer again
  } else if (strcmp(argv[1], "invalid") == 0) {
    g_sink = local;
    free(g_sink);
  } else if (strcmp(argv[1], "realloc") == 0) {
    g_sink = local;
    g_sink = realloc(g_sink, 100);
  }
  return 0;
}
