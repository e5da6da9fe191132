// tests/serve/phase_program.cc: a service-like program for the `record
// --serve` tests: it allocates known amounts in phases and waits between
// them, so a test can look at its live profiles after each phase.
//
//   phase_program CONTROL_DIR
//
// Phase 1: PhaseOneAlloc keeps 100 blocks of 10000 bytes (enough to fill
// several 128 KiB trace chunks is not needed: the marker flushes), and
// LoseThree allocates 3 blocks of 333 bytes and drops every pointer to
// them (definitely lost). Marker "phase1", then CONTROL_DIR/go2 is waited
// for. Phase 2: PhaseTwoAlloc keeps 50 blocks of 4096 bytes and 60 of
// PhaseOneAlloc's blocks are freed. Marker "phase2", then CONTROL_DIR/go3.
// With CONTROL_DIR/grow present instead, GrowForever adds 64 KiB a
// 100 ms until the file `stop` appears (for `heapsight top`).
// Phase 3: everything still held is freed; the program exits 0.
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "include/heapsight.h"

namespace {

std::vector<void*>* g_kept = new std::vector<void*>();
void* volatile g_sink;

bool Exists(const std::string& path) { return access(path.c_str(), F_OK) == 0; }

void WaitFor(const std::string& path) {
  while (!Exists(path)) usleep(20000);
}

__attribute__((noinline)) void PhaseOneAlloc() {
  for (int i = 0; i < 100; ++i) {
    void* p = malloc(10000);
    memset(p, 1, 10000);
    g_kept->push_back(p);
  }
}

__attribute__((noinline)) void LoseThree() {
  for (int i = 0; i < 3; ++i) {
    g_sink = malloc(333);
    memset(g_sink, 0, 333);
  }
  g_sink = nullptr;
}

__attribute__((noinline)) void PhaseTwoAlloc() {
  for (int i = 0; i < 50; ++i) {
    void* p = malloc(4096);
    memset(p, 2, 4096);
    g_kept->push_back(p);
  }
}

__attribute__((noinline)) void GrowForever(const std::string& dir) {
  while (!Exists(dir + "/stop")) {
    for (int i = 0; i < 16; ++i) {
      void* p = malloc(4096);
      memset(p, 3, 4096);
      g_kept->push_back(p);
    }
    usleep(100000);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 2;
  std::string dir = argv[1];
  g_kept->reserve(4096);  // no vector growth inside the phases
  PhaseOneAlloc();
  LoseThree();
  heapsight_marker("phase1");
  if (Exists(dir + "/grow")) GrowForever(dir);
  WaitFor(dir + "/go2");
  PhaseTwoAlloc();
  for (int i = 0; i < 60; ++i) {
    free((*g_kept)[i]);
    (*g_kept)[i] = nullptr;
  }
  heapsight_marker("phase2");
  WaitFor(dir + "/go3");
  for (void* p : *g_kept) free(p);
  delete g_kept;
  return 0;
}
