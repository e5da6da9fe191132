// format/spool_format.h: the chunk spool, "<trace>.spool", a file beside a
// trace that a live process is writing (issue 15 target 3).
//
// A traced process hands its full chunks to a writer thread instead of
// compressing and writing them itself. A handed-over chunk waits in a slot
// of the spool, a file mapped MAP_SHARED: its bytes are in the page cache
// from the moment they are copied there, so they survive the process's
// death (SIGKILL included) just as a chunk already handed to write(2) does.
// When the process ends normally the spool is empty and removed. When it
// was killed, a reader appends the slots' chunks to the trace
// (format/spool_recovery.h) and removes the spool.
//
// Shape of a file:
//
//   SpoolHeader                      64 bytes
//   slot_count slots of slot_bytes   each: SpoolSlotHeader (64 bytes), then
//                                    block_bytes bytes of one whole block:
//                                    a BlockHeader (codec raw) and its chunk
//
// A slot's state goes kFree -> kFilling (a thread copies a chunk in) ->
// kSealed (complete; ticket gives hand-over order) -> kWriting (the writer
// compresses and writes it) -> kFree. Only kSealed and kWriting slots hold
// a whole block; a kWriting block may already be in the trace (the writer
// died between its write and the state change), so a reader skips blocks
// whose (thread_index, sequence) the trace already has.
//
// The process holds flock(LOCK_EX) on the spool for as long as it (or its
// mapping) lives; a reader recovers a spool only when it can take that lock.
//
// Constraints: header-only, no allocation; the preload's hook path includes
// it.
#ifndef HEAPSIGHT_FORMAT_SPOOL_FORMAT_H_
#define HEAPSIGHT_FORMAT_SPOOL_FORMAT_H_

#include <cstddef>
#include <cstdint>

#include "format/trace_format.h"

namespace heapsight::format {

inline constexpr char kSpoolMagic[8] = {'H', 'S', 'S', 'P', 'O', 'O', 'L', '1'};
inline constexpr uint32_t kSpoolVersion = 1;
inline constexpr char kSpoolSuffix[] = ".spool";

struct SpoolHeader {
  char magic[8];         // kSpoolMagic
  uint32_t version;      // kSpoolVersion
  uint32_t slot_count;   // slots after the header
  uint64_t slot_bytes;   // bytes per slot, SpoolSlotHeader included
  uint64_t pid;          // the writing process
  uint8_t reserved[32];  // zero
};
static_assert(sizeof(SpoolHeader) == 64, "SpoolHeader is 64 bytes");

enum SpoolSlotState : uint32_t {
  kSpoolSlotFree = 0,
  kSpoolSlotFilling = 1,
  kSpoolSlotSealed = 2,
  kSpoolSlotWriting = 3,
};

// Written by the process through std::atomic_ref-style atomics on `state`
// (a naturally aligned u32), read by a recovering reader after the process
// is gone.
struct SpoolSlotHeader {
  uint32_t state;        // SpoolSlotState
  uint32_t block_bytes;  // sizeof(BlockHeader) + the chunk's raw size
  uint64_t ticket;       // hand-over order (1, 2, ...): blocks are recovered in it
  uint8_t reserved[48];  // zero
};
static_assert(sizeof(SpoolSlotHeader) == 64, "SpoolSlotHeader is 64 bytes");
static_assert(offsetof(SpoolSlotHeader, block_bytes) == 4);
static_assert(offsetof(SpoolSlotHeader, ticket) == 8);

// Readers reject spools with more slots than this, or slots larger than a
// header plus the largest block (untrusted input).
inline constexpr uint32_t kMaxSpoolSlots = 4096;
inline constexpr uint64_t kMaxSpoolSlotBytes =
    sizeof(SpoolSlotHeader) + sizeof(BlockHeader) + kMaxChunkSize;

}  // namespace heapsight::format

#endif  // HEAPSIGHT_FORMAT_SPOOL_FORMAT_H_
