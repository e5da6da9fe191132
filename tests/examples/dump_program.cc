// tests/examples/dump_program.cc: holds a 1 MiB block for up to 10 s, so a
// test can ask for a heap profile with HEAPSIGHT_DUMP_SIGNAL meanwhile.
// Creates the file argv[2] once main runs (every constructor, the preload's
// signal set-up included, has run by then); exits early (0) once the file
// argv[1] exists.
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace {

__attribute__((noinline)) char* HoldBuffer() {
  char* p = static_cast<char*>(std::malloc(1 << 20));
  std::memset(p, 1, 1 << 20);
  return p;
}

}  // namespace

int main(int argc, char** argv) {
  char* p = HoldBuffer();
  if (argc > 2) close(open(argv[2], O_WRONLY | O_CREAT, 0644));
  for (int i = 0; i < 1000 && (argc < 2 || access(argv[1], F_OK) != 0); ++i) usleep(10000);
  std::free(p);
  return 0;
}
