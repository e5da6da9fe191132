// tests/scenarios/programs/fork_program.cc: a block live across fork() is
// freed in the child; each side allocates its own blocks.
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void* volatile g_sink;

int main() {
  void* kept = malloc(4001);   // live at fork: inherited by the child
  g_sink = malloc(4005);       // live at fork, never freed anywhere
  void* freed = malloc(4002);
  free(freed);
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    free(kept);  // pairs with the kInherited record
    void* p = malloc(4003);
    free(p);
    exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  void* p = malloc(4004);
  free(p);
  free(kept);
  printf("child %d status %d\n", static_cast<int>(pid), status);
  return 0;
}
