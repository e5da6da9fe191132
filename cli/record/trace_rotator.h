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
// allocation, and the frees read before their allocation (which then comes
// in this segment; the segment before counts them as unmatched). A segment
// the rotator closes ends with one more kPreambleThread chunk holding an end
// record of reason kRotated (timed at the newest record read so far, so no
// record of the segment comes after it): it reads as complete, and its
// blocks still live are carried into the next segment's preamble, not
// called leaks. The last segment ends with the process's own end record.
// With keep_segments, older segments are deleted.
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

  // Appends one stored block of `process`'s trace; `process` has applied
  // every block before this one (its state is the cut's, for a preamble).
  absl::Status Append(const std::string& block, const analyzer::LiveProcess& process);

  // Segments written so far (paths), oldest first, deleted ones left out.
  const std::deque<std::string>& segments() const { return segments_; }

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
  std::deque<std::string> segments_;
};

}  // namespace heapsight::record

#endif  // HEAPSIGHT_CLI_RECORD_TRACE_ROTATOR_H_
