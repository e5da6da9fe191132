// tests/scenarios/programs/exec_program.cc: stage 1 allocates and exec()s
// itself as stage 2 (same pid, new image), which allocates and exits. A
// failed exec in stage 1 comes first.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void* volatile g_sink;

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "stage2") == 0) {
    g_sink = malloc(5002);
    puts("stage2");
    return 0;
  }
  g_sink = malloc(5001);
  char* bad[] = {const_cast<char*>("/nonexistent/program"), nullptr};
  execv(bad[0], bad);  // fails: kExec, kEnd, kExecFailed; tracing goes on
  g_sink = malloc(5003);
  char* args[] = {argv[0], const_cast<char*>("stage2"), nullptr};
  fflush(stdout);
  execv("/proc/self/exe", args);
  return 3;
}
