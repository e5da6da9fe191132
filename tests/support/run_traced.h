// tests/support/run_traced.h: run a program under the real preload and read
// back what it recorded. Shared by the scenario, analyzer and example tests.
#ifndef HEAPSIGHT_TESTS_SUPPORT_RUN_TRACED_H_
#define HEAPSIGHT_TESTS_SUPPORT_RUN_TRACED_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "format/chunk_decoder.h"
#include "format/trace_format.h"

namespace heapsight::testing {

// Absolute path of a file in the build tree, e.g. "preload/libheapsight.so".
std::string BuildPath(const std::string& relative);
// Absolute path of a file in the source tree.
std::string SourcePath(const std::string& relative);

// A fresh, empty directory under the test's temp dir.
std::string MakeTempDir();

// The whole content of a file ("" when it cannot be read).
std::string ReadFile(const std::string& path);

struct RunResult {
  int exit_code = -1;      // exit status, or 128+N when killed by signal N
  std::string out;         // captured stdout
  std::string err;         // captured stderr
  std::vector<std::string> traces;  // trace files found in the output dir, sorted
};

// Runs argv[0] (a path) with LD_PRELOAD=libheapsight.so and
// HEAPSIGHT_OUTPUT=<out_dir>/%e.%p.hst (unless `env` sets it), plus `env`.
// Waits for it and returns what it printed and which traces it left.
RunResult RunTraced(const std::vector<std::string>& argv, const std::string& out_dir,
                    const std::map<std::string, std::string>& env = {});

// Runs argv without any preload (same capture), for comparisons.
RunResult RunPlain(const std::vector<std::string>& argv,
                   const std::map<std::string, std::string>& env = {});

// Every record of a trace, chunk by chunk in file order, plus what the file
// says about itself. Stack nodes are collected into `stack_nodes`.
struct TraceContents {
  format::FileHeader header{};
  std::vector<format::Record> records;  // string fields copied into `strings`
  std::map<uint64_t, std::pair<uint64_t, uint64_t>> stack_nodes;  // node -> (parent, ip)
  bool truncated = false;
  bool complete = false;  // has a kEnd record
  std::string error;      // non-empty if the reader or decoder failed
  std::vector<std::string> strings;  // owns text fields of records
};
TraceContents ReadTrace(const std::string& path);

// The two traces of a run that forked once: the parent's and the child's
// (told apart by format::kFileFlagForkChild). Move-only: ReadTrace leaves
// no view in `records` (their text is in `strings`, which a move of the
// vector keeps where it is), so moving a TraceContents in here is safe;
// a copy would be too, but is never needed.
struct ForkTraces {
  TraceContents parent;
  TraceContents child;
  std::string parent_path;
  std::string child_path;
  std::string error;  // non-empty: not two traces, one of them the child, both readable

  ForkTraces() = default;
  ForkTraces(ForkTraces&&) = default;
  ForkTraces& operator=(ForkTraces&&) = default;
  ForkTraces(const ForkTraces&) = delete;
  ForkTraces& operator=(const ForkTraces&) = delete;
};
ForkTraces ReadForkTraces(const std::vector<std::string>& traces);

// Counts over the records of a trace, for exact assertions.
struct TraceCounts {
  std::map<format::Api, uint64_t> allocs;  // kAlloc + kRealloc (new side) by api
  std::map<format::Api, uint64_t> frees;   // kFree + kRealloc (old side) by api
  uint64_t alloc_records = 0;
  uint64_t free_records = 0;
  uint64_t realloc_records = 0;
  uint64_t failed = 0;
  uint64_t bytes_allocated = 0;
  uint64_t live_blocks = 0;  // allocations whose id was never freed
  uint64_t live_bytes = 0;
  uint64_t unmatched_frees = 0;  // frees naming an id never allocated
};
TraceCounts CountTrace(const TraceContents& trace);

}  // namespace heapsight::testing

#endif  // HEAPSIGHT_TESTS_SUPPORT_RUN_TRACED_H_
