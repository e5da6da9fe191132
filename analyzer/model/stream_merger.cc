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
  };
  std::vector<Key> keys;
  keys.reserve(block_count_);
  for (auto& stream : streams_) {
    for (ChunkRef& ref : stream->chunks) {
      keys.push_back({ref.base_time_us, stream->thread_index, ref.sequence, &ref});
    }
  }
  std::stable_sort(keys.begin(), keys.end(), [](const Key& a, const Key& b) {
    if (a.time != b.time) return a.time < b.time;
    if (a.thread != b.thread) return a.thread < b.thread;
    return a.sequence < b.sequence;
  });
  std::vector<uint64_t> offsets(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    keys[i].ref->order = i;
    offsets[i] = keys[i].ref->offset;
  }
  // Two decoded chunks per worker keep every worker busy while the merge
  // catches up (one being decoded, one ready), and bound the memory in
  // flight: a decoded chunk is about 1.6 MB of events.
  absl::StatusOr<std::unique_ptr<ChunkPrefetcher>> p =
      ChunkPrefetcher::Start(path, std::move(offsets), threads, 2 * static_cast<size_t>(threads));
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
  st.has_record = false;
  if (st.pos < st.chunk.events.size()) {
    st.record = &st.chunk.events[st.pos++];
    st.has_record = true;
    return true;
  }
  if (!st.chunk.error.empty()) {
    status_ = absl::DataLossError(absl::StrCat(reader_->path(), ": corrupt trace: ",
                                               st.chunk.error, " (block at offset ", st.offset,
                                               ")"));
    return false;
  }
  // Parked threads hold no chunk: its arrays go back to the workers (or to
  // the sink, whose owner holds on to the events it was handed).
  if (retired_sink_ != nullptr) {
    retired_sink_->push_back(std::move(st.chunk));
  } else {
    Recycle(std::move(st.chunk));
  }
  st.chunk.Release();
  st.record = nullptr;
  return st.next_chunk < st.chunks.size();  // parked at its next chunk
}

void StreamMerger::Recycle(DecodedChunk&& chunk) {
  if (prefetcher_ != nullptr) {
    prefetcher_->Recycle(std::move(chunk));
    return;
  }
  chunk.Clear();
  if (chunk.events.capacity() == 0) return;
  std::lock_guard<std::mutex> lock(spare_mu_);
  if (spare_.size() < 4) spare_.push_back(std::move(chunk));
}

bool StreamMerger::Unpark(size_t s) {
  Stream& st = *streams_[s];
  const ChunkRef& ref = st.chunks[st.next_chunk++];
  if (prefetcher_ == nullptr && st.chunk.events.capacity() == 0) {
    // The serial path decodes into the stream's chunk: reuse a recycled
    // one's arrays rather than allocate (and fault in) fresh ones.
    std::lock_guard<std::mutex> lock(spare_mu_);
    if (!spare_.empty()) {
      st.chunk = std::move(spare_.back());
      spare_.pop_back();
    }
  }
  absl::Status read =
      prefetcher_ != nullptr
          ? prefetcher_->Take(ref.order, *reader_, scratch_, &st.chunk)
          : ChunkPrefetcher::ReadAndDecode(*reader_, ref.offset, scratch_, &st.chunk);
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
  return st.has_record ? st.record->time_us : st.chunks[st.next_chunk].base_time_us;
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

const Event* StreamMerger::Next(size_t* stream) {
  if (!status_.ok()) return nullptr;
  if (!started_) {
    started_ = true;
    for (size_t s = 0; s < streams_.size(); ++s) {
      if (!streams_[s]->chunks.empty()) HeapPush(s);  // parked at its first chunk
    }
  } else if (current_ != SIZE_MAX) {
    size_t c = current_;
    Stream& cur = *streams_[c];
    // Hot path: the next record of the same chunk, still not later than
    // every other thread's next record.
    if (cur.pos < cur.chunk.events.size()) {
      cur.record = &cur.chunk.events[cur.pos++];
      if (heap_.empty() || !Earlier(heap_[0], c)) {
        *stream = c;
        cur.record->stream = static_cast<uint32_t>(c);
        return cur.record;
      }
      current_ = SIZE_MAX;
      HeapPush(c);  // another thread's record comes first: compete
    } else {
      // The chunk is used up (or corrupt): Advance parks the stream at its
      // next chunk, or finds it exhausted, or sets status_.
      current_ = SIZE_MAX;
      if (Advance(c)) {
        HeapPush(c);
      } else if (!status_.ok()) {
        return nullptr;
      }
    }
  }
  while (!heap_.empty()) {
    size_t c = HeapPop();
    Stream& st = *streams_[c];
    if (st.has_record) {
      current_ = c;
      *stream = c;
      st.record->stream = static_cast<uint32_t>(c);
      return st.record;
    }
    // Parked: read its chunk, then compete again with its first record.
    if (Unpark(c) || (status_.ok() && st.next_chunk < st.chunks.size())) {
      HeapPush(c);
    } else if (!status_.ok()) {
      return nullptr;
    }
  }
  return nullptr;
}

absl::Status StreamMerger::FindAllocations(
    const std::vector<uint64_t>& ids, const std::function<void(const format::Record&)>& fn) {
  std::vector<uint8_t> buffer;
  format::Record r;
  // Decodes chunk `c` of `st`; true if it held `id`.
  auto search = [&](const Stream& st, size_t c, uint64_t id, bool* found) -> absl::Status {
    if (absl::Status s = reader_->ReadChunkAt(st.chunks[c].offset, &buffer); !s.ok()) return s;
    format::ChunkDecoder d(buffer.data(), buffer.size(), format::HasCompactFrees(header()));
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
