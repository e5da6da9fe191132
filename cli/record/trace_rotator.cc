// cli/record/trace_rotator.cc: see trace_rotator.h.
#include "cli/record/trace_rotator.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "cli/monotonic_clock.h"
#include "format/chunk_encoder.h"

namespace heapsight::record {
namespace {

constexpr size_t kPreambleChunkBytes = 128 << 10;

std::string FromHex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

}  // namespace

TraceRotator::TraceRotator(std::string stem, RotateLimits limits)
    : stem_(std::move(stem)), limits_(limits) {}

TraceRotator::~TraceRotator() {
  if (fd_ >= 0) close(fd_);
}

absl::Status TraceRotator::Write(const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd_, p, size);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      return absl::DataLossError(absl::StrCat(segments_.back(), ": cannot write: ",
                                              std::strerror(errno)));
    }
    p += n;
    size -= static_cast<size_t>(n);
    bytes_ += static_cast<uint64_t>(n);
  }
  return absl::OkStatus();
}

absl::Status TraceRotator::Open(const analyzer::LiveProcess& process) {
  if (fd_ >= 0) {
    if (absl::Status s = WriteRotatedEnd(process); !s.ok()) return s;
    close(fd_);
    fd_ = -1;
  }
  ++number_;
  std::string path = absl::StrCat(stem_, ".", number_, ".hst");
  fd_ = open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd_ < 0) {
    return absl::FailedPreconditionError(absl::StrCat(path, ": cannot create: ",
                                                      std::strerror(errno)));
  }
  segments_.push_back(path);
  bytes_ = 0;
  preamble_sequence_ = 0;
  opened_ms_ = MonotonicMs();
  format::FileHeader header = process.header();
  if (absl::Status s = Write(&header, sizeof header); !s.ok()) return s;
  if (number_ > 1) {
    if (absl::Status s = WritePreamble(process); !s.ok()) return s;
  }
  while (limits_.keep_segments != 0 && segments_.size() > limits_.keep_segments) {
    unlink(segments_.front().c_str());
    segments_.pop_front();
  }
  return absl::OkStatus();
}

absl::Status TraceRotator::WritePreamble(const analyzer::LiveProcess& process) {
  std::vector<uint8_t> buffer(kPreambleChunkBytes);
  format::ChunkEncoder encoder;
  uint64_t& sequence = preamble_sequence_;
  // Time 0: the preamble comes first in time order, before any record of
  // the segment (a chunk flushed after the cut may hold earlier events).
  const uint64_t now = 0;
  auto begin = [&] {
    format::ChunkHeader h{};
    h.thread_index = kPreambleThread;
    h.sequence = sequence++;
    h.base_time_us = now;
    encoder.Begin(buffer.data(), buffer.size(), h);
  };
  // Writes the chunk begun; the next one is begun only if a record needs
  // it (a sequence number taken by a chunk never written would read as a
  // missing chunk: the closing kRotated chunk takes the next one).
  auto flush = [&]() -> absl::Status {
    if (encoder.empty()) return absl::OkStatus();
    size_t size = encoder.Seal();
    format::BlockHeader b = format::MakeBlockHeader(buffer.data(), static_cast<uint32_t>(size),
                                                    format::Codec::kRaw,
                                                    static_cast<uint32_t>(size));
    if (absl::Status s = Write(&b, sizeof b); !s.ok()) return s;
    return Write(buffer.data(), size);
  };
  // Each Put is tried in the current chunk, then in a fresh one.
  absl::Status status;
  auto put = [&](auto&& fn) {
    if (!status.ok() || fn()) return;
    status = flush();
    if (!status.ok()) return;
    begin();
    if (!fn()) status = absl::InternalError("a preamble record does not fit a chunk");
  };
  begin();
  std::vector<const char*> argv;
  size_t argv_bytes = 0;
  for (const std::string& a : process.argv()) {
    argv.push_back(a.c_str());
    argv_bytes += a.size();
  }
  put([&] {
    return encoder.PutProcess(now, process.exe().data(), process.exe().size(), argv.data(),
                              argv.size(), argv_bytes, process.ppid(),
                              process.parent_trace().data(), process.parent_trace().size());
  });
  for (const analyzer::Module& m : process.modules()) {
    if (m.unload_time_us != analyzer::kNever) continue;
    std::string build_id = FromHex(m.build_id_hex);
    put([&] {
      return encoder.PutModule(now, m.id, m.load_address, m.path.data(), m.path.size(),
                               reinterpret_cast<const uint8_t*>(build_id.data()), build_id.size(),
                               m.segments.data(), m.segments.size());
    });
  }
  process.stack_nodes().ForEach([&](uint64_t node, const analyzer::StackNode& n) {
    put([&] { return encoder.PutStackNode(node, n.parent, n.ip); });
  });
  process.ForEachLiveBlock([&](uint64_t id, uint64_t size, uint64_t stack, format::Api api) {
    put([&] { return encoder.PutInherited(now, id, api, size, stack); });
  });
  // A free read before its allocation (another thread's chunk came first)
  // whose allocation lands in this segment: repeated here, so the block is
  // freed in this segment too (the earlier one counts it as unmatched).
  // Only a cut that waited kMaxDeferredBlocks in vain has any (Append).
  process.ForEachPendingFree([&](uint64_t id) {
    put([&] { return encoder.PutFree(now, format::Api::kFree, id, kPreambleThread, 0); });
  });
  // The same for a compact trace's frees (the segment's header keeps the
  // compact-frees flag and version: its frees name stacks and sizes).
  process.ForEachPendingCompactFree([&](uint64_t stack, uint64_t size, size_t count) {
    for (size_t i = 0; i < count; ++i) {
      put([&] { return encoder.PutFreeCompact(now, format::Api::kFree, stack, size); });
    }
  });
  if (status.ok()) status = flush();
  return status;
}

absl::Status TraceRotator::WriteRotatedEnd(const analyzer::LiveProcess& process) {
  // Timed at the newest record applied so far, which is at least the
  // newest of this segment: readers merge by time, so every record of the
  // segment comes before the end.
  const uint64_t time = process.counters().last_time_us;
  std::vector<uint8_t> buffer(4096);
  format::ChunkEncoder encoder;
  format::ChunkHeader h{};
  h.thread_index = kPreambleThread;
  h.sequence = preamble_sequence_++;
  h.base_time_us = time;
  encoder.Begin(buffer.data(), buffer.size(), h);
  if (!encoder.PutEnd(time, format::EndReason::kRotated, 0)) {
    return absl::InternalError("the end record does not fit a chunk");
  }
  size_t size = encoder.Seal();
  format::BlockHeader b = format::MakeBlockHeader(buffer.data(), static_cast<uint32_t>(size),
                                                  format::Codec::kRaw,
                                                  static_cast<uint32_t>(size));
  if (absl::Status s = Write(&b, sizeof b); !s.ok()) return s;
  return Write(buffer.data(), size);
}

absl::Status TraceRotator::Append(const std::string& block, analyzer::LiveProcess& process) {
  bool full = limits_.max_bytes != 0 && bytes_ >= limits_.max_bytes;
  bool old = limits_.max_seconds != 0 &&
             MonotonicMs() - opened_ms_ >= static_cast<int64_t>(limits_.max_seconds) * 1000;
  // Once the process has ended (its kEnd is in this segment), the blocks
  // still to come (other threads' last chunks) stay in it: the segment with
  // the process's own end record is the last one.
  bool cut = fd_ < 0;
  if (!cut && (full || old)) {
    // The preamble is the state after every block before this one: what
    // the time merge still holds (address frees) is applied first. This
    // may read the process's end record.
    if (absl::Status s = process.DrainMerge(); !s.ok()) return s;
  }
  if (!cut && (full || old) && !process.ended()) {
    // A due cut waits for a block boundary where every free read so far
    // found its allocation (trace_rotator.h): chunks reach the file out of
    // order (another thread's, or a chunk the preload's writer wrote after
    // the same thread's later one written inline when its spool was full),
    // and a cut between a free and its allocation leaves the free
    // unmatched in the segment before. Bounded: a thread that keeps its
    // allocation in a partial chunk for long does not stop the rotation.
    if (process.waiting_events() == 0 || deferred_blocks_ >= kMaxDeferredBlocks) {
      cut = true;
    } else {
      ++deferred_blocks_;
      ++deferred_total_;
    }
  }
  if (cut) {
    if (absl::Status s = Open(process); !s.ok()) return s;
    deferred_blocks_ = 0;
  }
  return Write(block.data(), block.size());
}

}  // namespace heapsight::record
