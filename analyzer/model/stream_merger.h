// analyzer/model/stream_merger.h: reads a trace's records in time order.
//
// A trace interleaves chunks of different threads in flush order. The merger
// first indexes every block (offset, thread, sequence, base time): a walk
// over the block headers, then the chunk headers, read on two threads for big
// traces. Then it repeatedly yields the earliest pending record (ties
// broken by thread index, then file order). A thread whose current chunk is
// used up is "parked" under its next chunk's base time (a lower bound of that
// chunk's record times) and its buffer released; the chunk is read only when
// the parked thread comes first. Memory: the index (24 bytes per block) plus
// one chunk per thread that has records pending at the current time.
//
// Reading, decompressing and decoding chunks (into arrays of Events,
// chunk_events.h, each stamped with its stream by the decoder) runs on a
// ChunkPrefetcher's worker pool (decode_threads workers, ahead of the merge
// in its predicted order) when the trace has enough blocks; the merge
// itself, and so its output, is the same whatever the number of threads.
//
// The merge hands out *runs*: consecutive events of one chunk that come
// next in the merged order. A run ends at its chunk's end or before the
// first event that another stream's key (its pending event, or a parked
// stream's next base time) precedes; as a chunk's times never decrease
// (DecodedChunk::ordered), that end is found by a galloping binary search
// over the times, so the merge reads a few events per run and writes none.
// A single-thread trace is one run per chunk.
#ifndef HEAPSIGHT_ANALYZER_STREAM_MERGER_H_
#define HEAPSIGHT_ANALYZER_STREAM_MERGER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "analyzer/model/chunk_prefetcher.h"
#include "format/chunk_decoder.h"
#include "format/trace_reader.h"

namespace heapsight::analyzer {

class StreamMerger {
 public:
  // Opens and indexes `path`. Fails on unreadable, foreign or corrupt files.
  // `decode_threads`: 0 = DecodeThreadsFromEnvironment(); 1 = read and
  // decompress on the merging thread; n > 1 = n prefetch workers (only for
  // traces of at least kParallelMinBlocks blocks).
  static absl::StatusOr<std::unique_ptr<StreamMerger>> Open(const std::string& path,
                                                            int decode_threads = 0);
  static constexpr uint64_t kParallelMinBlocks = 8;
  ~StreamMerger();

  const format::FileHeader& header() const { return reader_->header(); }
  // True when the file ends inside a block (the writer was cut short).
  bool truncated() const { return truncated_; }
  uint64_t file_size() const { return reader_->file_size(); }
  size_t stream_count() const { return streams_.size(); }
  uint64_t block_count() const { return block_count_; }
  // Blocks decoded so far; safe to read from another thread (progress).
  uint64_t blocks_read() const { return blocks_read_.load(std::memory_order_relaxed); }
  // Largest chunk base time seen while indexing (a duration estimate).
  uint64_t max_base_time_us() const { return max_base_time_us_; }
  // Prefetch workers in use (0 = serial path).
  int decode_workers() const { return decode_workers_; }
  // Chunks the merge consumed out of the prefetch order (predicted from base
  // times, wrong when a thread's clock goes back); 0 on the serial path.
  uint64_t out_of_order_chunks() const;
  // Thread index of stream `s` (streams are numbered 0..stream_count()-1).
  uint32_t thread_index(size_t s) const { return streams_[s]->thread_index; }
  // Index-time warnings (sequence gaps, duplicate chunks).
  const std::vector<std::string>& warnings() const { return warnings_; }

  // A run of events of stream `stream`, [begin, end), in merged order.
  struct Run {
    const Event* begin = nullptr;
    const Event* end = nullptr;
    size_t stream = 0;
    // The chunk the run starts (`begin` is its first event), else null:
    // what the decoder counted per chunk (DecodedChunk::released,
    // allocation_sizes) is for this run and the chunk's later runs.
    const DecodedChunk* starts = nullptr;
  };
  // The next run of records in time order (non-empty), or false at the end
  // or on error (then status() says which). The events, and their full
  // records if any, stay valid until the next call. The merge runs on the
  // calling thread (trace_model's analysing thread); the decoding is the
  // prefetcher's.
  bool NextRun(Run* run);

  // The next record in time order, or null at the end or on error: NextRun
  // one event at a time (`*stream` receives its stream; so does the
  // event's `stream`). Valid as long as the run it came in.
  const Event* Next(size_t* stream) {
    if (next_ == run_.end) {
      if (!NextRun(&run_)) return nullptr;
      next_ = run_.begin;
    }
    *stream = run_.stream;
    return next_++;
  }
  const absl::Status& status() const { return status_; }

  // Finds the allocation records (kAlloc, kRealloc, kInherited) of `ids`,
  // decoding only the chunk of each id's thread that its counter falls in
  // (from the chunk headers' first allocation counters), or, if it is not
  // there (a kInherited id), every chunk of that thread. Calls fn(record)
  // for each record found. Independent of Next(); for the rare lookups after
  // the merge (double frees, whose allocation the analysis already dropped).
  absl::Status FindAllocations(const std::vector<uint64_t>& ids,
                               const std::function<void(const format::Record&)>& fn);

 private:
  struct ChunkRef {
    uint64_t sequence;
    uint64_t offset;
    uint64_t base_time_us;
    uint64_t first_alloc_counter;
    uint64_t order;  // position in the prefetch order
  };
  struct Stream {
    uint32_t thread_index = 0;
    std::vector<ChunkRef> chunks;
    size_t next_chunk = 0;
    DecodedChunk chunk;    // the current chunk's events
    size_t pos = 0;        // the pending event of chunk (if has_record)
    uint64_t offset = 0;   // the current chunk's block, for errors
    bool has_record = false;
  };

  explicit StreamMerger(std::unique_ptr<format::TraceReader> reader)
      : reader_(std::move(reader)) {}
  absl::Status Index();
  // Computes the predicted consumption order and starts the prefetcher.
  absl::Status StartPrefetch(const std::string& path, int threads);
  // Makes chunk[pos] stream `s`'s pending record, or parks the stream at
  // its next chunk when its chunk is used up. Returns false when the
  // stream is exhausted or on error (status_ set).
  bool Advance(size_t s);
  // Gives a used-up chunk's arrays back for reuse: to the decode workers,
  // or on the serial path to spare_.
  void Recycle(DecodedChunk&& chunk);
  // The end of the run of stream `s` (whose pending record comes first)
  // before heap_[0]'s key: the first event after the pending one that
  // heap_[0] precedes, or the chunk's end.
  size_t RunEnd(size_t s) const;
  // Reads and decodes the next chunk of parked stream `s` and loads its
  // first record; false if the chunk is empty (then still parked or
  // exhausted) or on error.
  bool Unpark(size_t s);
  uint64_t KeyTime(size_t s) const;
  bool Earlier(size_t a, size_t b) const;
  void HeapPush(size_t s);
  size_t HeapPop();

  std::unique_ptr<format::TraceReader> reader_;
  std::unique_ptr<ChunkPrefetcher> prefetcher_;  // null on the serial path
  std::vector<uint8_t> scratch_;   // raw chunk read on this thread
  // The serial path's recycled chunks (no prefetcher to take them).
  std::vector<DecodedChunk> spare_;
  int decode_workers_ = 0;
  std::vector<std::unique_ptr<Stream>> streams_;
  std::vector<size_t> heap_;       // min-heap of streams with a pending record
  size_t current_ = SIZE_MAX;      // stream whose run was returned last
  Run run_;                        // Next()'s run
  const Event* next_ = nullptr;    // Next()'s position in run_
  bool started_ = false;
  bool truncated_ = false;
  uint64_t block_count_ = 0;
  std::atomic<uint64_t> blocks_read_{0};
  uint64_t max_base_time_us_ = 0;
  absl::Status status_;
  std::vector<std::string> warnings_;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_STREAM_MERGER_H_
