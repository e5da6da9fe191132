// tests/scenarios/programs/growth_program.cc: a "service" whose memory keeps
// growing at one call site, then frees everything and exits cleanly (so a
// leak report at exit finds nothing). For `heapsight growth`
// (tests/analyzer/report/growth_report_test.cc). 600 requests, one due
// every 500 us on the monotonic clock the trace records (300 ms):
//
//   StartupTable  64 x 64 KiB at start, kept until exit
//   LeakyCache    512 bytes per request, kept (a cache without eviction)
//   Churn         20 x 4 KiB per request, freed at once
//   Pool          1 KiB per request, all freed every 100 requests
//
// The schedule is absolute: request i is due at start + i x 500 us, and a
// request that comes late (the program was preempted on a loaded machine)
// runs at once, so the program catches up and its live bytes stay on the
// line of 512 B / 500 us = 1,024,000 B/s in trace time. (It used to wait 50
// us after each request: every preemption then shifted the rest of the run,
// a staircase whose fit fell with the machine's load, and the number of
// requests in its 300 ms varied with it.) Waiting sleeps, so the program
// uses little CPU and a loaded machine wakes it on time.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

namespace {

constexpr int kStartupBlocks = 64;
constexpr int kRequests = 600;
constexpr uint64_t kPeriodNs = 500 * 1000;
constexpr int kPoolSize = 100;

void* g_table[kStartupBlocks];
void* g_cache[kRequests];
void* g_pool[kPoolSize];
int g_pool_used = 0;

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
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  for (int i = 0; i < kRequests; ++i) {
    timespec due = start;
    uint64_t ns = static_cast<uint64_t>(due.tv_nsec) + static_cast<uint64_t>(i) * kPeriodNs;
    due.tv_sec += static_cast<time_t>(ns / 1000000000u);
    due.tv_nsec = static_cast<long>(ns % 1000000000u);
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &due, nullptr) != 0) {
    }
    g_cache[i] = LeakyCache();
    Churn();
    Pool();
  }
  // A clean shutdown: everything is freed, so nothing leaks at exit.
  for (void* p : g_cache) free(p);
  for (int i = 0; i < g_pool_used; ++i) free(g_pool[i]);
  for (void* p : g_table) free(p);
  printf("growth done\n");
  return 0;
}
