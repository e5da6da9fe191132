// analyzer/model/trace_tail.cc: see trace_tail.h.
#include "analyzer/model/trace_tail.h"

#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace heapsight::analyzer {
namespace {

constexpr uint64_t kReleaseUnit = 64 << 10;

}  // namespace

TraceTail::TraceTail(std::string path, bool release_consumed)
    : path_(std::move(path)), release_consumed_(release_consumed) {}

TraceTail::~TraceTail() {
  if (punch_fd_ >= 0) close(punch_fd_);
  if (read_fd_ >= 0) close(read_fd_);
}

absl::StatusOr<size_t> TraceTail::Poll(
    const std::function<absl::Status(const std::vector<uint8_t>&)>& fn, size_t max_blocks) {
  struct stat st;
  if (stat(path_.c_str(), &st) != 0) {
    return absl::NotFoundError(absl::StrCat(path_, ": ", std::strerror(errno)));
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  // The writer may have created the file and not written its header yet.
  if (size < sizeof(format::FileHeader)) return 0;
  if (reader_ == nullptr || size > reader_size_) {
    // A reader sees the file size it was opened at; a new one sees the
    // blocks appended since (opening is a stat and a 64-byte read).
    absl::StatusOr<std::unique_ptr<format::TraceReader>> reader = format::TraceReader::Open(path_);
    if (!reader.ok()) return reader.status();
    reader_ = std::move(*reader);
    reader_size_ = reader_->file_size();
    if (!has_header_) {
      header_ = reader_->header();
      offset_ = header_.header_size;
      has_header_ = true;
    }
  }
  size_t done = 0;
  while (done < max_blocks && offset_ < reader_size_) {
    format::BlockHeader block;
    uint64_t next = 0;
    absl::Status s = reader_->ReadBlockHeaderAt(offset_, &block, &next);
    if (absl::IsOutOfRange(s)) break;  // not fully written yet: next time
    if (!s.ok()) return s;
    if (absl::Status r = reader_->ReadChunkAt(offset_, &chunk_); !r.ok()) return r;
    if (raw_sink_) {
      // The block was checked whole just above; its stored bytes as they are.
      if (absl::Status r = ReadRaw(offset_, next); !r.ok()) return r;
      if (absl::Status r = raw_sink_(raw_); !r.ok()) return r;
    }
    if (absl::Status r = fn(chunk_); !r.ok()) return r;
    offset_ = next;
    ++done;
  }
  if (release_consumed_ && done != 0) ReleaseConsumed();
  return done;
}

absl::Status TraceTail::ReadRaw(uint64_t begin, uint64_t end) {
  raw_.resize(end - begin);
  if (read_fd_ < 0) read_fd_ = open(path_.c_str(), O_RDONLY | O_CLOEXEC);
  if (read_fd_ < 0) return absl::NotFoundError(absl::StrCat(path_, ": ", std::strerror(errno)));
  ssize_t n = pread(read_fd_, raw_.data(), raw_.size(), static_cast<off_t>(begin));
  if (n != static_cast<ssize_t>(raw_.size())) {
    return absl::DataLossError(absl::StrCat(path_, ": read error at offset ", begin));
  }
  return absl::OkStatus();
}

void TraceTail::ReleaseConsumed() {
  uint64_t end = offset_ / kReleaseUnit * kReleaseUnit;
  // The file header stays: the trace's first page is kept readable.
  uint64_t begin = released_ == 0 ? kReleaseUnit : released_;
  if (end <= begin) return;
  if (punch_fd_ < 0) punch_fd_ = open(path_.c_str(), O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
  if (punch_fd_ < 0) return;
  // KEEP_SIZE: the writer appends at the end; only the read bytes go.
  if (fallocate(punch_fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                static_cast<off_t>(begin), static_cast<off_t>(end - begin)) == 0) {
    released_ = end;
  }
}

}  // namespace heapsight::analyzer
