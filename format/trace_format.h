// format/trace_format.h: the heapsight trace format, version 4 (5: compact
// frees; 6: address frees).
//
// This header is the single definition of the on-disk layout. The preload
// (writer) and the analyzer (reader) both include it; docs/trace-format.md is
// the prose version and every layout fact there is pinned here by a
// static_assert.
//
// Constraints: header-only, no allocation, no libc calls beyond memcpy. Safe
// to include from the preload's hook path and from async-signal context.
//
// Shape of a file:
//
//   FileHeader                         64 bytes, uncompressed
//   BlockHeader + payload              repeated until end of file
//
// A block's payload decompresses to exactly one chunk: a ChunkHeader followed
// by records written by one thread. Chunks of one thread carry consecutive
// sequence numbers; chunks of different threads interleave in the file in the
// order they were flushed, not in time order.
//
// Pairing a free with its allocation never depends on addresses or on the
// order of chunks: every allocation gets a process-unique id
// (thread_index << kAllocIdThreadShift | per-thread counter), the counter is
// implicit (the n-th allocation record of a thread has counter n), and every
// free names the id it releases.
#ifndef HEAPSIGHT_FORMAT_TRACE_FORMAT_H_
#define HEAPSIGHT_FORMAT_TRACE_FORMAT_H_

#include <cstddef>
#include <cstdint>

namespace heapsight::format {

// ---------------------------------------------------------------------------
// File header

inline constexpr char kFileMagic[8] = {'H', 'E', 'A', 'P', 'S', 'G', 'H', 'T'};
inline constexpr uint32_t kFormatVersion = 4;
// Version 5 is version 4 with compact frees (kFileFlagCompactFrees, always
// set in a version-5 file and never in a version-4 one): kFree and kRealloc
// name the freed block by its stack and size instead of its id
// (docs/trace-format.md, "Compact frees"). Exact traces are still written as
// version 4, so every version-4 reader reads them; a compact trace is
// version 5 so that a reader that predates it refuses it by its version
// instead of misreading stacks as id references.
inline constexpr uint32_t kFormatVersionCompact = 5;
// Version 6 is version 4 with address frees (kFileFlagAddressFrees, always
// set in a version-6 file and never in another): a free names the freed
// block by its address and the reader pairs it with the allocation at that
// address (docs/trace-format.md, "Address frees"). The preload then keeps
// no table of live blocks, only a cell per 16-byte granule of heap.
inline constexpr uint32_t kFormatVersionAddress = 6;

// FileHeader.flags bits.
// Stack cut marker: the ip of a root stack node (parent 0) that is not a
// frame but says the stack was cut at HEAPSIGHT_MAX_DEPTH: the frames below
// it (towards the leaf) are the innermost ones, the outer ones were not
// recorded. ip - kStackCutMarker is the number of frames not recorded, 0 if
// unknown. Return addresses of user code are below 2^47 on x86-64, so the
// range (kernel space) is never a frame; a reader that predates the marker
// shows it as one unknown frame (no version change: ips are data).
inline constexpr uint64_t kStackCutMarker = 0xffffff0000000000ull;
inline constexpr bool IsStackCutMarker(uint64_t ip) { return ip >= kStackCutMarker; }
// Frames not recorded, from a cut marker (0: unknown).
inline constexpr uint64_t StackCutMissing(uint64_t ip) { return ip - kStackCutMarker; }

inline constexpr uint32_t kFileFlagSampled = 1u << 0;   // sample_period_bytes valid
inline constexpr uint32_t kFileFlagForkChild = 1u << 1;  // process began as fork child
inline constexpr uint32_t kFileFlagExeced = 1u << 2;     // image came from exec of a traced process
// Timestamps began with CLOCK_MONOTONIC_COARSE (HEAPSIGHT_CLOCK=coarse, or
// auto while the process had one thread): they advance in kernel ticks
// (1-4 ms). With auto, a second thread's first event switches to the precise
// clock, so records of different threads still interleave by real time.
inline constexpr uint32_t kFileFlagCoarseClock = 1u << 3;
// The trace is a window (issue 19): `heapsight attach` started it in a
// process that ran paused (HEAPSIGHT_START=paused), and it ends with a
// kEnd of reason kDetach (or the process's own end). Blocks allocated
// before the attach are not in it and their frees were not recorded;
// start_realtime_ns is the attach time.
inline constexpr uint32_t kFileFlagAttached = 1u << 4;
// Compact frees (HEAPSIGHT_COMPACT_FREES, version 5): a free names the
// freed block's stack and size, not its id; a reader releases the oldest
// live block of that stack and size. Per-stack counts and bytes stay exact;
// lifetimes, temporaries and which block a free released become
// approximate.
inline constexpr uint32_t kFileFlagCompactFrees = 1u << 5;
// Address frees (HEAPSIGHT_PAIRING=address, version 6): kAlloc, kFree and
// kRealloc carry addresses and an order value (AddressOrder below); frees
// carry no id. Never set together with kFileFlagCompactFrees or
// kFileFlagSampled. Allocation ids stay implicit, as in version 4: the
// reader pairs each free with the live allocation at its address.
inline constexpr uint32_t kFileFlagAddressFrees = 1u << 6;

// The version a writer stamps on a file with these flags.
constexpr uint32_t FormatVersionFor(uint32_t flags) {
  if ((flags & kFileFlagAddressFrees) != 0) return kFormatVersionAddress;
  return (flags & kFileFlagCompactFrees) != 0 ? kFormatVersionCompact : kFormatVersion;
}
static_assert(FormatVersionFor(0) == 4 && FormatVersionFor(kFileFlagCompactFrees) == 5 &&
              FormatVersionFor(kFileFlagAddressFrees) == 6);

// Address frees: the order value of an address event (kAlloc, kFree, each
// side of a kRealloc). The preload keeps one cell per 16-byte granule; the
// cell's event count (mod kAddressCountModulo) goes up by one at every
// allocation and every free of the block starting there, so an odd count
// means live. An event whose previous event at the same address was made by
// another thread (a hand-off), or by an unknown one, writes order
// 1 + (count after the event); any other event writes 0 and is ordered
// after its address's previous event by its own thread's record order. So
// a reader that meets the events of one address in another order than
// they happened (two threads, one microsecond) can tell and reorder them.
// The first event ever at an address writes 0 unless it is a hand-off.
inline constexpr uint32_t kAddressCountBits = 4;
inline constexpr uint32_t kAddressCountModulo = 1u << kAddressCountBits;
inline constexpr uint64_t kAddressOrderNone = 0;
constexpr uint64_t AddressOrder(uint32_t count_after) {
  return 1 + (count_after % kAddressCountModulo);
}
static_assert(AddressOrder(0) == 1 && AddressOrder(15) == 16 && AddressOrder(16) == 1);

struct FileHeader {
  char magic[8];                 // kFileMagic
  uint32_t version;              // kFormatVersion
  uint32_t header_size;          // sizeof(FileHeader); readers skip extra bytes
  uint32_t flags;                // kFileFlag*
  uint32_t page_size;            // sysconf(_SC_PAGESIZE) of the traced process
  uint64_t pid;
  uint64_t ppid;
  uint64_t start_realtime_ns;    // CLOCK_REALTIME at start, ns since the epoch
  uint64_t start_monotonic_ns;   // CLOCK_MONOTONIC(_COARSE) at start; timestamps count from here
  uint64_t sample_period_bytes;  // 0 or 1: exact trace; otherwise mean bytes between samples
};
static_assert(sizeof(FileHeader) == 64, "FileHeader is 64 bytes");
static_assert(offsetof(FileHeader, version) == 8);
static_assert(offsetof(FileHeader, pid) == 24);
static_assert(offsetof(FileHeader, start_monotonic_ns) == 48);

// ---------------------------------------------------------------------------
// Blocks

inline constexpr uint32_t kBlockMagic = 0x4B425348;  // "HSBK" little-endian

enum class Codec : uint8_t {
  kRaw = 0,   // payload is the chunk itself
  kZstd = 1,  // payload is one zstd frame that decompresses to the chunk
};

// Readers reject blocks larger than this (untrusted input).
inline constexpr uint32_t kMaxChunkSize = 16u << 20;

// Readers reject a record time delta above this (2^50 us, 35 years): such a
// delta can only be corruption. Writers clamp to 0 rather than emit one.
inline constexpr uint64_t kMaxTimeDeltaUs = uint64_t{1} << 50;

// ---------------------------------------------------------------------------
// Chunks

struct ChunkHeader {
  uint32_t thread_index;  // small process-unique thread number, 0 = writer-less records
  uint32_t tid;           // kernel thread id
  uint64_t sequence;      // 0, 1, 2, ... per thread_index
  uint64_t base_time_us;  // records' time deltas start from here
  uint64_t first_alloc_counter;  // counter of this chunk's first allocation record
};
static_assert(sizeof(ChunkHeader) == 32, "ChunkHeader is 32 bytes");

// After the ChunkHeader: four u32 stream lengths, then the streams back to
// back (version 4). Stream 0, the record stream, holds every record in
// order. A hot record (kAlloc, kFree, kRealloc) starts with one byte that
// is both its tag and its api (HotRecordByte) and keeps its stack and
// id_ref there, one record after another; its time delta, its size and its
// alignment/address fields go to the three columns (nearly constant, or in
// the size's case often random, which would break the rows' repeats).
// Every other record is its tag (below kHotByteBase), a 4-byte padded
// varint body length and the body.
inline constexpr int kColumnCount = 3;
inline constexpr int kTimeColumn = 0;  // dt (hot records); kRealloc also dt2
inline constexpr int kSizeColumn = 1;  // size (kAlloc, kRealloc)
inline constexpr int kMiscColumn = 2;  // alignment, address delta (kAlloc); address delta (kRealloc)
inline constexpr size_t kChunkPreambleBytes = sizeof(ChunkHeader) + 4 * (1 + kColumnCount);
inline constexpr size_t kBodyLengthBytes = 4;
static_assert(kChunkPreambleBytes == 48);

// The first byte of a hot record: kHotByteBase * tag + api, for tag kAlloc,
// kFree or kRealloc (so 64..255); every other record's first byte is its
// tag (1..kTagLimit-1, below 64). One byte for both, because the api
// follows from the kind almost always and two streams of the same
// information cost zstd twice.
inline constexpr uint8_t kHotByteBase = 64;
constexpr uint8_t HotRecordByte(uint8_t tag, uint8_t api) {
  return static_cast<uint8_t>(kHotByteBase * tag + api);
}

// A block header carries a copy of its chunk's header, so a reader can index
// a trace (which thread, which sequence number, from when) by reading 48
// bytes per block, without decompressing anything. Readers check the copy
// against the decoded chunk.
struct BlockHeader {
  uint32_t magic;            // kBlockMagic
  uint32_t payload_size;     // bytes that follow this header
  uint32_t raw_size;         // bytes of the decoded chunk
  uint8_t codec;             // Codec
  uint8_t reserved[3];       // zero
  ChunkHeader chunk;         // equal to the first bytes of the decoded chunk
};
static_assert(sizeof(BlockHeader) == 48, "BlockHeader is 48 bytes");
static_assert(offsetof(BlockHeader, chunk) == 16);

// The block header for a chunk of `raw_size` bytes at `chunk` (which starts
// with its ChunkHeader), stored with `codec` in `payload_size` bytes.
inline BlockHeader MakeBlockHeader(const void* chunk, uint32_t raw_size, Codec codec,
                                   uint32_t payload_size) {
  BlockHeader b{};
  b.magic = kBlockMagic;
  b.payload_size = payload_size;
  b.raw_size = raw_size;
  b.codec = static_cast<uint8_t>(codec);
  if (raw_size >= sizeof(ChunkHeader)) __builtin_memcpy(&b.chunk, chunk, sizeof(ChunkHeader));
  return b;
}

// ---------------------------------------------------------------------------
// Allocation ids

inline constexpr int kAllocIdThreadShift = 40;
inline constexpr uint64_t kAllocCounterMask = (uint64_t{1} << kAllocIdThreadShift) - 1;

constexpr uint64_t MakeAllocId(uint32_t thread_index, uint64_t counter) {
  return (uint64_t{thread_index} << kAllocIdThreadShift) | (counter & kAllocCounterMask);
}
constexpr uint32_t AllocIdThread(uint64_t id) {
  return static_cast<uint32_t>(id >> kAllocIdThreadShift);
}
constexpr uint64_t AllocIdCounter(uint64_t id) { return id & kAllocCounterMask; }

// ---------------------------------------------------------------------------
// Allocation APIs. The values are part of the format: never renumber.

enum class Api : uint8_t {
  kUnknown = 0,
  kMalloc = 1,
  kCalloc = 2,
  kRealloc = 3,
  kReallocArray = 4,
  kPosixMemalign = 5,
  kAlignedAlloc = 6,
  kMemalign = 7,
  kValloc = 8,
  kPvalloc = 9,
  kFree = 10,
  kFreeSized = 11,
  kFreeAlignedSized = 12,
  kNew = 16,                 // operator new(size_t)
  kNewArray = 17,            // operator new[](size_t)
  kNewNothrow = 18,
  kNewArrayNothrow = 19,
  kNewAligned = 20,          // operator new(size_t, align_val_t)
  kNewArrayAligned = 21,
  kNewAlignedNothrow = 22,
  kNewArrayAlignedNothrow = 23,
  kDelete = 32,              // operator delete(void*)
  kDeleteArray = 33,
  kDeleteSized = 34,         // operator delete(void*, size_t)
  kDeleteArraySized = 35,
  kDeleteAligned = 36,       // operator delete(void*, align_val_t)
  kDeleteArrayAligned = 37,
  kDeleteSizedAligned = 38,  // operator delete(void*, size_t, align_val_t)
  kDeleteArraySizedAligned = 39,
  kDeleteNothrow = 40,       // operator delete(void*, nothrow_t const&)
  kDeleteArrayNothrow = 41,
  kDeleteAlignedNothrow = 42,
  kDeleteArrayAlignedNothrow = 43,
  kApiLimit = 44,
};

// Which family an API belongs to, for mismatch detection: a block must be
// released by the family that allocated it.
enum class ApiFamily : uint8_t { kNone, kMalloc, kNew, kNewArray };

constexpr ApiFamily FamilyOf(Api api) {
  switch (api) {
    case Api::kMalloc: case Api::kCalloc: case Api::kRealloc: case Api::kReallocArray:
    case Api::kPosixMemalign: case Api::kAlignedAlloc: case Api::kMemalign:
    case Api::kValloc: case Api::kPvalloc: case Api::kFree: case Api::kFreeSized:
    case Api::kFreeAlignedSized:
      return ApiFamily::kMalloc;
    case Api::kNew: case Api::kNewNothrow: case Api::kNewAligned: case Api::kNewAlignedNothrow:
    case Api::kDelete: case Api::kDeleteSized: case Api::kDeleteAligned:
    case Api::kDeleteSizedAligned: case Api::kDeleteNothrow: case Api::kDeleteAlignedNothrow:
      return ApiFamily::kNew;
    case Api::kNewArray: case Api::kNewArrayNothrow: case Api::kNewArrayAligned:
    case Api::kNewArrayAlignedNothrow: case Api::kDeleteArray: case Api::kDeleteArraySized:
    case Api::kDeleteArrayAligned: case Api::kDeleteArraySizedAligned:
    case Api::kDeleteArrayNothrow: case Api::kDeleteArrayAlignedNothrow:
      return ApiFamily::kNewArray;
    default:
      return ApiFamily::kNone;
  }
}

// Whether releasing a block of family `alloc` through family `release` is a
// mismatched free (new/delete[], malloc/delete, ...): both known, and
// different.
constexpr bool FamiliesMismatch(ApiFamily alloc, ApiFamily release) {
  return alloc != release && alloc != ApiFamily::kNone && release != ApiFamily::kNone;
}

// Stable display name ("malloc", "operator new[](unsigned long)", ...), or
// nullptr for values outside the enum.
const char* ApiName(Api api);

// ---------------------------------------------------------------------------
// Records. Each record starts with one tag byte. Integers are LEB128 varints
// ("uv"), signed ones zigzag varints ("sv"); "dt" is the uv time delta in
// microseconds from the previous record of the chunk (the first record counts
// from ChunkHeader.base_time_us). "str" is uv length + bytes.

enum class RecordTag : uint8_t {
  // Hot byte (tag and api), uv stack in the record stream; uv dt in the time
  // column; uv size in the size column; uv alignment (0 if none), sv address
  // delta (from the
  // previous kAlloc/kRealloc address of the chunk, starting at 0; all zero
  // when addresses are not recorded) in the misc column.
  // Allocates the next id of this thread.
  kAlloc = 1,
  // Hot byte, id_ref of the freed block (see IdRef at the end) in the record
  // stream; uv dt in the time column.
  // Compact frees (version 5): uv stack of the freed block in the record
  // stream instead of the id_ref, uv size of the freed block in the size
  // column (see CompactFree* below).
  kFree = 2,
  // Hot byte, old id_ref, uv stack in the record stream; uv dt, uv dt2
  // (alloc time minus free time) in the time column; uv size in the size
  // column; sv address delta in the misc column. Frees old id, allocates the
  // next id.
  // Compact frees (version 5): uv old stack, uv stack in the record stream
  // (the old block's stack replaces the id_ref); the old block's uv size
  // precedes the new size in the size column.
  kRealloc = 3,
  // uv dt, u8 api, uv size, uv stack, uv alignment. The call returned NULL
  // (or threw std::bad_alloc); nothing was allocated, no id is consumed.
  kAllocFailed = 4,
  // 5 is retired: kBadFree, written by version-1 preloads before kFreeError
  // existed. No reader of version 3 accepts such a trace; never reuse 5.
  // sv node delta, uv parent delta, sv ip delta (docs/trace-format.md, tag 6).
  // Defines stack node `node` (ids start at 1;
  // 0 is the empty stack). A stack is its leaf node; walking parents gives
  // the frames innermost first. A node may be referenced before the chunk
  // that defines it is read. A root node whose ip is a cut marker
  // (IsStackCutMarker) is not a frame: the stack had more frames than were
  // recorded (see kStackCutMarker).
  kStackNode = 6,
  // uv dt, uv module_id, uv load_address, str path, str build_id (raw bytes),
  // uv segment_count, then per segment: uv vaddr, uv memsz, uv file_offset, u8 flags (PF_*).
  kModule = 7,
  // uv dt, uv module_id. The module was unmapped (dlclose).
  kModuleUnload = 8,
  // uv dt, uv rss_bytes. Resident set size sampled from /proc/self/statm.
  kRss = 9,
  // uv dt, str executable path, uv argc, argc x str argv, uv parent_pid,
  // str parent_trace_path ("" unless fork child or exec'd image).
  kProcess = 10,
  // uv dt, uv tid, uv thread_index_of_creator (0 if unknown).
  kThreadStart = 11,
  // uv dt, uv child_pid. Written by the parent after fork() returned.
  kFork = 12,
  // uv dt, str path. Written just before execve(); a failed exec is
  // followed by kExecFailed.
  kExec = 13,
  kExecFailed = 14,  // uv dt
  // uv dt, uv id, u8 api, uv size, uv stack. A block inherited from the
  // parent across fork(), live when this process began.
  kInherited = 15,
  // uv dt, str name. A user marker (heapsight.h).
  kMarker = 16,
  // uv dt, u8 reason (EndReason), sv exit_status. The trace is complete up
  // to here. Frees from late static destructors may follow.
  kEnd = 17,
  // uv dt, uv dropped_events. Events lost (e.g. a write failed).
  kLost = 18,
  // --- Added with leak classification (issue 5), in version 1; part of every
  // version since (docs/trace-format.md section 11). ---
  // uv dt, uv scan (1, 2, ... per process), u8 reason (ScanReason),
  // uv duration_us, uv threads_stopped, uv threads_missed, uv root_bytes,
  // uv blocks, then for each LeakClass 1..4 in order: uv blocks, uv bytes.
  // A reachability scan of the live heap ran; the kBlockClasses records of
  // the same scan number follow on the same thread.
  kLeakScan = 19,
  // uv scan, u8 class (LeakClass), uv count, count x sv id delta (each id
  // minus the previous id of the record, the first from 0). No time.
  // The class each listed live block had in that scan.
  kBlockClasses = 20,
  // uv dt, u8 api (of the bad call), u8 error (FreeError), u8 action
  // (FreeAction), uv address, uv stack (of the bad call), uv alloc_id (the
  // block's id: mismatched free, or a double free of a block still in the
  // recently-freed ring; 0 if unknown). A free error with both stacks (the
  // allocation's through alloc_id). A mismatched free is followed (or
  // preceded) by the ordinary kFree/kRealloc that releases the block.
  kFreeError = 21,
  kTagLimit = 22,
};
static_assert(static_cast<uint8_t>(RecordTag::kTagLimit) <= kHotByteBase,
              "plain tags stay below the hot record bytes");
static_assert(static_cast<uint8_t>(Api::kApiLimit) <= kHotByteBase,
              "an api fits in a hot record byte");
static_assert(HotRecordByte(3, 63) == 255 && HotRecordByte(1, 0) == kHotByteBase);

// Leak classes, memcheck's definitions (see docs/trace-format.md).
enum class LeakClass : uint8_t {
  kUnclassified = 0,  // never written: a block no scan listed (none ran, or it came later)
  kDefinite = 1,   // no pointer to the block at all
  kIndirect = 2,   // reachable only from lost blocks
  kPossible = 3,   // reachable, but only through interior pointers
  kReachable = 4,  // a pointer to its start from a root (or reachable block)
};
inline constexpr int kLeakClassCount = 4;

enum class ScanReason : uint8_t {
  kExit = 1,     // exit()/return from main (after atexit handlers, static destructors)
  kExitNow = 2,  // _exit()/_Exit()/quick_exit()
  kRequest = 3,  // in-program API or signal
};

// What the preload did with a bad free (HEAPSIGHT_ON_BAD_FREE).
enum class FreeAction : uint8_t {
  kSkipped = 1,  // not passed to the allocator (default for invalid/double free)
  kPassed = 2,   // passed to the real allocator (always for a mismatched free)
  kAborted = 3,  // the preload aborted the process after recording it
};

enum class EndReason : uint8_t {
  kExit = 1,         // exit() or return from main
  kUnderscoreExit = 2,  // _exit() / _Exit()
  kExec = 3,         // the image was replaced by a successful exec
  kDisabled = 4,     // the preload stepped aside (error); trace incomplete
  kDetach = 5,       // `heapsight detach` ended a window (kFileFlagAttached); the process runs on
  kRotated = 6,      // the record process closed this segment; the run continues in the next segment
};

enum class FreeError : uint8_t {
  kInvalidFree = 1,  // pointer never returned by an allocation function
  kDoubleFree = 2,   // pointer was already freed (and not reallocated since)
  kMismatchedFree = 3,  // released by another family (malloc/new/new[]) than allocated it
};

// IdRef: kFree and kRealloc name the freed id compactly, in one uv whose low
// bits give its form (docs/trace-format.md section 5):
//   bit 0 clear: distance << 1, this thread's block with counter
//     next_counter - distance;
//   low bits 11: zigzag(delta) << 2 | 3, this thread's block with counter
//     last_freed + delta (last_freed: the counter of the chunk's previous
//     id_ref of these two forms, starting at first_alloc_counter);
//   low bits 01: thread_index << 2 | 1, then a second uv holding the
//     counter: any thread's block, in full.
// ChunkEncoder::PutIdRef writes them; ChunkDecoder::DecodeIdRef reads them.

// Compact frees (kFileFlagCompactFrees, version 5). The rows of the hot
// records, field by field (record stream | time column | size column | misc
// column), pinned here for the encoder and the decoder:
//   kAlloc    stack              | dt      | size           | alignment, address delta
//   kFree     stack              | dt      | size           | -
//   kRealloc  old stack, stack   | dt, dt2 | old size, size | address delta
// kAlloc is as in version 4. In a compact trace kBlockClasses appends, after
// its ids, the stack and size of each listed block (count x (uv stack, uv
// size)), so the reader can give each class to one of its own live blocks
// of that stack and size (additive: a body longer than a reader knows is
// skipped). kFreeError keeps the exact alloc_id (its allocation record is
// found by id).
inline constexpr int kCompactFreeRowFields = 1;     // stack
inline constexpr int kCompactFreeSizeFields = 1;    // size
inline constexpr int kCompactReallocRowFields = 2;  // old stack, stack
inline constexpr int kCompactReallocSizeFields = 2; // old size, size
static_assert(kCompactReallocRowFields == kCompactFreeRowFields + 1 &&
              kCompactReallocSizeFields == kCompactFreeSizeFields + 1,
              "a compact realloc is a compact free's fields followed by an allocation's");

// Address frees (kFileFlagAddressFrees, version 6). The rows of the hot
// records (record stream | time column | size column | misc column):
//   kAlloc    stack        | dt      | size | alignment, address delta, order
//   kFree     -            | dt      | -    | address delta, order
//   kRealloc  stack        | dt, dt2 | size | old address delta, old order,
//                                             address delta, order
// "address delta" is an sv: the address minus the previous address of the
// chunk's hot records (every kAlloc, kFree, and a kRealloc's old address
// then its new one), the first from 0. "order" is a uv, AddressOrder's
// value or kAddressOrderNone. A kFree releases the live block at its
// address; a kRealloc releases the block at its old address and allocates
// the next id at its new one (the two may be equal). A realloc that failed
// leaves its block live and writes no kRealloc. Other records:
// - kBlockClasses lists the blocks' addresses where version 4 lists ids
//   (same encoding: count x sv delta, ascending).
// - kInherited (a fork child's live blocks at its start) carries the
//   block's address in the id field, the api of its family (kMalloc, kNew,
//   kNewArray; kUnknown if not known), the block's usable size
//   (malloc_usable_size) and stack 0: the stack is in the parent's trace.
//   The reader gives each such block an id of its own.
// - kFreeError's alloc_id is always 0; the reader takes the block from its
//   pairing (the live block at the address) where there is one.
inline constexpr int kAddressAllocMiscFields = 3;    // alignment, address delta, order
inline constexpr int kAddressFreeMiscFields = 2;     // address delta, order
inline constexpr int kAddressReallocMiscFields = 4;  // old address delta, old order, delta, order
static_assert(kAddressReallocMiscFields == 2 * kAddressFreeMiscFields,
              "an address realloc's misc fields are a free's followed by the new block's");

// Names of the markers (kMarker) the preload writes itself; a program's own
// markers (heapsight.h) may have any name.
// HEAPSIGHT_HEAP_LIMIT denied an allocation (written once, at the first).
inline constexpr char kHeapLimitMarker[] = "heap-limit";
// heapsight_write_profile(): "profile:<n>:<path>", n = 1, 2, ... per process,
// the profile written to <path> at this point.
inline constexpr char kProfileMarkerPrefix[] = "profile:";

}  // namespace heapsight::format

#endif  // HEAPSIGHT_FORMAT_TRACE_FORMAT_H_
