// tests/scenarios/programs/host_fd_count_program.cc: issue 12, host harm 3.
// Allocates (so a preload has unwound a stack), then opens /dev/null until
// open fails and prints how many it could open and the errno name.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main() {
  void* p = malloc(123);
  free(malloc(77));
  int count = 0;
  int err = 0;
  for (;;) {
    int fd = open("/dev/null", O_RDONLY);
    if (fd < 0) {
      err = errno;
      break;
    }
    ++count;
  }
  printf("%d %s\n", count, err == EMFILE ? "EMFILE" : strerror(err));
  free(p);
  return 0;
}
