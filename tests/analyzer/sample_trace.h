// tests/analyzer/sample_trace.h: one deterministic synthetic trace shared by
// the report, leaks and command tests. Its modules point at files that do
// not exist, so frames show as module+offset and never depend on the host.
//
//   stacks: 3 = alloc_block <- leak_one <- main   (prog)
//           4 = libsample func <- main            (libsample.so)
//           5 = libstdc++ static init             (runtime)
//   t1: malloc 1000 @3 leaked, malloc 200 @3 leaked, marker "loaded" at 115
//       (live: 1,200 bytes in 2 blocks), new 40 @4 freed (temporary),
//       calloc 64 @4 -> realloc 128 @4 -> freed, malloc 72704 @5 leaked
//       (runtime), marker "heap-limit" at 165 (the program's live heap: 1,328 bytes
//       in 3 blocks; the runtime block is not counted)
//   t2: malloc 5000 @4 leaked
#ifndef HEAPSIGHT_TESTS_ANALYZER_SAMPLE_TRACE_H_
#define HEAPSIGHT_TESTS_ANALYZER_SAMPLE_TRACE_H_

#include <unistd.h>

#include <string>

#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::testing {

inline void BuildSampleTrace(TestTraceWriter& w, bool with_end = true) {
  using format::Api;
  w.Process(1, 0, "/nonexistent/sample_prog", {"sample_prog", "--flag"});
  w.Module(1, 1, 1, 0x400000, "/nonexistent/sample_prog", "\x01\x02\x03",
           {{0, 0x10000, 0, 5}});
  w.Module(1, 2, 2, 0x7f0000000000, "/nonexistent/libsample.so", "",
           {{0, 0x10000, 0, 5}});
  w.Module(1, 3, 3, 0x7f1000000000, "/nonexistent/libstdc++.so.6", "",
           {{0, 0x10000, 0, 5}});
  w.StackNode(1, 1, 0, 0x401000);
  w.StackNode(1, 2, 1, 0x401100);
  w.StackNode(1, 3, 2, 0x401200);
  w.StackNode(1, 4, 1, 0x7f0000001234);
  w.StackNode(1, 5, 0, 0x7f1000000100);
  w.Alloc(1, 100, Api::kMalloc, 1000, 3);
  w.Alloc(1, 110, Api::kMalloc, 200, 3);
  w.Marker(1, 115, "loaded");
  uint64_t t = w.Alloc(1, 120, Api::kNew, 40, 4);
  w.Free(1, 130, t, Api::kDelete);
  uint64_t c = w.Alloc(1, 140, Api::kCalloc, 64, 4);
  uint64_t r = w.Realloc(1, 150, c, 128, 4);
  w.Alloc(1, 160, Api::kMalloc, 72704, 5);
  w.Marker(1, 165, "heap-limit");
  w.Flush(1);
  w.Alloc(2, 200, Api::kMalloc, 5000, 4);
  w.Free(1, 300, r);
  if (with_end) w.End(1, 400, 0);
}

// Writes the sample to a fresh file and returns its path.
inline std::string WriteSampleTrace(const std::string& name, bool with_end = true) {
  TestTraceWriter w(/*pid=*/4242, /*ppid=*/1);
  BuildSampleTrace(w, with_end);
  std::string path = ::testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".hst";
  w.WriteFile(path);
  return path;
}

}  // namespace heapsight::testing

#endif  // HEAPSIGHT_TESTS_ANALYZER_SAMPLE_TRACE_H_
