// tests/scenarios/programs/host_exit_fork_program.cc: the exit point and
// fork. main returns (the exit point: only the main thread is traced from
// then on); its atexit handler starts a thread that forks; the child
// allocates 5151 bytes and leaves with _exit(0). The child is a process of
// its own that is not exiting: its allocation must be in its trace.
#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

void* volatile g_sink;

namespace {

void* Forker(void*) {
  pid_t pid = fork();
  if (pid == 0) {
    g_sink = malloc(5151);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return nullptr;
}

void ForkFromAnotherThread() {
  pthread_t t;
  if (pthread_create(&t, nullptr, Forker, nullptr) == 0) pthread_join(t, nullptr);
}

}  // namespace

int main() {
  atexit(ForkFromAnotherThread);
  return 0;
}
