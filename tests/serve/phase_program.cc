// tests/serve/phase_program.cc: a service-like program for the `record
// --serve` tests: it allocates known amounts in phases and waits between
// them, so a test can look at its live profiles after each phase.
//
//   phase_program CONTROL_DIR [phases|grow|churn]
//
// Phase 1: PhaseOneAlloc keeps 100 blocks of 10000 bytes (enough to fill
// several 128 KiB trace chunks is not needed: the marker flushes), and
// LoseThree allocates 3 blocks of 333 bytes and drops every pointer to
// them (definitely lost). Marker "phase1", then CONTROL_DIR/go2 is waited
// for. Phase 2: PhaseTwoAlloc keeps 50 blocks of 4096 bytes and 60 of
// PhaseOneAlloc's blocks are freed. Marker "phase2", then CONTROL_DIR/go3.
// Phase 3: everything still held is freed; the program exits 0.
// Mode grow: after phase 1, GrowForever keeps 64 KiB more every 100 ms
// (no marker: HEAPSIGHT_FLUSH_MS flushes it) until CONTROL_DIR/stop appears (`heapsight
// top`'s growing site), then exits. Mode churn: after phase 1, Churn allocates and frees small blocks
// as fast as it can until CONTROL_DIR/stop appears (a long trace for
// `record --no-trace`), then exits.
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
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
  const std::string stop = dir + "/stop";
  while (!Exists(stop)) {
    for (int i = 0; i < 16; ++i) {
      void* p = malloc(4096);
      memset(p, 3, 4096);
      g_kept->push_back(p);
    }
    // No marker here: the growth reaches the trace through
    // HEAPSIGHT_FLUSH_MS=1000, which `record --serve` sets (serve_top
    // checks that it shows).
    usleep(100000);
  }
}

__attribute__((noinline)) void Churn(const std::string& dir) {
  void* ring[64] = {};
  const std::string stop = dir + "/stop";
  for (uint64_t n = 0;; ++n) {
    if (n % 100000 == 0 && Exists(stop)) break;
    void*& slot = ring[n % 64];
    free(slot);
    slot = malloc(16 + n % 200);
    g_sink = slot;
  }
  for (void* p : ring) free(p);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2 && argc != 3) return 2;
  std::string dir = argv[1];
  std::string mode = argc == 3 ? argv[2] : "phases";
  // Every path is made before phase 1: waiting allocates nothing.
  const std::string go2 = dir + "/go2", go3 = dir + "/go3", done2 = dir + "/done2";
  g_kept->reserve(4096);  // no vector growth inside the phases
  PhaseOneAlloc();
  LoseThree();
  heapsight_marker("phase1");
  if (mode == "grow" || mode == "churn") {
    if (mode == "grow") GrowForever(dir);
    if (mode == "churn") Churn(dir);
    return 0;
  }
  WaitFor(go2);
  PhaseTwoAlloc();
  if (mode == "fresh") {
    // open(2), not fopen: no allocation after the phase's own.
    close(open(done2.c_str(), O_WRONLY | O_CREAT, 0600));
    WaitFor(go3);
    return 0;
  }
  for (int i = 0; i < 60; ++i) {
    free((*g_kept)[i]);
    (*g_kept)[i] = nullptr;
  }
  heapsight_marker("phase2");
  WaitFor(go3);
  for (void* p : *g_kept) free(p);
  delete g_kept;
  return 0;
}
