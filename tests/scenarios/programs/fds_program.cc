// tests/scenarios/programs/fds_program.cc: a daemon-like start: close every
// fd, chdir("/"), reopen 0-2 on /dev/null and dup2 it over a range of high
// fds (where heapsight keeps its trace fd); then allocate.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

void* volatile g_sink;

int main() {
  g_sink = malloc(7000);
  for (int fd = 0; fd < 1024; ++fd) close(fd);
  if (chdir("/") != 0) return 2;
  int null_fd = open("/dev/null", O_RDWR);  // fd 0
  dup2(null_fd, 1);
  dup2(null_fd, 2);
  for (int fd = 3; fd < 1024; ++fd) dup2(null_fd, fd);
  for (int i = 0; i < 1000; ++i) {
    void* p = malloc(7001);
    free(p);
  }
  for (int fd = 3; fd < 1024; ++fd) close(fd);
  g_sink = malloc(7002);
  return 0;
}
