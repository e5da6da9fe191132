// analyzer/symbols/inflated_debug_file.h: a copy of a separate debug file
// with its compressed DWARF sections stored uncompressed, for libdwfl.
//
// Debian's debug files (libc6-dbg's libc: 4.1 MB on disk, 10 MB of DWARF)
// keep their sections zlib-compressed (SHF_COMPRESSED). libdw inflates
// every one of them with zlib when the file's DWARF is opened
// (dwarf_begin_elf), adler32 checksum included, location lists too: ~205 M
// instructions for libc, the largest single cost of a report on a small
// trace that prints a libc frame. This file's inflater does the same work
// faster: libdeflate where the build has it (about 3x zlib), else zlib
// without the checksum, and it leaves out the sections the symbolizer never
// reads (.debug_loc, .debug_loclists: where variables live), which libdw
// then sees as absent (SHT_NOBITS).
//
// The copy lives either in memory (InflateDebugImage: the symbolizer's
// path for a debug file found by build id, handed to libdwfl as the
// module's ELF through elf_memory) or in a memfd that libdwfl maps like any
// file (InflateDebugFile: for the descriptor a find_debuginfo callback
// returns, e.g. one found through .gnu_debuglink or debuginfod).
#ifndef HEAPSIGHT_ANALYZER_SYMBOLS_INFLATED_DEBUG_FILE_H_
#define HEAPSIGHT_ANALYZER_SYMBOLS_INFLATED_DEBUG_FILE_H_

#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"

namespace heapsight::analyzer {

struct InflatedDebugFileStats {
  uint64_t sections_inflated = 0;
  uint64_t bytes_inflated = 0;   // their uncompressed size
  uint64_t sections_dropped = 0;  // location lists left out
};

// A memfd (close-on-exec) holding the ELF file open at `fd` with every
// SHF_COMPRESSED section (zlib or zstd) stored uncompressed and the
// location-list sections made SHT_NOBITS; everything before the first such
// section (ELF header, program headers, notes) at its own offset, the
// sections after it laid out anew, then the section header table. `fd` is
// left open. An error (the caller keeps `fd`) when the file has nothing
// compressed, is not a 64-bit little-endian ELF file, or does not check out
// (offsets or sizes out of bounds, a stream that does not inflate to its
// recorded size): debug files are untrusted.
absl::StatusOr<int> InflateDebugFile(int fd, InflatedDebugFileStats* stats = nullptr);

// The same copy in this process's memory, for libelf's elf_memory: a
// private anonymous mapping (2 MiB-aligned, MADV_HUGEPAGE), unmapped when
// the image goes. The memfd costs the kernel about a third of the
// inflation's CPU time (the shared memory's pages allocated, mapped for the
// writes, unmapped, mapped again by libelf, freed at exit: ~8 ms for
// libc's 8.6 MB here); anonymous huge pages cost a fault per 2 MiB. Its
// pages count in the RSS as long as it lives.
class InflatedDebugImage {
 public:
  InflatedDebugImage() = default;
  InflatedDebugImage(uint8_t* data, size_t size, size_t mapped)
      : data_(data), size_(size), mapped_(mapped) {}
  ~InflatedDebugImage();
  InflatedDebugImage(InflatedDebugImage&& other) noexcept { *this = std::move(other); }
  InflatedDebugImage& operator=(InflatedDebugImage&& other) noexcept;
  InflatedDebugImage(const InflatedDebugImage&) = delete;
  InflatedDebugImage& operator=(const InflatedDebugImage&) = delete;

  uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t mapped_ = 0;  // the mapping's length (size rounded up to pages)
};
absl::StatusOr<InflatedDebugImage> InflateDebugImage(int fd,
                                                     InflatedDebugFileStats* stats = nullptr);

// While one is alive on a thread, InflateDebugFile called on that thread
// inflates every section there, without its second thread: for a helper
// that inflates beside other work (the pass of a small trace, whose main
// thread is the one to keep running), not for a report waiting on it.
class ScopedSerialInflation {
 public:
  ScopedSerialInflation();
  ~ScopedSerialInflation();
  ScopedSerialInflation(const ScopedSerialInflation&) = delete;
  ScopedSerialInflation& operator=(const ScopedSerialInflation&) = delete;

 private:
  bool previous_;
};

// Whether the build inflates zlib sections with libdeflate (else zlib).
bool InflatesWithLibdeflate();

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_SYMBOLS_INFLATED_DEBUG_FILE_H_
