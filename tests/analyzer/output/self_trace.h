// tests/analyzer/output/self_trace.h: writes a small synthetic heapsight trace whose
// stacks are real return addresses inside this test binary, so the analyzer
// symbolizes them to known functions and lines (pprof_fixture::*). The
// numbers are fixed and documented below; the integration tests compare
// every output format against them. The records are written with the
// suite's one synthetic trace writer (tests/analyzer/test_trace_writer.h).
//
// Stacks (root first):
//   A: RunScenario -> BuildScene -> AllocateWidgets   (malloc, 64 B blocks)
//   B: RunScenario -> BuildScene -> MakeBuffers       (operator new, 1000 B)
// Events (microseconds after the start):
//   1 A#0  2 A#1  3 B#0  4 B#1            peak: 2128 B live (A 128, B 2000)
//   5 free B#0  6 free B#1  7 A#2  8 free A#0   end: A#1, A#2 live (128 B)
//   9 kEnd (exit 0)
// So: alloc A 3/192, B 2/2000; inuse at end A 2/128, B 0/0;
//     inuse at peak A 2/128, B 2/2000; leaked A 2/128.
#ifndef HEAPSIGHT_TESTS_OUTPUT_SELF_TRACE_H_
#define HEAPSIGHT_TESTS_OUTPUT_SELF_TRACE_H_

#include <cstdint>
#include <string>

namespace heapsight::testing {

struct SelfTraceInfo {
  std::string exe;             // path of this test binary
  uint64_t realtime_ns = 0;    // FileHeader.start_realtime_ns
  int line_allocate = 0;       // source lines of the recorded call sites
  int line_make_buffers = 0;
  int line_build_a = 0;        // BuildScene's call of AllocateWidgets
  int line_build_b = 0;        // BuildScene's call of MakeBuffers
  int line_run = 0;            // RunScenario's call of BuildScene
};

// Writes the trace to `path`. Returns false (with a gtest failure) if the
// binary's own module could not be described.
bool WriteSelfTrace(const std::string& path, SelfTraceInfo* info);

// Writes a trace of `sites` distinct call sites (stacks of depth 8 over the
// same five addresses, every site a different sequence), one malloc of
// (i % 512) + 1 bytes each, none freed. For scale tests. Returns the total
// bytes allocated, or -1 on failure. With `distinct_leaves`, every site gets
// its own leaf address instead (spread over this binary's code, so each one
// is a separate symbolizer lookup).
int64_t WriteManySitesTrace(const std::string& path, int sites, bool distinct_leaves = false);

}  // namespace heapsight::testing

#endif  // HEAPSIGHT_TESTS_OUTPUT_SELF_TRACE_H_
