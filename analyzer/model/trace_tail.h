// analyzer/model/trace_tail.h: reads a trace file while its writer is still
// appending to it (`heapsight record --serve`), whole blocks only.
//
// The preload appends a block (header and zstd frame) with one write, but a
// reader can still see it half written, or see only the file header so
// far. Poll() hands over every block that is complete on disk and stops
// before one that is not: that block is read again at the next Poll(),
// never reported as an error. A block that is complete but corrupt is an
// error (DataLoss), as for TraceReader, which does the reading and every
// check (trace_reader.h).
//
// With release_consumed, Poll() also gives the disk blocks of the bytes
// already read back to the file system (fallocate PUNCH_HOLE): the file
// keeps its size and the writer its offset, but a trace that is only
// streamed (`record --no-trace`) takes the disk space of its unread tail.
#ifndef HEAPSIGHT_ANALYZER_MODEL_TRACE_TAIL_H_
#define HEAPSIGHT_ANALYZER_MODEL_TRACE_TAIL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/trace_format.h"
#include "format/trace_reader.h"

namespace heapsight::analyzer {

class TraceTail {
 public:
  explicit TraceTail(std::string path, bool release_consumed = false);
  ~TraceTail();
  TraceTail(const TraceTail&) = delete;
  TraceTail& operator=(const TraceTail&) = delete;

  // Reads the blocks completed since the last call, at most `max_blocks`,
  // and calls fn(chunk) for each decoded chunk in file order. Returns the
  // number of chunks handed over (0: nothing new, or the file header is not
  // written yet). Errors: the file vanished or is not a trace (NotFound,
  // InvalidArgument...), a corrupt block (DataLoss), or fn's error; the
  // tail then stays at the failing block.
  absl::StatusOr<size_t> Poll(const std::function<absl::Status(const std::vector<uint8_t>&)>& fn,
                              size_t max_blocks = SIZE_MAX);

  // Also hands every block's bytes as stored (header and payload, before
  // fn sees its chunk) to `sink`, e.g. to copy the trace elsewhere
  // (`record --rotate-size`); a sink error stops Poll() like fn's.
  void set_raw_sink(std::function<absl::Status(const std::string&)> sink) {
    raw_sink_ = std::move(sink);
  }

  // True once the file header was read (header() is valid).
  bool has_header() const { return has_header_; }
  const format::FileHeader& header() const { return header_; }
  const std::string& path() const { return path_; }
  // Offset of the first byte not read yet (every block before it was read).
  uint64_t consumed() const { return offset_; }
  // Bytes of the file not read yet, as of the last Poll's look at its size.
  uint64_t unread() const { return reader_size_ > offset_ ? reader_size_ - offset_ : 0; }
  // Bytes given back to the file system so far (release_consumed).
  uint64_t released() const { return released_; }

 private:
  // Reads the stored bytes [begin, end) into raw_.
  absl::Status ReadRaw(uint64_t begin, uint64_t end);
  // Punches out [released_, consumed) rounded down to whole 64 KiB units.
  void ReleaseConsumed();

  std::string path_;
  bool release_consumed_;
  bool has_header_ = false;
  format::FileHeader header_{};
  uint64_t offset_ = 0;
  uint64_t reader_size_ = 0;  // the file size reader_ was opened at
  std::unique_ptr<format::TraceReader> reader_;
  std::vector<uint8_t> chunk_;
  uint64_t released_ = 0;
  int punch_fd_ = -1;
  int read_fd_ = -1;
  std::function<absl::Status(const std::string&)> raw_sink_;
  std::string raw_;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_TRACE_TAIL_H_
