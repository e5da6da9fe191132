// analyzer/output/heap_profile.h: the symbolized heap profile that the output
// formats (pprof, folded stacks, flame graphs) are written from.
//
// This is the output side's own model, independent of how the analysis core
// stores a trace: trace_heap_profile.cc fills it from a ProcessProfile and the
// Symbolizer, and tests fill it by hand. Everything is plain data; indices
// refer into the vectors of the same HeapProfile.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_HEAP_PROFILE_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_HEAP_PROFILE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace heapsight::analyzer::output {

// One source-level frame at an address.
struct SourceFrame {
  std::string function;     // demangled name without parameters; "" = unknown
  std::string system_name;  // linker (mangled) name; "" = same as `function`
  std::string file;         // source file; "" = unknown
  int64_t line = 0;         // 0 = unknown
  int64_t start_line = 0;   // first line of the function; 0 = unknown
};

// A loaded image (one executable segment of a module).
struct ProfileMapping {
  uint64_t start = 0;        // runtime address range [start, limit)
  uint64_t limit = 0;
  uint64_t file_offset = 0;  // file offset that corresponds to `start`
  std::string path;
  std::string build_id;      // hex; "" = unknown
  bool symbolized = false;   // functions, files and lines were looked up
  bool has_inline_frames = false;
};

// One distinct instruction address of a stack.
struct ProfileLocation {
  uint64_t address = 0;
  int32_t mapping = -1;  // index into HeapProfile::mappings; -1 = none
  // Innermost inlined callee first; the last entry is the out-of-line
  // function containing the address. Empty: not symbolized.
  std::vector<SourceFrame> frames;
};

// Per-site numbers. "inuse" is the live state at the profile's moment
// (HeapProfile::moment), the others cover the whole trace.
struct SiteValues {
  int64_t alloc_count = 0;
  int64_t alloc_bytes = 0;
  int64_t inuse_count = 0;
  int64_t inuse_bytes = 0;
  int64_t leaked_count = 0;  // not freed at exit
  int64_t leaked_bytes = 0;
  int64_t peak_count = 0;    // live at the peak of the heap
  int64_t peak_bytes = 0;
  // Temporary allocations (trace_model.h: freed by the allocating thread
  // before that thread's next allocation or free). Exact traces only: a
  // sampled trace does not see the calls between two samples.
  int64_t temporary_count = 0;
  int64_t temporary_bytes = 0;
  // Sampled traces: the allocations and bytes the samples stand for, each
  // sample weighted by its own size (SiteStats::alloc_count_estimate); -1
  // when absent, and then alloc_count/alloc_bytes are scaled by their mean
  // size like a Go heap profile.
  int64_t alloc_count_estimate = -1;
  int64_t alloc_bytes_estimate = -1;
};

// The process a sample belongs to, in a profile of several processes (a
// process family, profile_family.h). Empty (pid 0) in a one-process profile.
struct SampleProcess {
  int64_t pid = 0;
  std::string executable;  // path as the trace names it; "" = unknown
  std::string frame;       // root frame name in folded stacks, e.g. "sh (pid 42)"
};

// One call site: a stack and the allocation API it called.
struct ProfileSample {
  std::vector<uint32_t> locations;  // indices into HeapProfile::locations, leaf first
  std::string api;                  // e.g. "malloc"; "" = unknown
  SiteValues values;
  SampleProcess process;            // set in multi-process profiles only
};

struct HeapProfile {
  std::string executable;       // path of the main executable
  int64_t time_nanos = 0;       // trace start, ns since the Unix epoch
  int64_t duration_nanos = 0;   // trace length
  // Mean bytes between samples of a sampling recorder; 0 or 1 = exact trace.
  int64_t sample_period = 0;
  std::string moment;           // what "inuse" means, e.g. "end of the trace"
  std::vector<std::string> comments;  // extra header lines
  std::vector<ProfileMapping> mappings;  // mappings[0] = the main executable
  std::vector<ProfileLocation> locations;
  std::vector<ProfileSample> samples;
};

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_HEAP_PROFILE_H_
