// format/trace_reader.h: sequential reader of heapsight trace files.
//
// Reader side only. A trace is untrusted: the header is validated, every
// block is bounds-checked against kMaxChunkSize and the file size, and zstd
// frames must decompress to exactly the size the block header claims. A file
// that ends inside a block (the process was killed while writing) is not an
// error: the reader stops at the last whole block and reports truncated().
//
// Memory use is one block at a time, whatever the trace's length.
#ifndef HEAPSIGHT_FORMAT_TRACE_READER_H_
#define HEAPSIGHT_FORMAT_TRACE_READER_H_

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "format/trace_format.h"

namespace heapsight::format {

class TraceReader {
 public:
  // Opens `path` and validates its FileHeader. Errors name the file and say
  // what is wrong (not a heapsight trace, wrong version, too short).
  static absl::StatusOr<std::unique_ptr<TraceReader>> Open(const std::string& path);

  ~TraceReader();
  TraceReader(const TraceReader&) = delete;
  TraceReader& operator=(const TraceReader&) = delete;

  const FileHeader& header() const { return header_; }
  const std::string& path() const { return path_; }
  uint64_t file_size() const { return file_size_; }

  // Reads the next block and decompresses its chunk into `chunk` (the
  // ChunkHeader and records, exactly BlockHeader.raw_size bytes). Returns
  // false at the end of the data; then status() says whether that end was
  // clean, truncated() whether the file ended mid-block. `offset`, when
  // non-null, receives the block's file offset.
  bool NextChunk(std::vector<uint8_t>* chunk, uint64_t* offset = nullptr);

  // Reads the block at `offset` (from a previous NextChunk) without moving
  // the sequential position. For indexed, seeking readers.
  absl::Status ReadChunkAt(uint64_t offset, std::vector<uint8_t>* chunk);

  // Reads only the block header at `offset` (48 bytes: sizes, codec and a
  // copy of the chunk header), validates it and sets *next to the following
  // block's offset. OutOfRange when the block is cut off by end of file.
  // Indexing a trace this way decompresses nothing.
  absl::Status ReadBlockHeaderAt(uint64_t offset, BlockHeader* block, uint64_t* next);

  // OK unless a block was corrupt (bad magic, impossible sizes, zstd error).
  const absl::Status& status() const { return status_; }
  // True when the file ends inside a block: the writer was cut short.
  bool truncated() const { return truncated_; }
  // Byte offset of the next block.
  uint64_t position() const { return position_; }

 private:
  TraceReader(std::string path, std::FILE* file, uint64_t file_size, const FileHeader& header,
              uint64_t data_start);
  // Reads one block at `offset` into `chunk`; sets *next to the following
  // offset. Returns OK, or OutOfRange for a block cut off by end of file.
  absl::Status ReadBlock(uint64_t offset, std::vector<uint8_t>* chunk, uint64_t* next);
  absl::Status CheckBlockHeader(const BlockHeader& block, uint64_t offset) const;

  std::string path_;
  std::FILE* file_;
  uint64_t file_size_;
  FileHeader header_;
  uint64_t position_;
  absl::Status status_;
  bool truncated_ = false;
  std::vector<uint8_t> compressed_;
  // One decompression context for every block (ZSTD_decompress would
  // allocate and free a ~100 KB context per block: heap churn that grew the
  // analyzer's RSS to 3x its heap on traces of many threads).
  struct DctxDeleter {
    void operator()(void* dctx) const;
  };
  std::unique_ptr<void, DctxDeleter> dctx_;
};

// Validates a FileHeader read from `path` (used by Open; exposed for tests).
absl::Status ValidateFileHeader(const FileHeader& header, const std::string& path);

}  // namespace heapsight::format

#endif  // HEAPSIGHT_FORMAT_TRACE_READER_H_
