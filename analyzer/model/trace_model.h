// analyzer/model/trace_model.h: what one trace file says about one process, and
// the streaming analysis that computes it (AnalyzeTrace).
//
// AnalyzeTrace reads a trace once more than the number of its blocks (a first
// pass indexes the block offsets of every thread, a second pass merges the
// threads' record streams by time) and folds every event into per-site
// statistics. Its memory is bounded by the live allocations, the unique
// (stack, api) sites, the stack trie and one decoded chunk per thread; it
// does not grow with the length of the trace.
//
// Definitions used everywhere (report, leaks, growth, diff, pprof, collapse,
// flamegraph, html); docs/glossary.md says the same for users:
//  - A *site* is a (leaf stack node, allocation API) pair. Realloc's new
//    block belongs to the realloc site; kInherited blocks belong to the site
//    of the stack and API recorded in the kInherited record.
//  - *allocated*: the blocks this process's allocation calls returned
//    (kAlloc, and kRealloc's new block), their count and bytes.
//  - *live at a moment*: blocks allocated (or inherited) and not yet freed
//    after every event at or before that moment.
//  - *not freed at exit* ("leaked" in field names): live when the trace
//    ends, after applying late frees that follow kEnd. Inherited blocks
//    count when still live. For an image that ended in exec these blocks
//    are "discarded by exec", never leaks (ProcessProfile::EndedInExec).
//  - *peak*: the maximum over time of the bytes live in the heap, the
//    moment it was first reached, and the exact per-site contribution at
//    that moment.
//  - *temporary*: an allocation freed (kFree, not realloc) by the thread
//    that allocated it, as that thread's next allocation-family call: no
//    other allocation and no other free by that thread in between (a
//    realloc counts as an allocation). heaptrack instead compares the
//    freed allocation's (stack, size) with the process's last allocation,
//    and counts a realloc's old block: docs/temporaries.md has the
//    measured differences. Not known in a sampled trace (the allocations
//    in between were not recorded).
//  - *runtime* sites: blocks made by the C/C++ runtime itself (libstdc++'s
//    emergency EH pool, glibc's per-thread DTV, ld.so's bookkeeping, stdio
//    buffers). See runtime_filter.h. They are not the program's: every
//    total leaves them out (allocated, frees, peak, live at a moment, not
//    freed at exit, temporary, the heap timeline and markers), and so do
//    the leak report, the call-site lists and, unless asked for
//    (--include-runtime), pprof, collapse, flamegraph and html. A site is
//    classified when it first allocates (so the peak is the program's);
//    `runtime_totals` holds their numbers, which reports print on one line.
//  - *estimates*: in a sampled trace (HEAPSIGHT_SAMPLE_BYTES) every count
//    and byte total in `Totals` is an estimate of the unsampled program
//    (Totals::estimated; sample_estimate.h); SiteStats keep the sampled
//    numbers.
#ifndef HEAPSIGHT_ANALYZER_TRACE_MODEL_H_
#define HEAPSIGHT_ANALYZER_TRACE_MODEL_H_

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "analyzer/model/growth_tracker.h"
#include "analyzer/model/heap_timeline.h"
#include "analyzer/model/mapped_vector.h"
#include "analyzer/model/site_timeline.h"
#include "analyzer/model/stack_trie.h"
#include "analyzer/model/leak_class_data.h"
#include "analyzer/model/progress.h"
#include "analyzer/symbols/module.h"
#include "analyzer/symbols/runtime_filter.h"
#include "format/chunk_encoder.h"
#include "format/trace_format.h"

namespace heapsight::analyzer {

class Symbolizer;
struct AddressPairingStats;
class ForkInheritanceSource;

struct SiteStats {
  uint64_t alloc_count = 0;    // allocations made by this process (not inherited)
  uint64_t alloc_bytes = 0;
  uint64_t live_count = 0;     // live at the moment AnalyzeOptions::at chose
  uint64_t live_bytes = 0;
  uint64_t leaked_count = 0;   // not freed at the end of the trace
  uint64_t leaked_bytes = 0;
  uint64_t peak_count = 0;     // live at the global peak
  uint64_t peak_bytes = 0;
  uint64_t temporary_count = 0;  // temporary allocations (file comment) and their bytes
  uint64_t temporary_bytes = 0;
  uint64_t inherited_count = 0;  // kInherited blocks (live when the process began)
  uint64_t inherited_bytes = 0;
  // Sampled traces (HEAPSIGHT_SAMPLE_BYTES) only: the allocations and bytes
  // the samples stand for, each sampled allocation of s bytes weighted by
  // 1 / (1 - exp(-s/period)), the inverse of its chance of being sampled.
  // Unbiased per allocation, where scaling a site's totals by their mean
  // size (pprof's and Go's way) undercounts sites of mixed sizes.
  double alloc_count_estimate = 0;
  double alloc_bytes_estimate = 0;
};

struct Site {
  uint64_t stack = 0;  // leaf stack node (0 = empty stack)
  format::Api api = format::Api::kUnknown;
  SiteKind kind = SiteKind::kProgram;
  SiteStats stats;
};

// The program's totals (runtime blocks left out; see the file comment):
// the one source of every total each command prints.
struct Totals {
  std::array<uint64_t, static_cast<size_t>(format::Api::kApiLimit)> allocs_by_api{};
  std::array<uint64_t, static_cast<size_t>(format::Api::kApiLimit)> frees_by_api{};  // all blocks
  uint64_t allocs = 0;            // blocks returned (kAlloc + kRealloc new side)
  uint64_t frees = 0;             // blocks released (kFree + kRealloc old side)
  uint64_t bytes_allocated = 0;
  uint64_t leaked_bytes = 0;      // not freed at exit, inherited included
  uint64_t leaked_blocks = 0;
  uint64_t temporary = 0;
  uint64_t inherited_bytes = 0;
  uint64_t inherited_blocks = 0;
  // The program's heap at its highest (first reached at peak_time_us):
  // the sum of the program sites' SiteStats::peak_*.
  uint64_t peak_bytes = 0;
  uint64_t peak_blocks = 0;
  uint64_t peak_time_us = 0;
  uint64_t failed_allocs = 0;     // kAllocFailed
  uint64_t bad_frees = 0;         // invalid or double frees (kFreeError 1-2)
  uint64_t unmatched_frees = 0;   // frees naming an id this trace never allocated (address
                                  // frees: an address with no live block)
  uint64_t lost_events = 0;       // kLost
  // Sampled traces: allocs, bytes_allocated, allocs_by_api, frees,
  // leaked_*, inherited_* and peak_* above are estimates of the real
  // program (sample_estimate.h says which estimator); the peak is the
  // moment the estimated heap was highest. Exact traces: false, 0.
  bool estimated = false;
  uint64_t sample_period = 0;      // mean bytes between samples
  uint64_t sampled_allocs = 0;     // allocations actually recorded
  uint64_t sampled_bytes = 0;
  // Two standard errors (about a 95% interval) of the estimates: exact for
  // the allocated numbers; for peak and not freed, the same variance
  // computed over the blocks live then (approximate: those two use Go's
  // per-site scaling). 0 in exact traces.
  uint64_t allocs_error = 0;
  uint64_t bytes_allocated_error = 0;
  uint64_t peak_bytes_error = 0;
  uint64_t leaked_bytes_error = 0;
  // False in sampled traces: `temporary` is not known there (0).
  bool temporary_known = true;
  // The trace's frees are compact (format::kFileFlagCompactFrees): every
  // count and byte total per site is exact; `temporary`, lifetimes and
  // which blocks are the ones not freed (their allocation times) are
  // approximate (CompactNote, analyzer/output/totals_text.h).
  bool compact_frees = false;
};

// The C/C++ runtime's own blocks, which Totals leaves out (estimates in a
// sampled trace, like Totals).
struct RuntimeTotals {
  uint64_t allocs = 0;
  uint64_t bytes_allocated = 0;
  uint64_t leaked_bytes = 0;
  uint64_t leaked_blocks = 0;
};

struct TimePoint {
  uint64_t time_us = 0;
  uint64_t value = 0;
};

struct Marker {
  uint64_t time_us = 0;
  std::string name;
  uint64_t heap_bytes = 0;   // the program's live heap at the marker (runtime blocks
                             // left out); an estimate in a sampled trace
  uint64_t heap_blocks = 0;
};

// The marker the preload writes when its heap limit (HEAPSIGHT_HEAP_LIMIT)
// first refused an allocation (named in format/trace_format.h).
using format::kHeapLimitMarker;

// Power-of-two size buckets: bucket 0 holds size 0, bucket b >= 1 holds
// sizes in [2^(b-1), 2^b).
inline constexpr int kSizeBuckets = 65;
int SizeBucket(uint64_t size);

// A stack the preload cut at HEAPSIGHT_MAX_DEPTH (its root node is a cut
// marker, docs/trace-format.md).
struct StackCut {
  bool cut = false;
  uint64_t missing = 0;  // frames not recorded; 0 if unknown
};

struct ProcessProfile {
  std::string trace_path;
  format::FileHeader header{};
  uint64_t pid = 0;
  uint64_t ppid = 0;
  std::string exe;                 // from kProcess ("" if none)
  std::vector<std::string> argv;
  std::string parent_trace;        // kProcess parent trace path
  bool complete = false;           // a kEnd record was read and the file is not truncated
  bool truncated = false;          // the file ended inside a block
  format::EndReason end_reason = format::EndReason::kExit;  // valid if complete
  int64_t exit_status = 0;                                  // valid if complete
  std::string exec_path;           // the last kExec's path ("" if none)

  // The image ended in a successful exec (kEnd(kExec) and no kExecFailed
  // after it). The kernel discards its whole heap at exec, so the blocks it
  // had not freed are not leaks: the leak pipeline (report/leak_report.h)
  // counts them as discarded by exec, never as leaked.
  bool EndedInExec() const { return complete && end_reason == format::EndReason::kExec; }
  // A segment of a rotated trace that `heapsight record` closed
  // (kEnd(kRotated)): the process ran on, so the blocks it had not freed
  // are carried into the next segment, never leaks (like exec's).
  bool EndedInRotation() const {
    return complete && end_reason == format::EndReason::kRotated;
  }
  uint64_t duration_us = 0;        // time of the last record
  uint64_t threads = 0;            // distinct thread streams
  std::vector<Module> modules;
  // Every (stack, api) that allocated. A compiler's trace has a hundred
  // thousand sites, grown one by one: in huge pages, and grown by moving
  // the pages, not copying them (mapped_vector.h).
  MappedVector<Site> sites;
  Totals totals;
  RuntimeTotals runtime_totals;
  std::array<uint64_t, kSizeBuckets> size_histogram{};  // the program's allocations (sampled
                                                        // ones in a sampled trace)
  std::vector<TimePoint> heap_timeline;  // live heap bytes (<= ~2000 points); estimates when sampled
  // The live heap (the program's: runtime blocks left out; estimated in a
  // sampled trace) as an exact step function, min/max per time bucket
  // (heap_timeline.h); its maximum is totals.peak_* at totals.peak_time_us.
  HeapTimeline heap_series;
  // The program sites' live and allocated bytes per time bucket, the
  // largest sites kept and the rest summed as "other" (site_timeline.h);
  // raw sampled bytes in a sampled trace.
  SiteTimeline site_series;
  std::vector<TimePoint> rss_timeline;   // kRss samples
  // AnalyzeOptions::track_growth: per site (same index as `sites`), the
  // trend of its live bytes from growth_window_begin_us to the end.
  std::vector<SiteGrowth> growth;
  uint64_t growth_window_begin_us = 0;
  uint64_t growth_window_end_us = 0;  // the last allocation or free
  std::vector<Marker> markers;          // in time order
  std::vector<std::string> warnings;     // analysis warnings (sequence gaps, ...)
  // Reachability classes of the last leak scan and free errors (issue 5).
  LeakClassData leak_classes;
  // Stack trie: node -> (parent, ip), an array by node id (stack_trie.h).
  StackTrie stack_nodes;
  // Symbolizer over `modules`, shared so its cache is reused by every
  // consumer of this profile. Never null after AnalyzeTrace succeeds.
  std::shared_ptr<Symbolizer> symbolizer;

  // The instruction pointers of a stack, innermost first (return addresses
  // as recorded). Stops at an undefined node or after 4096 frames. A cut
  // marker (format::IsStackCutMarker) is not a frame and is left out.
  std::vector<uint64_t> StackIps(uint64_t leaf) const;
  // Whether the preload cut the stack at its depth cap, and how many
  // frames it did not record.
  StackCut StackCutOf(uint64_t leaf) const;
};

struct AnalyzeOptions {
  enum class At { kEnd, kPeak, kTime, kMarker };
  At at = At::kEnd;        // which moment SiteStats::live_* describe
  uint64_t at_time_us = 0; // for kTime: live after every event at or before this time
  std::string at_marker;   // for kMarker: live when the first marker of this name was set
                           // (at the end if the trace has no such marker)
  // Told how far the analysis got, for traces big enough to take a while
  // (null: nobody is told). Not owned; must outlive AnalyzeTrace.
  ProgressListener* progress = nullptr;
  bool classify_runtime = true;  // mark runtime sites (needs symbolization)
  // Fit each site's live bytes over time (growth_tracker.h) during the last
  // `growth_window` of the trace; fills ProcessProfile::growth.
  bool track_growth = false;
  double growth_window = 0.5;
  // Blocks allocated and freed within one chunk bypass the live set
  // (chunk_pairing.h); off: every block goes through it, as before (tests
  // compare the two).
  bool pair_in_chunk = true;
  // If set, receives how many blocks were paired so (tests; null: not told).
  uint64_t* paired_blocks = nullptr;
  // Address-frees traces (format version 6): if set, receives the pairing
  // stage's counts (address_pairing.h; tests; null: not told).
  AddressPairingStats* address_pairing = nullptr;
  // Version-6 fork children: their parents' blocks at the fork from here
  // (one pass over each parent for all the command's children; null: each
  // child reads its parent's trace itself). Not owned.
  ForkInheritanceSource* fork_inheritances = nullptr;
};

// Analyzes one trace file. Errors name the file ("<path>: <what>"). A
// truncated file is analyzed as far as it goes (truncated = true).
absl::StatusOr<ProcessProfile> AnalyzeTrace(const std::string& path,
                                            const AnalyzeOptions& options = {});

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_TRACE_MODEL_H_
