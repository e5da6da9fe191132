// analyzer/model/chunk_time_merge.cc: see chunk_time_merge.h.
#include "analyzer/model/chunk_time_merge.h"

#include <algorithm>
#include <cstring>
#include <iterator>

#include "absl/strings/str_cat.h"

namespace heapsight::analyzer {

ChunkTimeMerge::ChunkTimeMerge(std::string name) : name_(std::move(name)) {}

ChunkTimeMerge::~ChunkTimeMerge() = default;

absl::Status ChunkTimeMerge::Add(std::vector<uint8_t> chunk) {
  if (chunk.size() < sizeof(format::ChunkHeader)) {
    return absl::DataLossError(absl::StrCat(name_, ": a chunk of ", chunk.size(),
                                            " bytes is too short for its header"));
  }
  format::ChunkHeader header;
  std::memcpy(&header, chunk.data(), sizeof header);
  ++chunks_added_;
  ++waiting_chunks_;
  if (header.base_time_us > newest_base_us_) newest_base_us_ = header.base_time_us;
  // The thread's input, found by a search: threads are few, and chunks
  // (thousands of events each) are what this is done for.
  auto it = std::lower_bound(
      inputs_.begin(), inputs_.end(), header.thread_index,
      [](const std::unique_ptr<ThreadIn>& in, uint32_t index) { return in->index < index; });
  if (it == inputs_.end() || (*it)->index != header.thread_index) {
    auto in = std::make_unique<ThreadIn>();
    in->index = header.thread_index;
    it = inputs_.insert(it, std::move(in));
  }
  // In sequence order: a chunk the preload wrote inline while its spool
  // was full can reach the file before an earlier one of its thread.
  std::deque<PendingChunk>& pending = (*it)->pending;
  auto at = pending.end();
  while (at != pending.begin() && std::prev(at)->header.sequence > header.sequence) --at;
  pending.insert(at, PendingChunk{header, std::move(chunk)});
  return absl::OkStatus();
}

absl::Status ChunkTimeMerge::Decode(ThreadIn& in, Sink& sink) {
  const PendingChunk c = std::move(in.pending.front());
  in.pending.pop_front();
  in.pos = 0;
  in.current = c.header;
  if (absl::Status s = sink.OnChunkBegin(c.header); !s.ok()) return s;
  // The analysis's decoder (its fast paths for hot records and stack
  // nodes), keeping a FullRecord for every rare record: the converter
  // re-encodes them, LiveProcess applies them.
  DecodeAddressChunkToConvert(c.bytes.data(), c.bytes.size(), &in.chunk, c.header.thread_index);
  events_decoded_ += in.chunk.events.size();
  in.merging = !in.chunk.events.empty();
  if (!in.chunk.error.empty()) {
    return absl::DataLossError(absl::StrCat(name_, ": ", in.chunk.error));
  }
  if (!in.merging) {
    --waiting_chunks_;
    return sink.OnChunkEnd(in.current);
  }
  return absl::OkStatus();
}

absl::Status ChunkTimeMerge::Drain(uint64_t watermark_us, Sink& sink) {
  drained_us_ = std::max(drained_us_, watermark_us);
  for (;;) {
    // The thread whose next event comes first (ties: the lower thread
    // index), and the key of the runner-up, which ends its run. Threads
    // are few: a scan.
    ThreadIn* first = nullptr;
    uint64_t first_key = 0;
    ThreadIn* second = nullptr;
    uint64_t second_key = UINT64_MAX;
    for (const std::unique_ptr<ThreadIn>& in : inputs_) {
      if (!in->has_key()) continue;
      const uint64_t key = in->key();
      if (first == nullptr || key < first_key) {
        if (first != nullptr) {
          second = first;
          second_key = first_key;
        }
        first = in.get();
        first_key = key;
      } else if (second == nullptr || key < second_key) {
        second = in.get();
        second_key = key;
      }
    }
    if (first == nullptr || first_key >= watermark_us) return absl::OkStatus();
    ThreadIn& in = *first;
    if (!in.merging) {
      // Parked at its next chunk's base time, which the merge has reached.
      if (absl::Status s = Decode(in, sink); !s.ok()) return s;
      continue;
    }
    // The run: this thread's events before the watermark and before the
    // runner-up's key (at an equal time, the lower index goes first).
    const uint64_t limit = std::min(watermark_us, second_key);
    const bool ties_first = second == nullptr || in.index < second->index;
    const Event* events = in.chunk.events.data();
    size_t end = in.pos;
    const size_t n = in.chunk.events.size();
    while (end < n && (events[end].time_us < limit ||
                       (ties_first && events[end].time_us == second_key &&
                        events[end].time_us < watermark_us))) {
      ++end;
    }
    if (end == in.pos) ++end;  // first_key < limit or a tie it wins: never empty
    const size_t begin = in.pos;
    in.pos = end;
    if (absl::Status s = sink.OnEvents(events + begin, events + end); !s.ok()) return s;
    if (in.pos == n) {
      in.merging = false;
      --waiting_chunks_;
      if (absl::Status s = sink.OnChunkEnd(in.current); !s.ok()) return s;
      if (in.pending.empty()) {
        // An idle or finished thread keeps no decoded chunk's memory.
        in.chunk.Release();
        in.pos = 0;
      }
    }
  }
}

}  // namespace heapsight::analyzer
