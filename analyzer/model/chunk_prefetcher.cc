// analyzer/model/chunk_prefetcher.cc: see chunk_prefetcher.h.
#include "analyzer/model/chunk_prefetcher.h"

#include <cstdlib>
#include <utility>

namespace heapsight::analyzer {

int DecodeThreadsFromEnvironment() {
  if (const char* v = std::getenv("HEAPSIGHT_DECODE_THREADS"); v != nullptr && *v != '\0') {
    char* end = nullptr;
    long n = std::strtol(v, &end, 10);
    if (*end == '\0' && n >= 1 && n <= 256) return static_cast<int>(n);
  }
  unsigned cores = std::thread::hardware_concurrency();
  return cores == 0 ? 1 : static_cast<int>(cores > 256 ? 256 : cores);
}

ChunkPrefetcher::ChunkPrefetcher(std::vector<uint64_t> offsets, size_t window)
    : slots_(offsets.size()), window_(window == 0 ? 1 : window) {
  for (size_t i = 0; i < offsets.size(); ++i) slots_[i].offset = offsets[i];
}

absl::StatusOr<std::unique_ptr<ChunkPrefetcher>> ChunkPrefetcher::Start(
    const std::string& path, std::vector<uint64_t> offsets, int workers, size_t window,
    const std::vector<uint32_t>& streams) {
  std::unique_ptr<ChunkPrefetcher> p(new ChunkPrefetcher(std::move(offsets), window));
  for (size_t i = 0; i < streams.size() && i < p->slots_.size(); ++i) {
    p->slots_[i].stream = streams[i];
  }
  // Open every reader before starting any thread, so a failure leaves
  // nothing running.
  for (int i = 0; i < workers; ++i) {
    absl::StatusOr<std::unique_ptr<format::TraceReader>> r = format::TraceReader::Open(path);
    if (!r.ok()) return r.status();
    p->readers_.push_back(std::move(*r));
  }
  for (auto& reader : p->readers_) {
    p->threads_.emplace_back([p = p.get(), r = reader.get()] { p->Work(r); });
  }
  return p;
}

ChunkPrefetcher::~ChunkPrefetcher() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

absl::Status ChunkPrefetcher::ReadAndDecode(format::TraceReader& reader, uint64_t offset,
                                            std::vector<uint8_t>& scratch, DecodedChunk* chunk,
                                            uint32_t stream) {
  absl::Status status = reader.ReadChunkAt(offset, &scratch);
  if (!status.ok()) {
    chunk->Clear();
    return status;
  }
  DecodeChunk(scratch.data(), scratch.size(), chunk, format::HasCompactFrees(reader.header()),
              stream, format::HasAddressFrees(reader.header()));
  return absl::OkStatus();
}

void ChunkPrefetcher::Work(format::TraceReader* reader) {
  std::vector<uint8_t> scratch;  // the raw chunk; only its events are kept
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_) {
    while (next_claim_ < slots_.size() && slots_[next_claim_].state != State::kPending) {
      ++next_claim_;  // taken by a fallback read
    }
    if (next_claim_ >= slots_.size()) return;
    if (next_claim_ >= low_ + window_) {
      ++idle_workers_;
      work_cv_.wait(lock);  // the window is full until the merge takes a chunk
      --idle_workers_;
      continue;
    }
    Slot& slot = slots_[next_claim_++];
    slot.state = State::kClaimed;
    // The slot is this worker's until it is marked ready: read it unlocked.
    DecodedChunk chunk;
    if (!spare_.empty()) {
      chunk = std::move(spare_.back());
      spare_.pop_back();
    }
    lock.unlock();
    absl::Status status = ReadAndDecode(*reader, slot.offset, scratch, &chunk, slot.stream);
    lock.lock();
    slot.chunk = std::move(chunk);
    slot.status = std::move(status);
    slot.state = State::kReady;
    if (taker_waiting_) ready_cv_.notify_one();
  }
}

void ChunkPrefetcher::Recycle(DecodedChunk&& chunk) {
  chunk.Clear();
  if (chunk.events.capacity() == 0) return;
  std::lock_guard<std::mutex> lock(mu_);
  // One more than the window: the chunks in use swing by more than a
  // window (the window's decoded chunks, each stream's current one, those
  // the queued batches hold), and each array dropped at the top of a swing
  // is a fresh one, page faults and all, at the next. Measured on report
  // (2026-12-06): a pool of one window, python 26-32 k minor faults (main's
  // 14-18 k); window + 1, 16-18 k and cc1plus 66.3-66.8 MB RSS; window + 2,
  // 15 k and 68.0-68.3 MB; twice the window, 14.5 k and 69 MB.
  if (spare_.size() < window_ + 1) spare_.push_back(std::move(chunk));
}

void ChunkPrefetcher::AdvanceLow() {
  while (low_ < slots_.size() && slots_[low_].state == State::kTaken) ++low_;
  // One sleeping worker is woken when the window has room: it claims the
  // free slots one after the other, and the next Take wakes another if
  // there is still room. notify_all woke every worker for one slot (and
  // the losers went back to sleep): python's report, 2 workers, 2,900
  // context switches a worker for 880 chunks each.
  if (idle_workers_ != 0 && next_claim_ < low_ + window_) work_cv_.notify_one();
}

absl::Status ChunkPrefetcher::Take(size_t index, format::TraceReader& fallback,
                                   std::vector<uint8_t>& scratch, DecodedChunk* chunk) {
  std::unique_lock<std::mutex> lock(mu_);
  if (index >= slots_.size()) return absl::InternalError("chunk index out of range");
  Slot& slot = slots_[index];
  if (slot.state == State::kTaken) return absl::InternalError("chunk taken twice");
  if (index != low_) ++out_of_order_takes_;
  if (slot.state == State::kPending) {
    // Not claimed yet (beyond the window, or the workers are behind): read
    // it here rather than wait, and mark it so no worker reads it again.
    slot.state = State::kTaken;
    ++fallback_reads_;
    AdvanceLow();
    uint64_t offset = slot.offset;
    uint32_t stream = slot.stream;
    // Into a recycled chunk's arrays when the caller brings none: a fresh
    // array is mapped anew and faults in every page (large_blocks.h).
    if (chunk->events.capacity() == 0 && !spare_.empty()) {
      *chunk = std::move(spare_.back());
      spare_.pop_back();
    }
    lock.unlock();
    return ReadAndDecode(fallback, offset, scratch, chunk, stream);
  }
  taker_waiting_ = true;
  ready_cv_.wait(lock, [&] { return slot.state == State::kReady; });
  taker_waiting_ = false;
  *chunk = std::move(slot.chunk);
  slot.chunk.Release();  // taken slots hold no memory
  absl::Status status = std::move(slot.status);
  slot.status = absl::OkStatus();
  slot.state = State::kTaken;
  AdvanceLow();
  return status;
}

}  // namespace heapsight::analyzer
