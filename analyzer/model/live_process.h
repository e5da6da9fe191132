// analyzer/model/live_process.h: the incremental analysis of one process's
// trace while it is being written (`heapsight record --serve`).
//
// AnalyzeTrace (trace_model.h) reads a finished trace and merges its
// threads' chunks by time. A growing trace cannot be merged by time: a
// thread's next chunk may come seconds later. LiveProcess instead takes the
// chunks in file order, as TraceTail hands them over, and relies on what
// the format guarantees without time order (trace_format.h): allocation
// ids are process-unique and never reused, and every free names its id. A
// free whose allocation has not been read yet (the allocating thread's
// chunk is still in its buffer) waits in a pending set until that
// allocation arrives (also a thread's own chunk written after its next
// one: ThreadOrder below); a free naming a counter its thread already
// passed, in sequence order, is unmatched (in a sampled trace: a block
// that was not sampled).
//
// The numbers are trace_model.h's, at "now" (the newest record read):
// allocated (since the process began), live now (what a final trace calls
// "not freed at exit"), the classes of the last leak scan for the blocks
// still live, and the runtime split (runtime_filter.h). Snapshot() gives
// them as a ProcessProfile, so the output layer (pprof, leak JSON) is the
// same as for a finished trace.
//
// Memory: the live blocks (LiveSet, 16 bytes a slot), the sites, the stack
// trie and the modules, plus the frees waiting for their allocation
// (bounded by kMaxPendingFrees) and the block classes of the last scan
// (bounded by the blocks live at that scan). Nothing grows with the
// length of the run.
//
// Not thread-safe: one thread applies chunks and takes snapshots.
#ifndef HEAPSIGHT_ANALYZER_MODEL_LIVE_PROCESS_H_
#define HEAPSIGHT_ANALYZER_MODEL_LIVE_PROCESS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "analyzer/model/address_pairing.h"
#include "analyzer/model/chunk_events.h"
#include "analyzer/model/chunk_time_merge.h"
#include "analyzer/model/compact_free_index.h"
#include "analyzer/model/leak_scan_tracker.h"
#include "analyzer/model/live_set.h"
#include "analyzer/model/site_index.h"
#include "analyzer/model/trace_model.h"
#include "format/chunk_decoder.h"
#include "format/trace_format.h"

namespace heapsight::analyzer {

// The running numbers of a LiveProcess, every block counted (the C/C++
// runtime's too: telling them apart needs symbolization, which Snapshot
// does). Raw numbers: in a sampled trace the recorded samples.
struct LiveCounters {
  uint64_t allocs = 0;           // allocation records applied
  uint64_t bytes_allocated = 0;
  uint64_t frees = 0;            // blocks released
  uint64_t live_blocks = 0;
  uint64_t live_bytes = 0;
  uint64_t peak_bytes = 0;       // highest live_bytes so far (an estimate when sampled)
  uint64_t unmatched_frees = 0;
  uint64_t pending_frees = 0;    // frees waiting for their allocation
  uint64_t rss_bytes = 0;        // the last kRss sample (0: none yet)
  uint64_t chunks = 0;           // chunks applied
  uint64_t last_time_us = 0;     // the newest record's time
};

// The last leak scan's totals, as its kLeakScan record gives them.
struct LiveLeakScan {
  uint64_t scan = 0;  // 0: no scan yet
  uint64_t blocks[format::kLeakClassCount] = {};  // by LeakClass - 1
  uint64_t bytes[format::kLeakClassCount] = {};
};

class LiveProcess {
 public:
  // Frees of ids not allocated yet that are kept, at most.
  static constexpr size_t kMaxPendingFrees = size_t{1} << 22;

  // `merge_window_us`: address-frees traces (version 6) only, the window
  // of the time merge (chunk_time_merge.h; ChunkTimeMerge::WindowForFlushMs
  // of the preload's HEAPSIGHT_FLUSH_MS).
  LiveProcess(std::string trace_path, const format::FileHeader& header,
              uint64_t merge_window_us = ChunkTimeMerge::WindowForFlushMs(0));
  ~LiveProcess();
  LiveProcess(const LiveProcess&) = delete;
  LiveProcess& operator=(const LiveProcess&) = delete;

  // Applies every record of one decoded chunk (a ChunkHeader and its
  // records, as TraceReader hands them over). A malformed chunk is an
  // error naming the trace; the records before the error stay applied.
  //
  // Address frees (version 6): the chunk joins the time merge
  // (chunk_time_merge.h), and the events earlier than the newest chunk's
  // base time less the merge window are applied, in time order; the rest
  // wait for a later chunk, AdvanceClock or DrainMerge. So the numbers of
  // such a trace lag its newest record by up to the window.
  absl::Status ApplyChunk(const std::vector<uint8_t>& chunk);

  // Address frees: applies the events earlier than `trace_time_us` (the
  // trace's clock, FileHeader::start_monotonic_ns's) less the merge
  // window. For a reader that has read the whole file as it was at
  // `trace_time_us`: every event older than the window is in it (the
  // preload's HEAPSIGHT_FLUSH_MS), even a quiet process's. No-op for other
  // traces.
  absl::Status AdvanceClock(uint64_t trace_time_us);

  // Address frees: applies every event the merge holds, as if no chunk
  // were still to come (the trace is read to its end, or a rotated
  // segment is cut here: trace_rotator.h). No-op for other traces.
  absl::Status DrainMerge();

  // Applies one record of thread `thread_index`.
  void Apply(const format::Record& r, uint32_t thread_index);

  // The process as a finished trace would describe it if it ended now:
  // sites (SiteStats::live_* and leaked_* = live now, the runtime's sites
  // classified), totals (trace_model.h's definitions, estimates when
  // sampled; peak: LiveCounters::peak_bytes), modules, stack trie, a
  // symbolizer (kept and reused between snapshots), and the leak classes of
  // the last scan for the blocks still live. `complete` is true once the
  // end record was read. Without `with_stacks` the modules and the stack
  // trie are left out (numbers only: cheaper, for metrics).
  ProcessProfile Snapshot(bool with_stacks = true);

  const format::FileHeader& header() const { return header_; }
  const std::string& trace_path() const { return trace_path_; }
  uint64_t pid() const { return header_.pid; }
  const std::string& exe() const { return exe_; }
  bool ended() const { return ended_; }
  const LiveCounters& counters() const { return counters_; }
  const LiveLeakScan& last_scan() const { return last_scan_; }
  size_t site_count() const { return sites_.size(); }
  // What a trace that starts now must repeat for its records to be read
  // alone (cli/record/trace_rotator.h): the process record's fields, the
  // modules loaded, the stack trie, every live block, and the frees still
  // waiting for their allocation.
  const std::vector<std::string>& argv() const { return argv_; }
  uint64_t ppid() const { return ppid_ != 0 ? ppid_ : header_.ppid; }
  const std::string& parent_trace() const { return parent_trace_; }
  const std::vector<Module>& modules() const { return modules_; }
  const StackTrie& stack_nodes() const {
    return stack_nodes_;
  }
  // Calls fn(id, size, stack, api) for every live block. Address frees
  // (version 6): its address instead of its id (what a version-6
  // kInherited names, trace_format.h), for the blocks the pairing placed.
  template <typename Fn>
  void ForEachLiveBlock(Fn fn) const {
    absl::flat_hash_map<uint64_t, uint64_t> address_of;  // id -> address
    if (pairer_ != nullptr) {
      pairer_->ForEachLive([&](uint64_t address, uint64_t id) { address_of[id] = address; });
    }
    live_.ForEach([&](uint64_t id, const LiveBlock& b) {
      const Site& site = sites_[b.site].site;
      if (pairer_ == nullptr) {
        fn(id, b.size, site.stack, site.api);
      } else if (auto it = address_of.find(id); it != address_of.end()) {
        fn(it->second, b.size, site.stack, site.api);
      }
    });
  }

  // Calls fn(id) for every free whose allocation was not read yet.
  template <typename Fn>
  void ForEachPendingFree(Fn fn) const {
    for (uint64_t id : pending_frees_) fn(id);
  }
  // Compact traces: calls fn(stack, size, count) for the compact frees
  // still waiting for a block of their stack and size.
  template <typename Fn>
  void ForEachPendingCompactFree(Fn fn) const {
    compact_index_.ForEachPending(fn);
  }
  bool compact_frees() const { return compact_; }
  // Records read whose pairing is not known yet: frees waiting for their
  // allocation (ids or compact), and address-mode events the pairing
  // holds, and chunks of the time merge not applied yet (a chunk counts
  // one). A trace cut while this is not 0 splits a free from its
  // allocation (trace_rotator.h cuts only where it is 0, when it can,
  // after DrainMerge).
  size_t waiting_events() const {
    return pending_frees_.size() + compact_index_.pending() +
           (pairer_ != nullptr ? pairer_->held() + merge_->waiting_chunks() : 0);
  }

  // Markers read so far (kMarker records), and the newest one's name.
  uint64_t marker_count() const { return marker_count_; }
  const std::string& last_marker() const { return last_marker_; }

 private:
  struct LiveSite {
    Site site;
    bool classified = false;  // kind is final (stack and modules were complete)
  };

  uint32_t SiteFor(uint64_t stack, format::Api api);
  void Allocate(uint64_t id, format::Api api, uint64_t size, uint64_t stack,
                uint32_t thread_index);
  void Inherit(const format::Record& r);
  void Free(uint64_t id);
  void FreeCompact(uint64_t stack, uint64_t size);
  void AddLive(uint32_t site, uint64_t size);
  void RemoveLive(const LiveBlock& block);
  void ClassifySites();

  std::string trace_path_;
  format::FileHeader header_;
  double sample_period_ = 0;  // > 1: a sampled trace
  std::string exe_;
  std::vector<std::string> argv_;
  uint64_t ppid_ = 0;
  std::string parent_trace_;
  bool ended_ = false;
  format::EndReason end_reason_ = format::EndReason::kExit;
  int64_t exit_status_ = 0;
  std::vector<Module> modules_;
  StackTrie stack_nodes_;
  std::vector<LiveSite> sites_;
  SiteIndex site_index_;  // (stack, api) -> index in sites_
  LiveSet live_;
  absl::flat_hash_set<uint64_t> pending_frees_;
  // Compact frees (format::kFileFlagCompactFrees): the live blocks by
  // (stack, size), oldest first (the scan's classes go through it,
  // LeakScanTracker::OnCompactBlockClasses).
  bool compact_ = false;
  CompactFreeIndex compact_index_;
  // Address frees (format version 6): the pairing stage (address_pairing.h)
  // gives frees their blocks' ids, the events reaching it in time order
  // through the merge (chunk_time_merge.h; stop 37 paired chunks in file
  // order, and a busy address's hand-off counts aliased). No slack (a held
  // event waits until it is consistent: a chunk can still come later than
  // the window), and room for a thread's chunk or more held.
  std::unique_ptr<AddressPairer> pairer_;
  std::unique_ptr<ChunkTimeMerge> merge_;
  uint64_t merge_window_us_;
  EventArray paired_;
  // The merge's output: events paired and applied, chunks counted.
  class MergeSink final : public ChunkTimeMerge::Sink {
   public:
    explicit MergeSink(LiveProcess& p) : p_(p) {}
    absl::Status OnChunkBegin(const format::ChunkHeader& header) override;
    absl::Status OnEvents(const Event* begin, const Event* end) override;
    absl::Status OnChunkEnd(const format::ChunkHeader& header) override;

   private:
    LiveProcess& p_;
  };
  MergeSink merge_sink_{*this};
  // Applies the events the pairing gave out (each with its own stream).
  void ApplyPaired();
  // Which allocation counters of a thread were applied, for telling a free
  // whose allocation is still to come (pending) from one that names a
  // block never allocated (unmatched). A thread's chunks can reach the
  // file out of sequence order: when the preload's spool is full, the
  // thread writes its next chunk inline, ahead of the spooled ones
  // (trace_flusher.h). So "passed" is by sequence, not by the highest
  // counter seen (flaky23, 2026-12-07: that rule called the frees of a
  // late chunk's blocks unmatched, left those blocks live for ever, and
  // let a rotation cut fall between them).
  struct ThreadOrder {
    uint64_t next_sequence = 0;  // chunks below it were applied
    uint64_t prefix_end = 0;     // counters below it are in those chunks
    // Chunks applied past a missing one: sequence -> their counters' end.
    absl::flat_hash_map<uint64_t, uint64_t> ahead;
  };
  absl::flat_hash_map<uint32_t, ThreadOrder> order_;
  // The chunk being applied: its thread, first counter and counters' end.
  uint32_t chunk_thread_ = UINT32_MAX;
  uint64_t chunk_first_ = 0;
  uint64_t chunk_end_ = 0;
  // Chunks a thread may have applied past a missing one before the gap is
  // given up (a chunk the preload never wrote): bounds `ahead`.
  static constexpr size_t kMaxAheadChunks = 4096;
  void EndChunk(uint64_t sequence);
  double estimated_live_bytes_ = 0;  // sampled traces: the peak's running estimate
  LiveCounters counters_;
  LiveLeakScan last_scan_;
  LeakClassData leak_data_;  // scan header fields of the last scan
  LeakScanTracker leak_scan_;  // the last scan's classes
  uint64_t marker_count_ = 0;
  std::string last_marker_;
  std::shared_ptr<Symbolizer> symbolizer_;  // over modules_[0, symbolizer_modules_)
  size_t symbolizer_modules_ = 0;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_LIVE_PROCESS_H_
