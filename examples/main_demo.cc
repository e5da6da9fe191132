// examples/main_demo.cc: the origin document's main demo, in C++.
//
// Go version: allocate a 100 MB slice, fill it, force a GC and write a heap
// profile with pprof.WriteHeapProfile. Here: allocate 100 MiB with new[],
// fill it, write a heap profile through heapsight.h while the buffer is still
// live, then release it. Without heapsight preloaded the profile call is a
// no-op and the program says so.
//
//   heapsight record -- ./main_demo mem.pb.gz      # in-program profile
//   heapsight pprof heapsight.main_demo.*.hst -o end.pb.gz   # after the fact
#include <cstddef>
#include <cstdint>
#include <cstdio>

#include "example_util.h"
#include "heapsight.h"

namespace {

constexpr size_t kBytes = 100 * 1024 * 1024;

HS_NOINLINE uint8_t* AllocateMemory() {
  uint8_t* data = new uint8_t[kBytes];
  for (size_t i = 0; i < kBytes; ++i) data[i] = static_cast<uint8_t>(i % 256);
  std::puts("allocated and filled 100 MiB");
  return data;
}

}  // namespace

int main(int argc, char** argv) {
  const char* profile = argc > 1 ? argv[1] : "mem.pb.gz";
  uint8_t* data = AllocateMemory();
  heapsight_marker("filled");
  if (heapsight_write_profile(profile) == 0) {
    std::printf("heap profile written to %s\n", profile);
  } else {
    std::puts("heap profile not written (run under `heapsight record`)");
  }
  examples::KeepAlive(data[12345]);
  delete[] data;
  return 0;
}
