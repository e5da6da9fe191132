// tests/scenarios/programs/host_daemon_program.cc: issue 12, a daemon()
// parent. The parent allocates 6161 bytes and calls daemon(0, 0), whose
// parent leaves through glibc's internal _exit (no exported _exit is called).
// The child (the daemon) allocates 6262 bytes, then creates the file named
// by argv[1] so the test knows it is done, and exits 0.
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

void* volatile g_sink;

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  g_sink = malloc(6161);
  if (daemon(0, 0) != 0) return 3;
  // The daemon: cwd is / and fds 0-2 are /dev/null.
  g_sink = malloc(6262);
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL, 0600);
  if (fd >= 0) close(fd);
  return 0;
}
