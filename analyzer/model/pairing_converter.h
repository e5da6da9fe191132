// analyzer/model/pairing_converter.h: rewrites an address-frees trace
// (format version 6) as the version-4 trace that table mode writes: every
// free names its block's allocation id, so the analysis reads it at
// version 4's cost.
//
// Why (issue 15): in address mode the program keeps 2 bytes per 16-byte
// granule of heap instead of a ~20-byte table entry per live block (python's
// 1,000,000-entry dict: 1.12x plain peak RSS instead of 1.34x), but its
// trace makes every reader pair frees by address: python's version-6 report
// takes 3-4x the CPU and 3.7x the memory of the version-4 one, and every
// command pays it again. The converter pays that pairing once, outside the
// traced program (heaptrack does its pointer pairing in heaptrack_interpret,
// a process of its own, the same way), and what it writes is a version-4
// trace that every command reads as if the preload had kept the table.
//
// How: the chunks of all threads are merged into time order
// (chunk_time_merge.h: why, and the *watermark* Drain takes) and the events
// go through AddressPairer (address_pairing.h) in that order. Reading a
// whole file (ConvertAddressTrace), the chunks are added in base-time order
// and the watermark is the last one's base time; reading a growing file
// (record's LiveConversion), it is the newest base time seen less a window
// longer than the preload's flush interval.
// What comes out is re-encoded per thread, in the thread's
// own order, into chunks of that thread (the same thread index and tid,
// sequence numbers from 0, allocation counters as in the input: the n-th
// allocation of a thread keeps counter n). Records other than the three hot
// ones are copied field for field; kBlockClasses and kFreeError get the ids
// the pairing found (the classes' ids sorted, as the format wants).
//
// What the version-4 trace does not keep: block addresses (table mode does
// not record them either; a kFreeError keeps its address) and the order
// values, which only the pairing needs. A realloc that the pairing had to
// split (its new address was still another thread's block when it was
// read: rare, and only across threads) is written as a kFree of the old
// block and a kAlloc of the new one, both with api realloc, at the same
// times. Forced events (stats: a free of no live block, an allocation over
// a live block whose free was lost) are written as the analysis would read
// them in version 6: the first is dropped, the second gets the kFree the
// pairing made for it.
//
// Fork families. A fork child's kInherited name the parent's blocks by
// address; the child is converted with the parent's blocks live at the
// fork (ReadForkInheritance, fork_inheritance.h, from the parent's
// version-6 trace), so each kInherited is written as table mode's child
// writes it: an id (the pairing's, thread kInheritedThread), the parent's
// stack, api and requested size. Create refuses a child without them (no
// parent trace found: the version-6 analysis warns about such a child, the
// conversion would hide it). A parent's kFork is copied; its version-6
// trace must stay where its children's (version 6) look for it until they
// are converted: record's LiveConversion converts every member before it
// renames any, and keeps at version 6 every parent of a member that stays.
//
// Memory: the pairing's state per address (16 bytes a slot) and its held
// events, the merge's raw chunks and decoded chunks, one open output chunk per thread,
// and one compression buffer. Not thread-safe.
#ifndef HEAPSIGHT_ANALYZER_MODEL_PAIRING_CONVERTER_H_
#define HEAPSIGHT_ANALYZER_MODEL_PAIRING_CONVERTER_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "analyzer/model/address_pairing.h"
#include "analyzer/model/chunk_events.h"
#include "analyzer/model/chunk_time_merge.h"
#include "analyzer/model/fork_inheritance.h"
#include "format/chunk_decoder.h"
#include "format/chunk_encoder.h"
#include "format/trace_format.h"

namespace heapsight::analyzer {

struct PairingConversionStats {
  uint64_t chunks_in = 0;
  uint64_t chunks_out = 0;
  uint64_t records_in = 0;
  uint64_t records_out = 0;
  uint64_t bytes_out = 0;  // the output file's size (header and blocks)
  bool truncated = false;  // ConvertAddressTrace: the input ended inside a block
  bool ended = false;      // a kEnd record was written (the process's trace is whole)
  AddressPairingStats pairing;
};

// A fork child's parent's blocks live at the fork, by address.
using InheritedBlocks = absl::flat_hash_map<uint64_t, ParentBlock>;

class PairingConverter {
 public:
  // Chunks of at most this many bytes are written (the preload's size).
  static constexpr size_t kChunkBytes = size_t{128} << 10;

  // Writes the version-4 file header for `in` (a version-6 header) to
  // `out_fd` (a new, empty file; not closed here), then converts the chunks
  // AddChunk is given. `inherited`: a fork child's parent's blocks live at
  // the fork (copied; required for a fork child, ignored otherwise).
  // FailedPrecondition for a trace that is not version 6, or a fork child's
  // without `inherited` (the file comment); nothing is written then.
  // `zstd_level` 0 stores blocks raw.
  // `in_name` and `out_name` name the two files in errors.
  static absl::StatusOr<std::unique_ptr<PairingConverter>> Create(const format::FileHeader& in,
                                                                  std::string in_name,
                                                                  int out_fd,
                                                                  std::string out_name,
                                                                  int zstd_level = 3,
                                                                  const InheritedBlocks* inherited =
                                                                      nullptr);
  ~PairingConverter();
  PairingConverter(const PairingConverter&) = delete;
  PairingConverter& operator=(const PairingConverter&) = delete;

  // Takes one decoded chunk (a ChunkHeader and its records, as
  // format::TraceReader::NextChunk gives them) into the merge; its events
  // are converted by a Drain whose watermark is past them. DataLoss for a
  // chunk too short for its header.
  absl::Status AddChunk(std::vector<uint8_t> chunk);

  // Converts, in time order, the events of the chunks added so far that are
  // earlier than `watermark_us` (the file comment). DataLoss for a
  // malformed chunk (the records before the error are converted);
  // After an
  // error the output is incomplete and the converter must not be used.
  absl::Status Drain(uint64_t watermark_us);

  // Drain up to the newest chunk base time added less `window_us`
  // (ChunkTimeMerge::DrainBehind: a converter reading a growing trace).
  absl::Status DrainBehindNewest(uint64_t window_us);

  // The newest chunk base time added (0: none), and the highest watermark
  // drained to.
  uint64_t newest_base_time_us() const { return merge_.newest_base_time_us(); }
  uint64_t drained_us() const { return merge_.drained_us(); }
  // Chunks added whose events are not all converted yet (a measure of the
  // work left: record's bounded wait after the program's exit).
  size_t waiting_chunks() const { return merge_.waiting_chunks(); }

  // Converts every event still in the merge, applies the events still held
  // (forced, as the analysis does at a trace's end), writes every open
  // chunk and syncs nothing: the caller closes (and may fsync) the file.
  absl::Status Finish();

  const PairingConversionStats& stats() const { return stats_; }

 private:
  // One thread's output: its chunk being filled.
  struct ThreadOut {
    uint32_t tid = 0;
    uint64_t sequence = 0;      // of the next chunk
    uint64_t next_counter = 0;  // the next allocation's counter
    uint64_t last_time = 0;     // the newest time written (untimed records take it)
    bool open = false;          // encoder holds a begun chunk
    std::vector<uint8_t> buffer;
    format::ChunkEncoder encoder;
  };
  PairingConverter(std::string in_name, int out_fd, std::string out_name, int zstd_level,
                   bool fork_child);
  // The parent's blocks of a fork child (the pairer points at it).
  InheritedBlocks inherited_;

  ThreadOut& Thread(uint32_t index);
  // Begins `t`'s next chunk at `time_us` if none is open.
  void Open(uint32_t index, ThreadOut& t, uint64_t time_us);
  // Seals and writes `t`'s open chunk, if it holds a record.
  absl::Status Close(ThreadOut& t);
  // Runs `put` on `t`'s open chunk (a record at `time_us`; `timed` false
  // for kStackNode and kBlockClasses, which have no time); if it does not
  // fit, writes the chunk and tries a fresh one (larger if need be, up to
  // the format's limit).
  template <typename Put>
  absl::Status Encode(uint32_t index, ThreadOut& t, uint64_t time_us, bool timed, Put&& put);
  // The merge's output (chunk_time_merge.h): a chunk's thread is set up
  // for output, its events are paired and written, and its output chunk
  // is written with it unless the pairing holds events.
  class MergeSink final : public ChunkTimeMerge::Sink {
   public:
    explicit MergeSink(PairingConverter& c) : c_(c) {}
    absl::Status OnChunkBegin(const format::ChunkHeader& header) override;
    absl::Status OnEvents(const Event* begin, const Event* end) override;
    absl::Status OnChunkEnd(const format::ChunkHeader& header) override;

   private:
    PairingConverter& c_;
  };
  // The input counts of stats_, from the merge.
  void CountInput();
  // Pairs and writes events [begin, end) of one thread, in merged order.
  absl::Status Convert(const Event* begin, const Event* end);
  // Writes one event the pairing gave out.
  absl::Status Emit(const Event& e);
  // Writes a non-hot record, as read.
  absl::Status EmitRecord(uint32_t index, ThreadOut& t, const format::Record& r);
  absl::Status WriteBlock(const uint8_t* chunk, size_t size);
  absl::Status WriteAll(const void* data, size_t size);

  std::string in_name_;
  int fd_;
  std::string name_;  // the output's
  int zstd_level_;
  void* cctx_ = nullptr;  // ZSTD_CCtx
  std::vector<uint8_t> compressed_;
  AddressPairer pairer_;
  EventArray out_;
  ChunkTimeMerge merge_;
  MergeSink sink_{*this};
  absl::flat_hash_map<uint32_t, std::unique_ptr<ThreadOut>> threads_;
  uint32_t last_index_ = 0;
  ThreadOut* last_thread_ = nullptr;  // threads_[last_index_] (stable: unique_ptr)
  std::vector<uint64_t> ids_;  // scratch for kBlockClasses
  PairingConversionStats stats_;
};

// Converts the version-6 trace at `in_path` into a new file `out_path`
// (created O_EXCL|O_NOFOLLOW, mode 0600; removed again on failure). A
// truncated input (a killed process) is converted up to its last whole
// block. A fork child's parent's blocks are read from the parent's
// version-6 trace (ReadForkInheritance); FailedPrecondition, saying why,
// if it is not found. `stats` (optional) receives the counts.
// `inheritance`: a fork child's parent's blocks already read
// (ReadForkInheritances: one pass over the parent for all its children),
// used instead of reading them here.
absl::Status ConvertAddressTrace(const std::string& in_path, const std::string& out_path,
                                 int zstd_level = 3, PairingConversionStats* stats = nullptr,
                                 const ForkInheritance* inheritance = nullptr);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_PAIRING_CONVERTER_H_
