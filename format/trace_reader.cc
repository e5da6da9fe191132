// format/trace_reader.cc: see trace_reader.h.
#include "format/trace_reader.h"

#include <sys/stat.h>
#include <zstd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "format/spool_recovery.h"

namespace heapsight::format {

absl::Status ValidateFileHeader(const FileHeader& header, const std::string& path) {
  if (std::memcmp(header.magic, kFileMagic, sizeof kFileMagic) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a heapsight trace (bad magic bytes)"));
  }
  if (header.version != kFormatVersion && header.version != kFormatVersionCompact &&
      header.version != kFormatVersionAddress) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, ": trace format version ", header.version,
        " is not supported; this heapsight reads version ", kFormatVersion, " (and versions ",
        kFormatVersionCompact, " and ", kFormatVersionAddress, ", version ", kFormatVersion,
        " with compact or address frees)"));
  }
  // Versions 5 and 6 are exactly version 4 with compact or address frees:
  // the flags and the version must agree, or a decoder would read stacks
  // or addresses as id references (or the reverse).
  const bool compact = (header.flags & kFileFlagCompactFrees) != 0;
  const bool address = (header.flags & kFileFlagAddressFrees) != 0;
  if (compact && address) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": corrupt trace header (both the compact-frees and the address-frees flag)"));
  }
  if (header.version != FormatVersionFor(header.flags)) {
    const char* which = header.version == kFormatVersionAddress ? " without the address-frees flag"
                        : address                               ? " with the address-frees flag"
                        : compact                               ? " with the compact-frees flag"
                                : " without the compact-frees flag";
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": corrupt trace header (version ", header.version, which, ")"));
  }
  if (header.header_size < sizeof(FileHeader) || header.header_size > 4096) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": corrupt trace header (header size ", header.header_size, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TraceReader>> TraceReader::Open(const std::string& path) {
  // Chunks that a killed process left in its spool go into the trace first
  // (a live process's spool is left alone); a spool that cannot be
  // recovered does not stop the trace from being read.
  (void)RecoverSpool(path);
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) {
    return absl::NotFoundError(absl::StrCat(path, ": ", std::strerror(errno)));
  }
  struct stat st;
  if (fstat(fileno(file), &st) != 0 || !S_ISREG(st.st_mode)) {
    std::fclose(file);
    return absl::InvalidArgumentError(absl::StrCat(path, ": not a regular file"));
  }
  FileHeader header;
  uint64_t size = static_cast<uint64_t>(st.st_size);
  if (size == 0) {
    std::fclose(file);
    return absl::InvalidArgumentError(absl::StrCat(path, ": empty file, not a heapsight trace"));
  }
  if (size < sizeof header || std::fread(&header, sizeof header, 1, file) != 1) {
    std::fclose(file);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": too short to be a heapsight trace (", size, " bytes)"));
  }
  if (absl::Status s = ValidateFileHeader(header, path); !s.ok()) {
    std::fclose(file);
    return s;
  }
  return std::unique_ptr<TraceReader>(
      new TraceReader(path, file, size, header, header.header_size));
}

TraceReader::TraceReader(std::string path, std::FILE* file, uint64_t file_size,
                         const FileHeader& header, uint64_t data_start)
    : path_(std::move(path)),
      file_(file),
      file_size_(file_size),
      header_(header),
      position_(data_start) {}

TraceReader::~TraceReader() { std::fclose(file_); }

void TraceReader::DctxDeleter::operator()(void* dctx) const {
  ZSTD_freeDCtx(static_cast<ZSTD_DCtx*>(dctx));
}

absl::Status TraceReader::CheckBlockHeader(const BlockHeader& block, uint64_t offset) const {
  if (block.magic != kBlockMagic) {
    return absl::DataLossError(
        absl::StrCat(path_, ": corrupt trace: no block header at offset ", offset));
  }
  if (block.raw_size < sizeof(ChunkHeader) || block.raw_size > kMaxChunkSize ||
      block.payload_size > kMaxChunkSize + 4096 ||
      (block.codec != static_cast<uint8_t>(Codec::kRaw) &&
       block.codec != static_cast<uint8_t>(Codec::kZstd)) ||
      (block.codec == static_cast<uint8_t>(Codec::kRaw) && block.payload_size != block.raw_size)) {
    return absl::DataLossError(absl::StrCat(path_, ": corrupt trace: impossible block at offset ",
                                            offset, " (payload ", block.payload_size, ", raw ",
                                            block.raw_size, ", codec ", block.codec, ")"));
  }
  return absl::OkStatus();
}

absl::Status TraceReader::ReadBlock(uint64_t offset, std::vector<uint8_t>* chunk, uint64_t* next) {
  BlockHeader block;
  if (offset + sizeof block > file_size_) {
    return absl::OutOfRangeError("block header cut off by end of file");
  }
  if (fseeko(file_, static_cast<off_t>(offset), SEEK_SET) != 0 ||
      std::fread(&block, sizeof block, 1, file_) != 1) {
    return absl::DataLossError(absl::StrCat(path_, ": read error at offset ", offset));
  }
  if (absl::Status s = CheckBlockHeader(block, offset); !s.ok()) return s;
  uint64_t end = offset + sizeof block + block.payload_size;
  if (end > file_size_) return absl::OutOfRangeError("block cut off by end of file");

  chunk->resize(block.raw_size);
  if (block.codec == static_cast<uint8_t>(Codec::kRaw)) {
    if (std::fread(chunk->data(), 1, block.raw_size, file_) != block.raw_size) {
      return absl::DataLossError(absl::StrCat(path_, ": read error at offset ", offset));
    }
  } else {
    compressed_.resize(block.payload_size);
    if (std::fread(compressed_.data(), 1, block.payload_size, file_) != block.payload_size) {
      return absl::DataLossError(absl::StrCat(path_, ": read error at offset ", offset));
    }
    if (dctx_ == nullptr) dctx_.reset(ZSTD_createDCtx());
    if (dctx_ == nullptr) return absl::ResourceExhaustedError("cannot allocate a zstd context");
    size_t n = ZSTD_decompressDCtx(static_cast<ZSTD_DCtx*>(dctx_.get()), chunk->data(),
                                   chunk->size(), compressed_.data(), compressed_.size());
    if (ZSTD_isError(n) || n != block.raw_size) {
      return absl::DataLossError(absl::StrCat(
          path_, ": corrupt trace: block at offset ", offset, " does not decompress (",
          ZSTD_isError(n) ? ZSTD_getErrorName(n) : "size mismatch", ")"));
    }
  }
  if (std::memcmp(chunk->data(), &block.chunk, sizeof block.chunk) != 0) {
    return absl::DataLossError(absl::StrCat(
        path_, ": corrupt trace: block at offset ", offset,
        " does not match the chunk header its block header announces"));
  }
  *next = end;
  return absl::OkStatus();
}

absl::Status TraceReader::ReadBlockHeaderAt(uint64_t offset, BlockHeader* block,
                                            uint64_t* next) {
  if (offset + sizeof *block > file_size_) {
    return absl::OutOfRangeError("block header cut off by end of file");
  }
  if (fseeko(file_, static_cast<off_t>(offset), SEEK_SET) != 0 ||
      std::fread(block, sizeof *block, 1, file_) != 1) {
    return absl::DataLossError(absl::StrCat(path_, ": read error at offset ", offset));
  }
  if (absl::Status s = CheckBlockHeader(*block, offset); !s.ok()) return s;
  uint64_t end = offset + sizeof *block + block->payload_size;
  if (end > file_size_) return absl::OutOfRangeError("block cut off by end of file");
  *next = end;
  return absl::OkStatus();
}

bool TraceReader::NextChunk(std::vector<uint8_t>* chunk, uint64_t* offset) {
  if (!status_.ok() || truncated_ || position_ >= file_size_) return false;
  uint64_t next = 0;
  absl::Status s = ReadBlock(position_, chunk, &next);
  if (absl::IsOutOfRange(s)) {
    truncated_ = true;
    return false;
  }
  if (!s.ok()) {
    status_ = s;
    return false;
  }
  if (offset != nullptr) *offset = position_;
  position_ = next;
  return true;
}

absl::Status TraceReader::ReadChunkAt(uint64_t offset, std::vector<uint8_t>* chunk) {
  uint64_t next = 0;
  absl::Status s = ReadBlock(offset, chunk, &next);
  if (absl::IsOutOfRange(s)) {
    return absl::DataLossError(absl::StrCat(path_, ": block at ", offset, " is cut off"));
  }
  return s;
}

}  // namespace heapsight::format
