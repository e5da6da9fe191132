// format/spool_recovery.cc: see spool_recovery.h.
#include "format/spool_recovery.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "format/spool_format.h"
#include "format/trace_format.h"

namespace heapsight::format {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

bool ReadAt(int fd, void* out, size_t size, uint64_t offset) {
  auto* p = static_cast<char*>(out);
  while (size > 0) {
    ssize_t n = pread(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

bool WriteAt(int fd, const void* data, size_t size, uint64_t offset) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = pwrite(fd, p, size, static_cast<off_t>(offset));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
    offset += static_cast<uint64_t>(n);
  }
  return true;
}

struct Recovered {
  uint64_t ticket;
  std::vector<uint8_t> block;
};

}  // namespace

absl::StatusOr<int> RecoverSpool(const std::string& trace_path) {
  const std::string spool_path = trace_path + kSpoolSuffix;
  Fd spool(open(spool_path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK));
  if (spool.get() < 0) return 0;  // no spool (the usual case)
  // The writer holds this lock for as long as it lives: a live trace's
  // spool is not ours to touch.
  if (flock(spool.get(), LOCK_EX | LOCK_NB) != 0) return 0;
  struct stat st;
  if (fstat(spool.get(), &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  const uint64_t spool_size = static_cast<uint64_t>(st.st_size);
  SpoolHeader h;
  if (spool_size < sizeof h || !ReadAt(spool.get(), &h, sizeof h, 0) ||
      std::memcmp(h.magic, kSpoolMagic, sizeof h.magic) != 0 || h.version != kSpoolVersion ||
      h.slot_count > kMaxSpoolSlots ||
      h.slot_bytes < sizeof(SpoolSlotHeader) + sizeof(BlockHeader) + kChunkPreambleBytes ||
      h.slot_bytes > kMaxSpoolSlotBytes ||
      spool_size < sizeof h + uint64_t{h.slot_count} * h.slot_bytes) {
    return absl::DataLossError(absl::StrCat(spool_path, ": corrupt chunk spool header"));
  }

  Fd trace(open(trace_path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
  if (trace.get() < 0) return 0;  // read-only copy: nothing we may change
  if (fstat(trace.get(), &st) != 0 || !S_ISREG(st.st_mode)) return 0;
  const uint64_t trace_size = static_cast<uint64_t>(st.st_size);
  FileHeader fh;
  if (trace_size < sizeof fh || !ReadAt(trace.get(), &fh, sizeof fh, 0) ||
      std::memcmp(fh.magic, kFileMagic, sizeof fh.magic) != 0 || fh.header_size < sizeof fh ||
      fh.header_size > 4096) {
    return absl::DataLossError(absl::StrCat(trace_path, ": not a heapsight trace"));
  }
  // The trace's whole blocks: their (thread, sequence), and where the last
  // one ends (a block the process died writing is cut off there).
  std::set<std::pair<uint32_t, uint64_t>> have;
  uint64_t end = fh.header_size;
  while (end + sizeof(BlockHeader) <= trace_size) {
    BlockHeader b;
    if (!ReadAt(trace.get(), &b, sizeof b, end) || b.magic != kBlockMagic ||
        b.payload_size > kMaxChunkSize || end + sizeof b + b.payload_size > trace_size) {
      break;
    }
    have.emplace(b.chunk.thread_index, b.chunk.sequence);
    end += sizeof b + b.payload_size;
  }

  std::vector<Recovered> blocks;
  for (uint32_t i = 0; i < h.slot_count; ++i) {
    const uint64_t at = sizeof h + uint64_t{i} * h.slot_bytes;
    SpoolSlotHeader s;
    if (!ReadAt(spool.get(), &s, sizeof s, at)) break;
    if (s.state != kSpoolSlotSealed && s.state != kSpoolSlotWriting) continue;
    if (s.block_bytes < sizeof(BlockHeader) + kChunkPreambleBytes ||
        s.block_bytes > h.slot_bytes - sizeof s) {
      continue;
    }
    Recovered r{s.ticket, std::vector<uint8_t>(s.block_bytes)};
    if (!ReadAt(spool.get(), r.block.data(), r.block.size(), at + sizeof s)) continue;
    BlockHeader b;
    std::memcpy(&b, r.block.data(), sizeof b);
    ChunkHeader c;
    std::memcpy(&c, r.block.data() + sizeof b, sizeof c);
    if (b.magic != kBlockMagic || b.codec != static_cast<uint8_t>(Codec::kRaw) ||
        b.payload_size != s.block_bytes - sizeof b || b.raw_size != b.payload_size ||
        std::memcmp(&b.chunk, &c, sizeof c) != 0) {
      continue;
    }
    if (!have.emplace(c.thread_index, c.sequence).second) continue;  // already written
    blocks.push_back(std::move(r));
  }
  std::sort(blocks.begin(), blocks.end(),
            [](const Recovered& a, const Recovered& b) { return a.ticket < b.ticket; });
  if (!blocks.empty()) {
    if (end < trace_size && ftruncate(trace.get(), static_cast<off_t>(end)) != 0) {
      return absl::InternalError(
          absl::StrCat(trace_path, ": cannot cut a partial block: ", std::strerror(errno)));
    }
    for (const Recovered& r : blocks) {
      if (!WriteAt(trace.get(), r.block.data(), r.block.size(), end)) {
        return absl::InternalError(
            absl::StrCat(trace_path, ": cannot append recovered chunks: ", std::strerror(errno)));
      }
      end += r.block.size();
    }
  }
  unlink(spool_path.c_str());
  return static_cast<int>(blocks.size());
}

}  // namespace heapsight::format
