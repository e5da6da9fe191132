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
// same records and the same errors. A record sets every field of its own
// kind; the fields of other kinds keep the values of earlier records, except
// the lists (segments, argv, ids), which every record clears, and the
// string views, which every record but kAlloc, kFree and kRealloc clears.
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

// One decoded record. `tag` says which fields hold it: the allocation
// fields for the records about blocks (kAlloc, kFree, kRealloc, kAllocFailed,
// kInherited, kFreeError), otherwise the one per-kind member named after the
// record. See the RecordTag comments in trace_format.h for the layout.
struct Record {
  RecordTag tag = RecordTag::kAlloc;
  uint64_t time_us = 0;    // absolute, since FileHeader.start_monotonic_ns

  // --- Allocation fields.
  Api api = Api::kUnknown;  // the call (kFreeError: the bad call)
  uint64_t time2_us = 0;   // kRealloc: when the new block was allocated
  uint64_t size = 0;
  uint64_t stack = 0;      // leaf stack node, 0 = empty (kFreeError: the bad call's)
  uint64_t alignment = 0;
  uint64_t address = 0;    // 0 unless addresses are recorded (kFreeError: always)
  // kAlloc/kRealloc/kInherited: the new id; kFree: the freed id; kFreeError:
  // the block's allocation id (0 = unknown).
  uint64_t id = 0;
  uint64_t old_id = 0;     // kRealloc: the freed id
  // Compact frees (kFileFlagCompactFrees): a kFree names its block by
  // `stack` and `size` (id is 0); a kRealloc names its old block by
  // old_stack and old_size (old_id is 0). 0 in exact traces.
  uint64_t old_stack = 0;
  uint64_t old_size = 0;

  // --- One member per other kind.
  struct StackNodeFields {
    uint64_t node = 0;
    uint64_t parent = 0;  // 0 = a root frame
    uint64_t ip = 0;
  } stack_node;
  struct ModuleFields {  // kModule; kModuleUnload sets only `id`
    uint64_t id = 0;
    uint64_t load_address = 0;
    std::string_view path;
    std::string_view build_id;  // raw bytes
    std::vector<SegmentInfo> segments;
  } module;
  struct ProcessFields {
    std::string_view executable;
    std::vector<std::string_view> argv;
    uint64_t parent_pid = 0;
    std::string_view parent_trace;  // "" unless fork child or exec'd image
  } process;
  struct ThreadStartFields {
    uint64_t tid = 0;
    uint64_t creator_index = 0;  // 0 = unknown
  } thread_start;
  uint64_t rss_bytes = 0;        // kRss
  uint64_t child_pid = 0;        // kFork
  uint64_t lost_events = 0;      // kLost
  std::string_view exec_path;    // kExec
  std::string_view marker_name;  // kMarker
  struct EndFields {
    EndReason reason = EndReason::kExit;  // may be a value this reader does not know
    int64_t exit_status = 0;
  } end;
  struct FreeErrorFields {  // kFreeError (with api, address, stack, id above)
    FreeError error = FreeError::kInvalidFree;
    FreeAction action = FreeAction::kPassed;
  } free_error;
  struct LeakScanFields {
    uint64_t scan = 0;  // 1, 2, ... per process
    ScanReason reason = ScanReason::kExit;
    uint64_t duration_us = 0;
    uint64_t threads_stopped = 0;
    uint64_t threads_missed = 0;
    uint64_t root_bytes = 0;
    uint64_t blocks = 0;  // program blocks scanned
    uint64_t class_blocks[kLeakClassCount] = {};  // indexed by LeakClass - 1
    uint64_t class_bytes[kLeakClassCount] = {};
  } leak_scan;
  struct BlockClassesFields {
    uint64_t scan = 0;
    LeakClass leak_class = LeakClass::kDefinite;
    std::vector<uint64_t> ids;
    // Compact traces: each listed block's stack and size (same order as
    // ids); empty otherwise.
    std::vector<uint64_t> stacks;
    std::vector<uint64_t> sizes;
  } block_classes;
};

// The fields of a hot record (kAlloc, kFree, kRealloc), named as in Record,
// for callers that want only those (ChunkDecoder::NextHot). Like Record's,
// the fields another kind of record sets keep their earlier values.
struct HotRecord {
  RecordTag tag = RecordTag::kAlloc;
  Api api = Api::kUnknown;
  uint64_t time_us = 0;
  uint64_t time2_us = 0;
  uint64_t size = 0;
  uint64_t stack = 0;
  uint64_t alignment = 0;
  uint64_t address = 0;
  uint64_t id = 0;
  uint64_t old_id = 0;
  uint64_t old_stack = 0;
  uint64_t old_size = 0;
};

// Calls fn(std::string_view&) for every string field of r's kind (argv
// aside), e.g. to copy the record out of the chunk buffer its views point
// into. At most two; in field order.
template <typename Fn>
void ForEachStringField(Record& r, Fn&& fn) {
  switch (r.tag) {
    case RecordTag::kModule:
      fn(r.module.path);
      fn(r.module.build_id);
      break;
    case RecordTag::kProcess:
      fn(r.process.executable);
      fn(r.process.parent_trace);
      break;
    case RecordTag::kExec:
      fn(r.exec_path);
      break;
    case RecordTag::kMarker:
      fn(r.marker_name);
      break;
    default:
      break;
  }
}

class ChunkDecoder {
 public:
  // `chunk` points at a ChunkHeader followed by records; `size` is the
  // chunk's raw size. `compact_frees`: the file has kFileFlagCompactFrees
  // (its frees name stacks and sizes, trace_format.h). Check ok() before
  // Next().
  ChunkDecoder(const uint8_t* chunk, size_t size, bool compact_frees = false);

  bool ok() const { return error_.empty(); }
  // Empty while decoding succeeds; otherwise what went wrong and where.
  const std::string& error() const { return error_; }
  const ChunkHeader& header() const { return header_; }

  // Decodes the next record into `out`. Returns false at the end of the
  // chunk or on error (then ok() is false).
  bool Next(Record* out);

  // Next's fast path alone, for the hot records that make up most of a
  // chunk: when the next record is a kAlloc, kFree or kRealloc that the
  // unchecked path decodes, decodes it into `out` (the same fields Next
  // would set) and returns true. Otherwise returns false and moves
  // nothing: Next() then decodes that record (or names its error). Skips
  // Next's per-record work for the other kinds (clearing lists, views).
  bool NextHot(HotRecord* out);

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
  bool NextHotSlow(Record* out, RecordTag tag);
  // Out: Record or HotRecord.
  template <typename Out>
  bool NextFast(Out* out, RecordTag tag);
  // The hot record whose tag byte was just read, through NextFast if its
  // budget (refreshed when used up) allows; counts it against the budgets.
  // False: nothing decoded, the caller takes the checked path.
  template <typename Out>
  bool NextWithinBudget(Out* out, RecordTag tag);
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
  uint64_t fast_frees_ = 0;    // the same for exact frees (RefreshFastRecords)
  bool compact_ = false;       // kFileFlagCompactFrees
};

// Whether a file's frees are compact (its decoders take compact_frees).
inline bool HasCompactFrees(const FileHeader& h) {
  return (h.flags & kFileFlagCompactFrees) != 0;
}

}  // namespace heapsight::format

#endif  // HEAPSIGHT_FORMAT_CHUNK_DECODER_H_
