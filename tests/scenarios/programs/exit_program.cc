// tests/scenarios/programs/exit_program.cc: ends in one of several ways.
//   _exit: 100 allocations then _exit(3)
//   kill:  enough allocations for several chunks, then SIGKILL to itself
//   dtor:  a destructor function (run by _dl_fini, after heapsight's exit
//          handler) frees a block and allocates+frees another
//   exit:  exit(6)
//   return (or anything else): returns 5 from main
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern "C" void late_lib_set_block(void* p);

void* volatile g_sink;
void* g_late_block;

__attribute__((destructor)) static void LateDestructor() {
  if (g_late_block == nullptr) return;
  free(g_late_block);
  void* p = malloc(9002);
  free(p);
}

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "_exit") == 0) {
    for (int i = 0; i < 100; ++i) g_sink = malloc(8001);
    _exit(3);
  }
  if (strcmp(argv[1], "kill") == 0) {
    for (int i = 0; i < 200000; ++i) {
      void* p = malloc(8002);
      free(p);
    }
    kill(getpid(), SIGKILL);
    return 4;
  }
  if (strcmp(argv[1], "dtor") == 0) {
    g_late_block = malloc(9001);
    late_lib_set_block(malloc(9003));
    return 0;
  }
  if (strcmp(argv[1], "exit") == 0) {
    exit(6);
  }
  return 5;
}
