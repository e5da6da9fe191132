// tests/scenarios/programs/address_scan_program.cc: what the leak scan and
// fork do with address frees (address_scan_test.cc).
// `fork`: blocks of each API family live at fork(), one of them allocated
// by another thread: the child frees or deletes three of them, keeps the
// new[] array in a global and leaks a block of its own.
//   4101 malloc         freed by the child
//   4102 new char[]     kept by the child (g_array): still reachable there
//   4103 new Object     deleted by the child
//   4104 malloc         allocated by a second thread, freed by the child
//   4105 malloc         the child's own, leaked (definitely lost)
// `signal`: a scan on request by HEAPSIGHT_LEAK_SIGNAL=SIGUSR2 while 4201
// is lost and 4202 reachable; 4202 is freed after it.
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

namespace {

struct Object {
  char bytes[4103];
};

char* g_array;
void* g_from_thread;

void* Allocate(void*) {
  g_from_thread = malloc(4104);
  return nullptr;
}

__attribute__((noinline)) void LeakOne() {
  char* p = static_cast<char*>(malloc(4105));
  memset(p, 0, 4105);
}

__attribute__((noinline)) void Scrub() {
  volatile char buf[32768];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = 0;
}

void* g_kept;

__attribute__((noinline)) void LeakAndKeep() {
  char* p = static_cast<char*>(malloc(4201));
  memset(p, 0, 4201);
  g_kept = malloc(4202);
}

int Signal() {
  LeakAndKeep();
  Scrub();
  raise(SIGUSR2);
  // The scan runs on heapsight's own thread, woken by the handler; it
  // stops this thread with a signal, which cuts a sleep short (EINTR).
  timespec left = {2, 0};
  while (nanosleep(&left, &left) != 0) {
  }
  free(g_kept);
  g_kept = nullptr;
  return 0;
}

int Fork() {
  void* m = malloc(4101);
  g_array = new char[4102];
  Object* o = new Object;
  pthread_t t;
  pthread_create(&t, nullptr, Allocate, nullptr);
  pthread_join(t, nullptr);
  fflush(stdout);
  pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    free(m);
    delete o;
    free(g_from_thread);
    LeakOne();
    Scrub();
    exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  free(m);
  delete o;
  free(g_from_thread);
  delete[] g_array;
  printf("child status %d\n", status);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && strcmp(argv[1], "signal") == 0) return Signal();
  return Fork();
}
