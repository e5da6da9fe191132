// analyzer/model/chunk_prefetcher.h: reads, decompresses and decodes a
// trace's chunks on a pool of worker threads, ahead of the merge that
// consumes them.
//
// Chunks are independent (each decompresses and decodes on its own), so
// only the order in which the merge consumes them is sequential. The merger
// predicts that order (by base time, then thread index, then sequence: the
// order in which its heap unparks streams when times are monotonic) and
// hands it to the prefetcher. Workers claim chunks in predicted order, each
// with its own TraceReader (file handle and zstd context), never more than
// `window` chunks past the oldest chunk not yet taken, and decodes each
// into a DecodedChunk (chunk_events.h: an array of 64-byte Events), so the
// merging thread only merges. Take() returns a decoded chunk: ready ones at
// once, claimed ones after waiting for their worker, and unclaimed ones (the
// prediction was wrong: untrusted or non-monotonic times) read and decoded
// on the caller's thread. The events of a chunk do not depend on who decoded
// it, so the merge's output is the serial path's, byte for byte.
//
// Memory: at most `window` decoded chunks in flight (about 1.6 MB each for
// the preload's 128 KiB chunks), whatever the trace's length, and at most
// `window` + 1 consumed ones kept for reuse (Recycle), plus one raw chunk
// buffer per worker and 16 bytes per block for the order.
#ifndef HEAPSIGHT_ANALYZER_CHUNK_PREFETCHER_H_
#define HEAPSIGHT_ANALYZER_CHUNK_PREFETCHER_H_

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "analyzer/model/chunk_events.h"
#include "format/trace_reader.h"

namespace heapsight::analyzer {

// Number of decode threads: HEAPSIGHT_DECODE_THREADS when set to a number
// in 1..256, otherwise every core (std::thread::hardware_concurrency). 1 is
// the serial path: no worker threads.
int DecodeThreadsFromEnvironment();

class ChunkPrefetcher {
 public:
  // Starts `workers` (>= 1) threads over `path`, reading the blocks at
  // `offsets` (file offsets, in predicted consumption order). `streams`:
  // each block's stream number, stored in its events (empty: all 0). Fails
  // when the file cannot be reopened.
  static absl::StatusOr<std::unique_ptr<ChunkPrefetcher>> Start(
      const std::string& path, std::vector<uint64_t> offsets, int workers, size_t window,
      const std::vector<uint32_t>& streams = {});
  // Stops and joins the workers.
  ~ChunkPrefetcher();
  ChunkPrefetcher(const ChunkPrefetcher&) = delete;
  ChunkPrefetcher& operator=(const ChunkPrefetcher&) = delete;

  // Puts the decoded chunk number `index` (into the offsets given to Start)
  // into *chunk. Each index is taken at most once. An unclaimed chunk is
  // read through `fallback` into `scratch` and decoded on the calling
  // thread. A read error is the returned status; a decoding error is
  // chunk->error.
  absl::Status Take(size_t index, format::TraceReader& fallback, std::vector<uint8_t>& scratch,
                    DecodedChunk* chunk);

  // Reads the block at `offset` through `reader` into `scratch` and decodes
  // it into *chunk, its events of stream `stream`: what a worker does, and
  // the serial path.
  static absl::Status ReadAndDecode(format::TraceReader& reader, uint64_t offset,
                                    std::vector<uint8_t>& scratch, DecodedChunk* chunk,
                                    uint32_t stream = 0);

  // Gives back a chunk whose events were consumed: its arrays (a few MB)
  // are kept, at most `window` + 1 of them, for the workers' next chunks
  // and Take's fallback reads, so the decoded events do not cost a fresh
  // allocation (and its page faults) each time.
  void Recycle(DecodedChunk&& chunk);

  // Chunks read by the caller because no worker had claimed them yet (the
  // workers were behind, or the chunk was out of predicted order).
  uint64_t fallback_reads() const { return fallback_reads_; }
  // Chunks taken before an earlier chunk of the predicted order: how often
  // the prediction was wrong.
  uint64_t out_of_order_takes() const { return out_of_order_takes_; }

 private:
  enum class State : uint8_t { kPending, kClaimed, kReady, kTaken };
  struct Slot {
    uint64_t offset = 0;
    uint32_t stream = 0;
    State state = State::kPending;
    DecodedChunk chunk;
    absl::Status status;
  };

  ChunkPrefetcher(std::vector<uint64_t> offsets, size_t window);
  void Work(format::TraceReader* reader);
  // Moves low_ past the taken slots; call with mu_ held.
  void AdvanceLow();

  std::vector<Slot> slots_;     // guarded by mu_ (data: by the slot's owner)
  const size_t window_;
  std::mutex mu_;
  std::condition_variable work_cv_;   // workers: a slot fell inside the window
  std::condition_variable ready_cv_;  // Take: a claimed slot became ready
  size_t next_claim_ = 0;  // guarded by mu_: first slot no worker looked at
  size_t low_ = 0;         // guarded by mu_: first slot not taken
  bool stop_ = false;      // guarded by mu_
  size_t idle_workers_ = 0;     // guarded by mu_: workers waiting at work_cv_
  bool taker_waiting_ = false;  // guarded by mu_: Take waits at ready_cv_
  uint64_t out_of_order_takes_ = 0;  // guarded by mu_
  uint64_t fallback_reads_ = 0;  // guarded by mu_
  std::vector<DecodedChunk> spare_;  // guarded by mu_: Recycle()d, cleared chunks
  std::vector<std::unique_ptr<format::TraceReader>> readers_;
  std::vector<std::thread> threads_;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_CHUNK_PREFETCHER_H_
