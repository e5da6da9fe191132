// tests/record/disk_filler_program.cc: fills the file system holding argv[1]
// (a file it writes until the disk is full), then allocates and frees enough
// to need several trace chunks, and exits 0: its trace cannot be finished.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace {
void* volatile g_sink;
}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return 3;
  static char block[65536];
  std::memset(block, 'x', sizeof block);
  while (write(fd, block, sizeof block) > 0) {
  }
  while (write(fd, block, 1) > 0) {
  }
  close(fd);
  for (int i = 0; i < 200000; ++i) {
    g_sink = std::malloc(16 + static_cast<size_t>(i % 512));
    std::free(g_sink);
  }
  return 0;
}
