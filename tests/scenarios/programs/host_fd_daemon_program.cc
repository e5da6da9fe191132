// tests/scenarios/programs/host_fd_daemon_program.cc: issue 12, host harm 3.
// Like a daemon: allocates, then closes fds 0-1023, reopens 0-2 on /dev/null, opens its
// log (argv[1], expected at fd 3) and 12 files it never writes (argv[2]/q4
// ... q15 at fds 4-15, where a preload's own fds would have been), then
// loops on malloc with dprintf to the log. The allocations come
// from frames of different depths, each on stack pages of its own, so an
// unwinder that validates memory has new pages to check. argv[3] "rdwr":
// the log is opened O_RDWR|O_APPEND (readable, as a socket would be).
// Exits 0 if fds 3-15 still are its files at the end, 3 if not, 2 on set-up
// errors.
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

namespace {

bool Same(int fd, const struct stat& want) {
  struct stat st;
  return fstat(fd, &st) == 0 && st.st_dev == want.st_dev && st.st_ino == want.st_ino;
}

// 5 KiB of stack per level: every level's frame is on a page of its own.
__attribute__((noinline)) void* Deep(int depth, size_t size) {
  volatile char pad[5 * 1024];
  pad[0] = static_cast<char>(depth);
  if (depth == 0) return size % 2 == 0 ? malloc(size) : calloc(1, size);
  void* p = Deep(depth - 1, size);
  pad[1] = pad[0];
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) return 2;
  bool rdwr = argc > 3 && strcmp(argv[3], "rdwr") == 0;
  // Start-up work before daemonizing: a preload has unwound by now.
  for (int depth = 0; depth < 24; ++depth) free(Deep(depth, 64));
  for (int fd = 0; fd < 1024; ++fd) close(fd);
  for (int fd = 0; fd < 3; ++fd) {
    if (open("/dev/null", O_RDWR) != fd) return 2;
  }
  int log = open(argv[1], (rdwr ? O_RDWR | O_APPEND : O_WRONLY) | O_CREAT | O_TRUNC, 0600);
  if (log != 3) return 2;
  struct stat st[16];
  for (int fd = 4; fd < 16; ++fd) {
    char path[4096];
    snprintf(path, sizeof path, "%s/q%d", argv[2], fd);
    if (open(path, O_RDWR | O_CREAT | O_TRUNC, 0600) != fd) return 2;
  }
  for (int fd = 3; fd < 16; ++fd) {
    if (fstat(fd, &st[fd]) != 0) return 2;
  }
  void* keep[16] = {};
  for (int i = 0; i < 3000; ++i) {
    free(keep[i % 16]);
    // Sizes 100..149 (malloc) and 200..229 (calloc), depth 0..23.
    size_t size = i % 2 == 0 ? 100 + static_cast<size_t>(i % 50) : 201 + static_cast<size_t>(i % 30 / 2 * 2);
    keep[i % 16] = Deep(i % 24, size);
    dprintf(log, "line %d\n", i);
  }
  for (void* p : keep) free(p);
  for (int fd = 3; fd < 16; ++fd) {
    if (!Same(fd, st[fd])) return 3;
  }
  return 0;
}
