// format/chunk_decoder.h: decodes the records of one chunk.
//
// Reader side only (the analyzer, the dump tool and tests). Chunks are
// untrusted input: every field is bounds-checked and a malformed record stops
// decoding with an error naming the offset. String fields are views into the
// chunk buffer, valid while that buffer lives.
//
// Speed: this is the analyzer's innermost loop (one call per event). The
// common records (kAlloc, kFree, kRealloc) take a fast path whose varint
// reads skip the per-byte end checks when at least kFastReadBytes remain;
// the checked path decodes anything the fast path declines, so both give the
// same records and the same errors. Fields that a record does not set keep
// the values of earlier records, except the list and string fields, which
// every record clears.
#ifndef HEAPSIGHT_FORMAT_CHUNK_DECODER_H_
#define HEAPSIGHT_FORMAT_CHUNK_DECODER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "format/chunk_encoder.h"
#include "format/trace_format.h"
#include "format/varint.h"

namespace heapsight::format {

// One decoded record. Which fields are meaningful depends on `tag`; see the
// RecordTag comments in trace_format.h.
struct Record {
  RecordTag tag = RecordTag::kAlloc;
  uint64_t time_us = 0;    // absolute, since FileHeader.start_monotonic_ns
  uint64_t time2_us = 0;   // kRealloc: when the new block was allocated
  Api api = Api::kUnknown;
  uint64_t size = 0;
  uint64_t stack = 0;      // leaf stack node, 0 = empty
  uint64_t alignment = 0;
  uint64_t address = 0;
  uint64_t id = 0;         // kAlloc/kRealloc/kInherited: the new id; kFree: the freed id
  uint64_t old_id = 0;     // kRealloc: the freed id
  uint64_t value = 0;      // node (kStackNode), module id, rss, tid, child pid, dropped count
  uint64_t value2 = 0;     // parent (kStackNode), load address (kModule), creator, parent pid
  uint64_t ip = 0;         // kStackNode
  uint8_t code = 0;        // FreeError, EndReason
  int64_t exit_status = 0;
  std::string_view text;   // path, name, executable
  std::string_view text2;  // build id bytes, parent trace path
  std::vector<SegmentInfo> segments;  // kModule
  std::vector<std::string_view> argv;  // kProcess
  // kLeakScan: value = scan number, code = ScanReason, size = duration_us,
  // value2 = threads stopped, old_id = threads missed, address = root bytes,
  // id = blocks; class_blocks/class_bytes indexed by LeakClass - 1.
  // kBlockClasses: value = scan number, code = LeakClass, ids.
  // kFreeError: api, code = FreeError, code2 = FreeAction, address, stack,
  // id = the block's allocation id (0 = unknown).
  uint8_t code2 = 0;
  uint64_t class_blocks[kLeakClassCount] = {};
  uint64_t class_bytes[kLeakClassCount] = {};
  std::vector<uint64_t> ids;  // kBlockClasses
};

class ChunkDecoder {
 public:
  // `chunk` points at a ChunkHeader followed by records; `size` is the
  // chunk's raw size. Check ok() before Next().
  ChunkDecoder(const uint8_t* chunk, size_t size);

  bool ok() const { return error_.empty(); }
  // Empty while decoding succeeds; otherwise what went wrong and where.
  const std::string& error() const { return error_; }
  const ChunkHeader& header() const { return header_; }

  // Decodes the next record into `out`. Returns false at the end of the
  // chunk or on error (then ok() is false).
  bool Next(Record* out);

  // Allocation counter the next kAlloc/kRealloc record will receive.
  uint64_t next_alloc_counter() const { return next_counter_; }

 private:
  bool Fail(const char* what);
  // Bounds-checked readers; on failure they move pos_ to end_ and return false.
  bool ReadVarint(uint64_t* v);
  bool ReadSignedVarint(int64_t* v);
  bool ReadByte(uint8_t* v);
  bool ReadBytes(const uint8_t** data, size_t* len, size_t max_len);
  bool ReadIdRef(uint64_t* id);
  // One id_ref: `v` its first varint, `counter` its second (the full form's
  // counter; 0 otherwise). Own-thread forms read and advance *last_freed.
  bool DecodeIdRef(uint64_t v, uint64_t counter, uint64_t* last_freed, uint64_t* id) const;
  bool NextSlow(Record* out, RecordTag tag);
  bool NextFast(Record* out, RecordTag tag);
  bool ReadColumn(int column, uint64_t* v);
  bool RefreshFastRecords();

  ChunkHeader header_{};
  const uint8_t* base_ = nullptr;
  const uint8_t* pos_ = nullptr;
  const uint8_t* end_ = nullptr;
  size_t size_ = 0;
  uint64_t time_us_ = 0;
  uint64_t last_address_ = 0;
  uint64_t last_freed_ = 0;    // counter of the chunk's previous own-thread id_ref
  uint64_t last_node_ = 0;     // of the chunk's previous kStackNode
  uint64_t last_node_ip_ = 0;
  uint64_t next_counter_ = 0;
  std::string error_;
  struct Column {
    const uint8_t* pos = nullptr;
    const uint8_t* end = nullptr;
  };
  Column columns_[kColumnCount];
  uint64_t fast_records_ = 0;  // hot records NextFast may decode unchecked
};

}  // namespace heapsight::format

#endif  // HEAPSIGHT_FORMAT_CHUNK_DECODER_H_
