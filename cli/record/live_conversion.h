// cli/record/live_conversion.h: `heapsight record --pairing=address`
// converts each trace to version 4 while the program runs
// (analyzer/model/pairing_converter.h).
//
// In address mode the program keeps no table of its live blocks, and its
// trace names frees by address; every reader of such a trace must pair
// them again (3-4x the CPU and memory of a version-4 trace's analysis on
// python). This task does the pairing once, in the record process, on the
// second core, while the program runs, as heaptrack_interpret does for
// heaptrack: a thread polls each trace of the manifest (TraceTail, whole
// blocks as they reach the file) and feeds its chunks to a PairingConverter
// writing "<trace>.converting" beside it. The converter merges the threads'
// chunks into time order up to a watermark: the newest chunk base time
// seen less a window (ChunkTimeMerge::WindowForFlushMs) longer than the preload's flush
// interval (record sets HEAPSIGHT_FLUSH_MS=250 for this: every event is in
// the file about 250 ms after its time), so that a chunk still to come has
// no event below the watermark. When the program has exited,
// Finish() reads what is left, and a trace whose conversion read the
// process's end record replaces the version-6 file with its version-4 one
// (rename: the name the manifest lists now holds a version-4 trace).
//
// Fork families: a fork child's trace is converted after the exit, with
// its parent's blocks at the fork read from the parent's version-6 trace;
// a forking parent is converted live like any trace. The children of one
// parent are converted in one pass over the parent's trace
// (ReadForkInheritances: each child is converted at its fork, with the
// parent's blocks live then), so a shell loop's hundreds of children read
// their shell's trace once, not once each (before serve30 each child read
// it again up to its fork, and families of more than 64 children, or
// past 64 MiB of parent traces read again, stayed version 6). Every
// conversion ends in its .converting file before any trace is renamed, so
// each child still finds its parent at version 6; and the parent of a
// child that stays version 6 stays version 6 too (that child reads it), up
// the tree.
//
// The wait after the exit is bounded (record's --convert-wait; by default
// a tenth of the program's run, at least 0.1 s): what the pairing could
// not keep up with while the program ran is converted after it, and on an
// event-dense program that took longer than the program (alloc_bench's
// 4 M events in 0.14 s: 0.6 s more). Finish drains each trace in steps of
// trace time, estimates the rest from the chunks converted so far, and
// leaves a trace version 6 as soon as its rest would end past the
// deadline (and every trace still unconverted once it has passed, fork
// children included). A version-6 trace loses nothing: every command
// reads it, and `heapsight convert` converts it later.
//
// A trace keeps its version-6 form, and its .converting file is removed,
// when the conversion cannot be exact: events the pairing could not put
// in order (a chunk that came later than the window allowed: the analysis
// of the version-6 trace merges the whole file), a fork child whose
// parent's trace is not found, the parent of a trace that stays version 6,
// a process killed before its end record (its spool may still hold chunks
// that a reader of the version-6 trace appends), a damaged block, or any
// write error. Such a trace is analyzed as version 6, as without this task;
// Finish() says why.
//
// Memory: each converting trace's pairing state (16 bytes per heap address
// the program used: 143 MB for python's 1,000,000-entry dict), in the
// record process, not the program's.
#ifndef HEAPSIGHT_CLI_RECORD_LIVE_CONVERSION_H_
#define HEAPSIGHT_CLI_RECORD_LIVE_CONVERSION_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "analyzer/model/fork_inheritance.h"
#include "analyzer/model/pairing_converter.h"
#include "analyzer/model/trace_tail.h"

namespace heapsight::record {

class LiveConversion {
 public:
  // `list_traces` gives the traces written so far, each once, in the order
  // written (TraceManifest::Read); called on the task's thread.
  // The version-4 traces' blocks are compressed at `zstd_level` (the
  // preload's HEAPSIGHT_ZSTD_LEVEL; 0: raw).
  // `merge_window_us`: see the file comment (ChunkTimeMerge::WindowForFlushMs).
  LiveConversion(std::function<std::vector<std::string>()> list_traces, int zstd_level,
                 uint64_t merge_window_us);
  ~LiveConversion();
  LiveConversion(const LiveConversion&) = delete;
  LiveConversion& operator=(const LiveConversion&) = delete;

  // Starts the polling thread (StartThreadWithoutForwardedSignals).
  void Start();

  struct Outcome {
    std::string trace;
    bool converted = false;  // the file is now version 4
    std::string why_not;     // else: why it stays version 6 ("" if it was not version 6)
    analyzer::PairingConversionStats stats;
  };
  // After the program's exit: stops the thread, reads every trace to its
  // end, converts the fork children, and replaces the version-6 files
  // whose conversion is complete. `wait_us` bounds the time this takes
  // (the file comment; kNoLimit: as long as the conversions need).
  static constexpr uint64_t kNoLimit = UINT64_MAX;
  std::vector<Outcome> Finish(uint64_t wait_us = kNoLimit);

  // While the program runs each trace's tail is read at most this many
  // blocks at a time, then drained: a pairing that lags leaves its backlog
  // in the file, not in this process's memory.
  static constexpr size_t kBlocksPerPoll = 32;
  // A conversion that falls this far behind its trace while the program
  // runs (bytes written to the file and not read yet) gives up: the trace
  // stays version 6. The pairing is slower than such a program writes
  // (alloc_bench's loop: 28 M events a second plain against 8-10 M paired),
  // so it would only hold the second core, and after the exit the backlog
  // (a 40 M-allocation run held 366 MB of raw chunks at once) only to give
  // up at --convert-wait's deadline. python's trace stays within a few MB.
  static constexpr uint64_t kMaxBehindBytes = uint64_t{32} << 20;

  // record's default wait (--convert-wait=auto) after a program that ran
  // `run_us`: a tenth of it, at least kMinAutoWaitUs.
  static constexpr uint64_t kMinAutoWaitUs = 100'000;
  static uint64_t AutoWaitUs(uint64_t run_us) { return std::max(kMinAutoWaitUs, run_us / 10); }

 private:
  struct Member {
    std::string path;
    std::string temp;  // path + ".converting"
    std::unique_ptr<analyzer::TraceTail> tail;
    std::unique_ptr<analyzer::PairingConverter> converter;
    int fd = -1;
    bool done = false;        // given up, not version 6, or a fork child
    bool fork_child = false;  // converted by Finish, not live
    bool ready = false;       // Finish: converted into `temp`, to be renamed
    std::string why_not;
  };

  // Finish's bounded wait: the deadline (CLOCK_MONOTONIC, us; kNoLimit:
  // none) and the wait it came from, for the reasons given.
  bool PastDeadline() const;
  std::string LateReason(uint64_t estimate_us) const;
  // Drains `m`'s merge up to its newest chunk in steps of trace time while
  // the deadline allows (the file comment). Ok with *late set (and
  // *estimate_us, 0 if the deadline had passed) when it stopped for time.
  absl::Status DrainInTime(Member& m, bool* late, uint64_t* estimate_us);

  // Reads the blocks written since the last call; returns how many.
  size_t Poll();
  void GiveUp(Member& m, std::string why);
  // Finish's steps: a live conversion's end, a fork child's conversion,
  // each into m.temp (m.ready), else m.why_not.
  void FinishLive(Member& m, analyzer::PairingConversionStats* stats);
  void ConvertForkChild(Member& m, analyzer::PairingConversionStats* stats,
                        const analyzer::ForkInheritance* inheritance);
  // Converts every fork child (members_[i] for i in `children`, their
  // outcomes' stats in `out`), one pass over each parent's trace.
  void ConvertForkChildren(const std::vector<size_t>& children, std::vector<Outcome>* out);
  // Their common end: m.ready if `s` is ok and the end record was read,
  // else m.why_not and the .converting file removed.
  void Conclude(Member& m, absl::Status s, const analyzer::PairingConversionStats& stats);
  void Run();

  std::function<std::vector<std::string>()> list_traces_;
  int zstd_level_;
  uint64_t merge_window_us_;
  std::vector<std::unique_ptr<Member>> members_;
  uint64_t deadline_us_ = kNoLimit;
  uint64_t wait_us_ = kNoLimit;
  // Finish with a bounded wait: Poll reads and leaves the draining to
  // DrainInTime.
  bool finishing_ = false;
  std::thread thread_;
  std::atomic<bool> stop_{false};
};

}  // namespace heapsight::record

#endif  // HEAPSIGHT_CLI_RECORD_LIVE_CONVERSION_H_
