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
// The copy lives in a memfd that libdwfl maps like any file: the caller
// hands the descriptor to libdwfl from its find_debuginfo callback.
#ifndef HEAPSIGHT_ANALYZER_SYMBOLS_INFLATED_DEBUG_FILE_H_
#define HEAPSIGHT_ANALYZER_SYMBOLS_INFLATED_DEBUG_FILE_H_

#include <cstdint>

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
