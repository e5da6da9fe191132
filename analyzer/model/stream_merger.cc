// analyzer/model/stream_merger.cc: see stream_merger.h.
#include "analyzer/model/stream_merger.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace heapsight::analyzer {

absl::StatusOr<std::unique_ptr<StreamMerger>> StreamMerger::Open(const std::string& path,
                                                                 int decode_threads) {
  absl::StatusOr<std::unique_ptr<format::TraceReader>> reader = format::TraceReader::Open(path);
  if (!reader.ok()) return reader.status();
  std::unique_ptr<StreamMerger> merger(new StreamMerger(std::move(*reader)));
  if (absl::Status s = merger->Index(); !s.ok()) return s;
  if (decode_threads <= 0) decode_threads = DecodeThreadsFromEnvironment();
  if (decode_threads > 1 && merger->block_count_ >= kParallelMinBlocks) {
    if (absl::Status s = merger->StartPrefetch(path, decode_threads); !s.ok()) return s;
  }
  return merger;
}

StreamMerger::~StreamMerger() = default;

uint64_t StreamMerger::out_of_order_chunks() const {
  return prefetcher_ == nullptr ? 0 : prefetcher_->out_of_order_takes();
}

absl::Status StreamMerger::StartPrefetch(const std::string& path, int threads) {
  // The merge unparks a stream when its next chunk's base time is the
  // earliest key in its heap, ties broken by thread index; a thread's chunks
  // come in sequence order. So with times that only grow within a thread,
  // chunks are consumed in (base time, thread index, sequence) order.
  struct Key {
    uint64_t time;
    uint32_t thread;
    uint64_t sequence;
    ChunkRef* ref;
    uint32_t stream;  // the decoder stamps the chunk's events with it
  };
  std::vector<Key> keys;
  keys.reserve(block_count_);
  for (size_t s = 0; s < streams_.size(); ++s) {
    for (ChunkRef& ref : streams_[s]->chunks) {
      keys.push_back({ref.base_time_us, streams_[s]->thread_index, ref.sequence, &ref,
                      static_cast<uint32_t>(s)});
    }
  }
  std::stable_sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    if (a.time != b.time) return a.time < b.time;
    if (a.thread != b.thread) return a.thread < b.thread;
    return a.sequence < b.sequence;
  });
  std::vector<uint64_t> offsets(keys.size());
  std::vector<uint32_t> streams(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    keys[i].ref->order = i;
    offsets[i] = keys[i].ref->offset;
    streams[i] = keys[i].stream;
  }
  // Two decoded chunks per worker keep every worker busy while the merge
  // catches up (one being decoded, one ready), and bound the memory in
  // flight: a decoded chunk is about 1.6 MB of events.
  absl::StatusOr<std::unique_ptr<ChunkPrefetcher>> p =
      ChunkPrefetcher::Start(path, std::move(offsets), threads, 2 * static_cast<size_t>(threads),
                             streams);
  if (!p.ok()) return p.status();
  prefetcher_ = std::move(*p);
  decode_workers_ = threads;
  return absl::OkStatus();
}

absl::Status StreamMerger::Index() {
  // Walk the block headers: each carries a copy of its chunk header, so the
  // index costs one 48-byte read per block and decompresses nothing. A
  // block cut off by the end of the file ends the walk (the writer was
  // killed); any other bad header is an error.
  std::vector<uint64_t> offsets;
  std::vector<format::ChunkHeader> headers;
  {
    uint64_t pos = reader_->position();
    const uint64_t size = reader_->file_size();
    while (pos < size) {
      format::BlockHeader b;
      uint64_t next = 0;
      absl::Status s = reader_->ReadBlockHeaderAt(pos, &b, &next);
      if (absl::IsOutOfRange(s)) {
        truncated_ = true;
        break;
      }
      if (!s.ok()) return s;
      offsets.push_back(pos);
      headers.push_back(b.chunk);
      pos = next;
    }
  }

  absl::flat_hash_map<uint32_t, size_t> by_thread;
  for (size_t i = 0; i < offsets.size(); ++i) {
    const format::ChunkHeader& h = headers[i];
    auto [it, inserted] = by_thread.try_emplace(h.thread_index, streams_.size());
    if (inserted) {
      streams_.push_back(std::make_unique<Stream>());
      streams_.back()->thread_index = h.thread_index;
    }
    streams_[it->second]->chunks.push_back(
        {h.sequence, offsets[i], h.base_time_us, h.first_alloc_counter, 0});
    max_base_time_us_ = std::max(max_base_time_us_, h.base_time_us);
    ++block_count_;
  }
  for (auto& stream : streams_) {
    auto& chunks = stream->chunks;
    std::stable_sort(chunks.begin(), chunks.end(),
                     [](const ChunkRef& a, const ChunkRef& b) { return a.sequence < b.sequence; });
    for (size_t i = 1; i < chunks.size(); ++i) {
      if (chunks[i].sequence == chunks[i - 1].sequence) {
        warnings_.push_back(absl::StrCat("thread ", stream->thread_index,
                                         ": duplicate chunk sequence ", chunks[i].sequence));
      } else if (chunks[i].sequence != chunks[i - 1].sequence + 1) {
        warnings_.push_back(absl::StrCat("thread ", stream->thread_index, ": chunks ",
                                         chunks[i - 1].sequence + 1, "..",
                                         chunks[i].sequence - 1, " are missing"));
      }
    }
  }
  return absl::OkStatus();
}

bool StreamMerger::Advance(size_t s) {
  Stream& st = *streams_[s];
  st.has_record = st.pos < st.chunk.events.size();
  if (st.has_record) return true;
  if (!st.chunk.error.empty()) {
    status_ = absl::DataLossError(absl::StrCat(reader_->path(), ": corrupt trace: ",
                                               st.chunk.error, " (block at offset ", st.offset,
                                               ")"));
    return false;
  }
  // Parked threads hold no chunk: its arrays go back to the workers. The
  // events of the run handed out last are in another stream's chunk or
  // in this one's before its last event was consumed: a stream advances
  // past its chunk only in the NextRun call after the one that returned
  // the chunk's last run, so a run stays valid until the next call.
  Recycle(std::move(st.chunk));
  st.chunk.Release();
  return st.next_chunk < st.chunks.size();  // parked at its next chunk
}

void StreamMerger::Recycle(DecodedChunk&& chunk) {
  if (prefetcher_ != nullptr) {
    prefetcher_->Recycle(std::move(chunk));
    return;
  }
  chunk.Clear();
  if (chunk.events.capacity() == 0) return;
  if (spare_.size() < 4) spare_.push_back(std::move(chunk));
}

bool StreamMerger::Unpark(size_t s) {
  Stream& st = *streams_[s];
  const ChunkRef& ref = st.chunks[st.next_chunk++];
  if (prefetcher_ == nullptr && st.chunk.events.capacity() == 0) {
    // The serial path decodes into the stream's chunk: reuse a recycled
    // one's arrays rather than allocate (and fault in) fresh ones.
    if (!spare_.empty()) {
      st.chunk = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  absl::Status read =
      prefetcher_ != nullptr
          ? prefetcher_->Take(ref.order, *reader_, scratch_, &st.chunk)
          : ChunkPrefetcher::ReadAndDecode(*reader_, ref.offset, scratch_, &st.chunk,
                                           static_cast<uint32_t>(s));
  if (!read.ok()) {
    status_ = read;
    return false;
  }
  blocks_read_.fetch_add(1, std::memory_order_relaxed);
  st.pos = 0;
  st.offset = ref.offset;
  return Advance(s);
}

uint64_t StreamMerger::KeyTime(size_t s) const {
  const Stream& st = *streams_[s];
  return st.has_record ? st.chunk.events[st.pos].time_us : st.chunks[st.next_chunk].base_time_us;
}

bool StreamMerger::Earlier(size_t a, size_t b) const {
  uint64_t ta = KeyTime(a), tb = KeyTime(b);
  if (ta != tb) return ta < tb;
  const Stream& x = *streams_[a];
  const Stream& y = *streams_[b];
  if (x.thread_index != y.thread_index) return x.thread_index < y.thread_index;
  // A parked stream sorts before its own records at the same time.
  return !x.has_record && y.has_record;
}

void StreamMerger::HeapPush(size_t s) {
  heap_.push_back(s);
  size_t i = heap_.size() - 1;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!Earlier(heap_[i], heap_[parent])) break;
    std::swap(heap_[i], heap_[parent]);
    i = parent;
  }
}

size_t StreamMerger::HeapPop() {
  size_t top = heap_[0];
  heap_[0] = heap_.back();
  heap_.pop_back();
  size_t i = 0, n = heap_.size();
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, best = i;
    if (l < n && Earlier(heap_[l], heap_[best])) best = l;
    if (r < n && Earlier(heap_[r], heap_[best])) best = r;
    if (best == i) break;
    std::swap(heap_[i], heap_[best]);
    i = best;
  }
  return top;
}

size_t StreamMerger::RunEnd(size_t s) const {
  const Stream& st = *streams_[s];
  const Event* events = st.chunk.events.data();
  const size_t n = st.chunk.events.size();
  const size_t top = heap_[0];
  const uint64_t key = KeyTime(top);
  // Earlier(top, s) for each later event of s: the top's key is earlier,
  // or the same time and the top's thread index is lower (distinct streams
  // have distinct thread indices).
  const bool wins_ties = st.thread_index < streams_[top]->thread_index;
  auto in_run = [&](size_t i) {
    return wins_ties ? events[i].time_us <= key : events[i].time_us < key;
  };
  size_t lo = st.pos + 1;  // events before lo are in the run
  if (!st.chunk.ordered) {
    while (lo < n && in_run(lo)) ++lo;
    return lo;
  }
  // Galloping: probe lo, lo + 1, lo + 3, lo + 7, ... until an event is out
  // (or the chunk ends), so a short run costs a few probes, then bisect.
  size_t hi = lo;
  for (size_t step = 1; hi < n && in_run(hi); step *= 2) {
    lo = hi + 1;
    hi = lo + step;
  }
  if (hi > n) hi = n;
  while (lo < hi) {  // the first event out of the run is in [lo, hi]
    size_t mid = lo + (hi - lo) / 2;
    if (in_run(mid)) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

bool StreamMerger::NextRun(Run* run) {
  if (!status_.ok()) return false;
  if (!started_) {
    started_ = true;
    for (size_t s = 0; s < streams_.size(); ++s) {
      if (!streams_[s]->chunks.empty()) HeapPush(s);  // parked at its first chunk
    }
  } else if (current_ != SIZE_MAX) {
    // The last run ended before another stream's key, or at its chunk's
    // end: then Advance parks the stream at its next chunk, or finds it
    // exhausted, or sets status_ (a corrupt chunk).
    size_t c = current_;
    current_ = SIZE_MAX;
    if (Advance(c)) {
      HeapPush(c);
    } else if (!status_.ok()) {
      return false;
    }
  }
  while (!heap_.empty()) {
    size_t c = HeapPop();
    Stream& st = *streams_[c];
    if (st.has_record) {
      // Its pending record comes first; so do its next ones up to RunEnd.
      const size_t end = heap_.empty() ? st.chunk.events.size() : RunEnd(c);
      const Event* events = st.chunk.events.data();
      run->begin = events + st.pos;
      run->end = events + end;
      run->stream = c;
      run->starts = st.pos == 0 ? &st.chunk : nullptr;
      st.pos = end;
      current_ = c;
      return true;
    }
    // Parked: read its chunk, then compete again with its first record.
    if (Unpark(c) || (status_.ok() && st.next_chunk < st.chunks.size())) {
      HeapPush(c);
    } else if (!status_.ok()) {
      return false;
    }
  }
  return false;
}

absl::Status StreamMerger::FindAllocations(
    const std::vector<uint64_t>& ids, const std::function<void(const format::Record&)>& fn) {
  std::vector<uint8_t> buffer;
  format::Record r;
  // Decodes chunk `c` of `st`; true if it held `id`.
  auto search = [&](const Stream& st, size_t c, uint64_t id, bool* found) -> absl::Status {
    if (absl::Status s = reader_->ReadChunkAt(st.chunks[c].offset, &buffer); !s.ok()) return s;
    format::ChunkDecoder d(buffer.data(), buffer.size(), format::HasCompactFrees(header()),
                           format::HasAddressFrees(header()));
    while (d.Next(&r)) {
      if (r.id == id && (r.tag == format::RecordTag::kAlloc ||
                         r.tag == format::RecordTag::kRealloc ||
                         r.tag == format::RecordTag::kInherited)) {
        fn(r);
        *found = true;
        return absl::OkStatus();
      }
    }
    return absl::OkStatus();  // a malformed chunk was reported by the merge
  };
  for (uint64_t id : ids) {
    const Stream* st = nullptr;
    for (const auto& stream : streams_) {
      if (stream->thread_index == format::AllocIdThread(id)) st = stream.get();
    }
    if (st == nullptr || st->chunks.empty()) continue;
    uint64_t counter = format::AllocIdCounter(id);
    // The last chunk whose first allocation counter is <= counter.
    auto it = std::upper_bound(
        st->chunks.begin(), st->chunks.end(), counter,
        [](uint64_t c, const ChunkRef& ref) { return c < ref.first_alloc_counter; });
    bool found = false;
    if (it != st->chunks.begin()) {
      size_t c = static_cast<size_t>(it - st->chunks.begin()) - 1;
      if (absl::Status s = search(*st, c, id, &found); !s.ok()) return s;
    }
    for (size_t c = 0; !found && c < st->chunks.size(); ++c) {
      if (absl::Status s = search(*st, c, id, &found); !s.ok()) return s;
    }
  }
  return absl::OkStatus();
}

}  // namespace heapsight::analyzer
