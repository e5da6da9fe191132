// tests/analyzer/output/pprof_workload.cc: a small program with known allocations,
// run under the real preload by output_command_test to check the pprof
// profile of a real trace against exact numbers.
//
//   workload::AllocateRecords  10 x malloc(4096), 6 freed  -> inuse 4 x 4096
//   workload::NewBuffer        5 x new char[1000], all deleted
// Peak: everything live at once (10 x 4096 + 5 x 1000 program bytes).
// No stdio, no containers: the program's own allocations are exactly these.
#include <cstdlib>

namespace workload {

__attribute__((noinline)) void* AllocateRecords(unsigned long n) {
  void* p = std::malloc(n);
  asm volatile("" : : "r"(p) : "memory");
  return p;
}

__attribute__((noinline)) char* NewBuffer(unsigned long n) {
  char* p = new char[n];
  asm volatile("" : : "r"(p) : "memory");
  return p;
}

__attribute__((noinline)) void Run(void** records, char** buffers) {
  for (int i = 0; i < 10; ++i) records[i] = AllocateRecords(4096);
  for (int i = 0; i < 5; ++i) buffers[i] = NewBuffer(1000);
  for (int i = 0; i < 5; ++i) delete[] buffers[i];
  for (int i = 0; i < 6; ++i) std::free(records[i]);
}

}  // namespace workload

void* g_records[10];  // keeps the 4 live records reachable

int main() {
  char* buffers[5];
  workload::Run(g_records, buffers);
  return 0;
}
