// tests/cli/record/fork_program.cc: allocates, forks once, the child allocates
// and exits; the parent waits and prints one line. Two processes, so two
// traces under `heapsight record`.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

int main() {
  char* before = static_cast<char*>(std::malloc(64));
  std::memset(before, 1, 64);
  pid_t pid = fork();
  if (pid < 0) return 2;
  if (pid == 0) {
    char* in_child = static_cast<char*>(std::malloc(128));
    std::memset(in_child, 2, 128);
    std::free(in_child);
    std::free(before);
    std::exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  std::free(before);
  std::printf("parent done, child status %d\n", WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return 0;
}
