// analyzer/model/chunk_time_merge.h: the chunks of an address-frees trace
// (format version 6), as they are read, merged back into time order for the
// pairing (address_pairing.h).
//
// Why: the pairing's 4-bit hand-off counts (format::AddressOrder) tell
// events at one address apart only when the events of all threads reach it
// in time order. Chunks reach the file in the order their threads flushed
// them: a thread's chunk covers thousands of events, so in file order one
// thread's events at an address can run a whole chunk ahead of another's,
// and an address used 16 times meanwhile aliases (alloc_bench with 2
// threads: 19,828 of 4 M events forced in file order, none in time order).
//
// How: a chunk added waits raw (as read, decompressed) in its thread's queue,
// by sequence; it is decoded only when the merge reaches its base time (a
// lower bound of its times), so the merge's memory is raw chunks, not
// decoded events. Drain(watermark) gives out, in time order, every event
// earlier than `watermark`: the caller promises that no chunk still to come
// holds an earlier event. The two callers:
// - a whole file (pairing_converter.h's ConvertAddressTrace): chunks added
//   in base-time order, the watermark the last one's base time;
// - a growing file (record's LiveConversion, LiveProcess for `record
//   --serve`): the preload flushes every event within HEAPSIGHT_FLUSH_MS,
//   so a chunk read now holds no event older than the newest base time
//   read, or than the clock when the reader was at the end of the file,
//   less a window longer than that interval (WindowForFlushMs). A chunk
//   that breaks the promise (a starved writer) is still merged from where
//   the merge is: its earlier events come out late, and the pairing holds
//   them until they are consistent.
//
// Ties: at an equal time, the lower thread index first (as StreamMerger,
// stream_merger.h, merges a finished trace for the analysis).
//
// Memory: the raw chunks above the watermark and one decoded chunk per
// thread being merged (released when the thread has nothing waiting).
// Not thread-safe.
#ifndef HEAPSIGHT_ANALYZER_MODEL_CHUNK_TIME_MERGE_H_
#define HEAPSIGHT_ANALYZER_MODEL_CHUNK_TIME_MERGE_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "analyzer/model/chunk_events.h"
#include "format/trace_format.h"

namespace heapsight::analyzer {

class ChunkTimeMerge {
 public:
  // What the merge gives out, in time order.
  class Sink {
   public:
    virtual ~Sink() = default;
    // A chunk is about to be decoded (its events follow in runs).
    virtual absl::Status OnChunkBegin(const format::ChunkHeader& header) = 0;
    // A run of one thread's events, [begin, end), all earlier than the
    // watermark and than every other thread's next event.
    virtual absl::Status OnEvents(const Event* begin, const Event* end) = 0;
    // Every event of the chunk begun last for thread `thread_index` was
    // given out.
    virtual absl::Status OnChunkEnd(const format::ChunkHeader& header) = 0;
  };

  // The merge window for the preload's HEAPSIGHT_FLUSH_MS `flush_ms`: two
  // flush intervals and at least a second (an event reaches the file
  // within about one: the writer flushes a chunk that waited flush_ms/2;
  // the rest is for the reader's poll and a loaded machine). Without a
  // flush interval (0) chunks have no bound: 2 s, and the pairing holds
  // what comes later. `record --convert-traces` (250 ms): 1 s; `record
  // --serve` (1000 ms): 2 s, which is how far its served numbers of an
  // address-frees trace lag the program.
  static uint64_t WindowForFlushMs(int64_t flush_ms) {
    if (flush_ms <= 0) return 2'000'000;
    return std::max<uint64_t>(1'000'000, static_cast<uint64_t>(flush_ms) * 2000);
  }

  // `name` names the trace in errors.
  explicit ChunkTimeMerge(std::string name);
  ~ChunkTimeMerge();
  ChunkTimeMerge(const ChunkTimeMerge&) = delete;
  ChunkTimeMerge& operator=(const ChunkTimeMerge&) = delete;

  // Takes one chunk (a ChunkHeader and its records, as
  // format::TraceReader::NextChunk gives them). DataLoss for a chunk too
  // short for its header.
  absl::Status Add(std::vector<uint8_t> chunk);

  // Gives `sink` every event earlier than `watermark_us` not given yet, in
  // time order. DataLoss for a malformed chunk (the events before the
  // error were given out); a sink's error is returned as it is. After an
  // error the merge must not be used again.
  absl::Status Drain(uint64_t watermark_us, Sink& sink);

  // Gives out every event added (Drain without a watermark).
  absl::Status DrainAll(Sink& sink) { return Drain(UINT64_MAX, sink); }

  // Drain up to `time_us` less `window_us` (nothing while `time_us` is
  // within the window): the watermark of a reader of a growing trace, once
  // `time_us` is the newest chunk's base time (newest_base_time_us) or the
  // clock, and `window_us` longer than the writer's flush interval
  // (WindowForFlushMs).
  absl::Status DrainBehind(uint64_t time_us, uint64_t window_us, Sink& sink) {
    if (time_us <= window_us) return absl::OkStatus();
    return Drain(time_us - window_us, sink);
  }

  // The highest watermark drained to so far (0: none).
  uint64_t drained_us() const { return drained_us_; }

  // The newest base time of a chunk added (0: none).
  uint64_t newest_base_time_us() const { return newest_base_us_; }
  // Chunks added whose events are not all given out yet.
  size_t waiting_chunks() const { return waiting_chunks_; }
  // Chunks added and events decoded, so far.
  uint64_t chunks_added() const { return chunks_added_; }
  uint64_t events_decoded() const { return events_decoded_; }

 private:
  struct PendingChunk {
    format::ChunkHeader header;
    std::vector<uint8_t> bytes;
  };
  // One thread's chunks waiting raw (by sequence) and the one being
  // merged, decoded.
  struct ThreadIn {
    uint32_t index = 0;
    std::deque<PendingChunk> pending;  // by sequence
    format::ChunkHeader current{};     // the decoded chunk's header
    DecodedChunk chunk;                // the one being merged
    size_t pos = 0;                    // its next event to give out
    bool merging = false;              // `chunk` holds events not all given out
    bool has_key() const { return merging || !pending.empty(); }
    // The time the thread's next event has at least.
    uint64_t key() const {
      return merging ? chunk.events[pos].time_us : pending.front().header.base_time_us;
    }
  };

  // Decodes `in`'s first waiting chunk.
  absl::Status Decode(ThreadIn& in, Sink& sink);

  std::string name_;
  std::vector<std::unique_ptr<ThreadIn>> inputs_;  // in thread index order
  uint64_t newest_base_us_ = 0;
  uint64_t drained_us_ = 0;
  size_t waiting_chunks_ = 0;
  uint64_t chunks_added_ = 0;
  uint64_t events_decoded_ = 0;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_CHUNK_TIME_MERGE_H_
