// cli/record/trace_rotator.h: the trace on disk of a long run, in segments
// (`heapsight record --rotate-size=N` / `--rotate-time=D`).
//
// The preload's writer is not changed: it writes its one growing trace into
// the session's private directory, which the record process reads anyway
// (TraceTail, with the read ranges given back to the file system). The
// rotator copies every block it reads, as stored, into the current segment
// <stem>.<n>.hst (n = 1, 2, ...) in the output directory, and starts the
// next segment when the current one reaches the size or the age asked for.
//
// Each segment is a trace of its own that every command reads alone: the
// file header is the process's, and a segment after the first starts with
// a chunk of thread index kPreambleThread that repeats what the blocks
// that follow refer to: the process record, the modules loaded, the whole
// stack trie, and every block live at the cut as kInherited (a block
// "live when this trace began"), so frees in the segment find their
// allocation, and the frees still waiting for their allocation (which then
// comes in this segment; only a cut that could not wait, below, leaves
// any: the segment before counts them as unmatched). A segment
// the rotator closes ends with one more kPreambleThread chunk holding an end
// record of reason kRotated (timed at the newest record read so far, so no
// record of the segment comes after it): it reads as complete, and its
// blocks still live are carried into the next segment's preamble, not
// called leaks. The last segment ends with the process's own end record.
// With keep_segments, older segments are deleted.
//
// Where a segment is cut (flaky23, 2026-12-07): chunks reach the file out
// of file-time order (another thread's chunk, or one of the same thread's
// that the preload's writer wrote late because the thread wrote a later
// one inline when the spool was full), so a free can be read before its
// allocation. A cut between the two would leave that free unmatched in
// the earlier segment ("frees name blocks this trace never allocated"):
// lost pairing a user sees. A due cut therefore waits until no event read
// is waiting for its pairing (LiveProcess::waiting_events() == 0), for at
// most kMaxDeferredBlocks blocks (a thread that keeps the allocation in a
// partial chunk for long must not stop the rotation; such a cut is the
// only one that can still leave an unmatched free, and the next segment's
// preamble repeats the waiting frees so it pairs them). An address-frees
// trace's LiveProcess holds the last seconds of events in its time merge
// (chunk_time_merge.h); a due cut has it apply them first (DrainMerge),
// so those pair in file order, as every event did before the merge: a
// cut is rare (one a segment), the window seconds long.
//
// Files are created O_EXCL|O_NOFOLLOW, mode 0600, like the preload's.
#ifndef HEAPSIGHT_CLI_RECORD_TRACE_ROTATOR_H_
#define HEAPSIGHT_CLI_RECORD_TRACE_ROTATOR_H_

#include <cstdint>
#include <deque>
#include <string>

#include "absl/status/status.h"
#include "analyzer/model/live_process.h"
#include "format/trace_format.h"

namespace heapsight::record {

struct RotateLimits {
  uint64_t max_bytes = 0;     // --rotate-size; 0: no size limit
  uint64_t max_seconds = 0;   // --rotate-time; 0: no age limit
  uint64_t keep_segments = 0; // --rotate-keep; 0: keep every segment
};

class TraceRotator {
 public:
  // Thread index of the preamble chunks (no real thread has it).
  static constexpr uint32_t kPreambleThread = 0xfffffffe;

  // Segments are `stem`.<n>.hst, e.g. stem "/out/heapsight.app.42".
  TraceRotator(std::string stem, RotateLimits limits);
  ~TraceRotator();
  TraceRotator(const TraceRotator&) = delete;
  TraceRotator& operator=(const TraceRotator&) = delete;

  // Appends one stored block of `process`'s trace; `process` has read
  // every block before this one (its state is the cut's, for a preamble:
  // a due cut first has it apply what its time merge holds, DrainMerge).
  absl::Status Append(const std::string& block, analyzer::LiveProcess& process);

  // Segments written so far (paths), oldest first, deleted ones left out.
  const std::deque<std::string>& segments() const { return segments_; }

  // Blocks a due cut may wait for a boundary with no waiting event. The
  // preload's spool holds 32 chunks: a chunk written late comes a few
  // dozen blocks after the one written ahead of it.
  static constexpr uint64_t kMaxDeferredBlocks = 256;
  // Blocks written after their cut was due, waiting for a clean boundary
  // (all segments so far).
  uint64_t deferred_blocks() const { return deferred_total_; }

 private:
  absl::Status Open(const analyzer::LiveProcess& process);
  absl::Status WritePreamble(const analyzer::LiveProcess& process);
  // Appends the closing chunk (kEnd, kRotated) to the open segment.
  absl::Status WriteRotatedEnd(const analyzer::LiveProcess& process);
  absl::Status Write(const void* data, size_t size);

  std::string stem_;
  RotateLimits limits_;
  int fd_ = -1;
  uint64_t number_ = 0;       // of the open segment
  uint64_t bytes_ = 0;        // written to it
  uint64_t preamble_sequence_ = 0;  // next kPreambleThread chunk sequence in it
  int64_t opened_ms_ = 0;
  uint64_t deferred_blocks_ = 0;  // since the open segment's cut was due
  uint64_t deferred_total_ = 0;
  std::deque<std::string> segments_;
};

}  // namespace heapsight::record

#endif  // HEAPSIGHT_CLI_RECORD_TRACE_ROTATOR_H_
