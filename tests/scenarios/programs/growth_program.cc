// tests/scenarios/programs/growth_program.cc: a "service" whose memory keeps
// growing at one call site, then frees everything and exits cleanly (so a
// leak report at exit finds nothing). For `heapsight growth`
// (tests/analyzer/report/growth_report_test.cc). Runs about 300 ms:
//
//   StartupTable  64 x 64 KiB at start, kept until exit
//   LeakyCache    512 bytes per request, kept (a cache without eviction)
//   Churn         20 x 4 KiB per request, freed at once
//   Pool          1 KiB per request, all freed every 100 requests
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

namespace {

constexpr int kStartupBlocks = 64;
constexpr int kMaxRequests = 100000;
constexpr int kPoolSize = 100;

void* g_table[kStartupBlocks];
void* g_cache[kMaxRequests];
void* g_pool[kPoolSize];
int g_pool_used = 0;

uint64_t NowNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

// extern "C": the test names frames by their symbols.
extern "C" __attribute__((noinline)) void StartupTable() {
  for (void*& p : g_table) {
    p = malloc(64 * 1024);
    memset(p, 1, 64);
  }
}

extern "C" __attribute__((noinline)) void* LeakyCache() { return malloc(512); }

extern "C" __attribute__((noinline)) void Churn() {
  for (int i = 0; i < 20; ++i) {
    void* p = malloc(4096);
    memset(p, 2, 64);
    free(p);
  }
}

extern "C" __attribute__((noinline)) void Pool() {
  if (g_pool_used == kPoolSize) {
    for (void* p : g_pool) free(p);
    g_pool_used = 0;
  }
  g_pool[g_pool_used++] = malloc(1024);
}

int main() {
  StartupTable();
  int requests = 0;
  uint64_t end = NowNs() + 300 * 1000000ull;
  while (NowNs() < end && requests < kMaxRequests) {
    g_cache[requests++] = LeakyCache();
    Churn();
    Pool();
    for (uint64_t until = NowNs() + 50000; NowNs() < until;) {
    }
  }
  // A clean shutdown: everything is freed, so nothing leaks at exit.
  for (int i = 0; i < requests; ++i) free(g_cache[i]);
  for (int i = 0; i < g_pool_used; ++i) free(g_pool[i]);
  for (void* p : g_table) free(p);
  printf("growth done\n");
  return 0;
}
