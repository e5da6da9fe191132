// analyzer/model/chunk_events.h: one chunk's records decoded into a compact
// array of Events, the unit the decode workers hand to the merge.
//
// The records of a chunk do not depend on any other chunk, so a worker can
// decompress and decode a whole chunk ahead of the merge (ChunkPrefetcher);
// the merge then only compares times and hands out Events (StreamMerger), and
// the analysis reads the Events (StreamMerger::NextRun, trace_model). The decoding
// itself is format::ChunkDecoder's: this file only stores its output.
//
// Memory: 64 bytes per record of the chunk (a 128 KiB chunk of hot records
// holds about 25,000: 1.6 MB), plus a self-owned copy of each rare record
// with strings or lists. The compressed and raw chunk bytes are not kept.
#ifndef HEAPSIGHT_ANALYZER_CHUNK_EVENTS_H_
#define HEAPSIGHT_ANALYZER_CHUNK_EVENTS_H_

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "format/chunk_decoder.h"

namespace heapsight::analyzer {

// One record in 64 bytes (one cache line; events cross between threads by
// the million). Fields by tag:
//   kAlloc, kInherited: time_us, api, size, stack, id
//   kFree: time_us, api, id
//   kRealloc: time_us (free), api, old_id, value = time of the new block,
//             size, stack, id (new)
//   kStackNode: value = node, old_id = parent node, size = ip
//   kAllocFailed: api, size, stack; kModule, kModuleUnload: value = module
//             id; kRss, kLost, kFork, kThreadStart: value = rss bytes, lost
//             events, child pid, tid; kFreeError: code = FreeError;
//             kEnd: code = EndReason
// Compact frees (format::kFileFlagCompactFrees): a kFree has code
// kCompactFree (or kCompactReallocFree for a realloc's old block), id 0, and
// the freed block's stack and size; a kRealloc becomes two Events, that
// kFree (at the free time) and a kAlloc of the new block (api realloc, at
// the allocation time), because an Event has no room for both blocks.
// Address frees (format::kFileFlagAddressFrees, version 6), as decoded,
// before the pairing stage (address_pairing.h) gives them ids: kAlloc,
// kFree and kRealloc have their address in `address` (for kRealloc the
// new block's) and its order value in `code`; a kFree has id 0; a
// kRealloc has the old block's address in old_id and its order value in
// `paired`. kInherited has the block's address in id, kBlockClasses lists
// addresses and kFreeError's id is 0 (trace_format.h). The pairing stage
// turns them into the events above.
// `full` is set for the rare records with strings, lists or other fields
// (kModule, kProcess, kMarker, kExec, kEnd, kLeakScan, kBlockClasses,
// kFreeError) and points at a complete copy (a FullRecord's) whose views
// point into storage owned by that copy; null otherwise. `stream` is the
// merger's stream number of the chunk's thread, written by the decoder
// (DecodeChunk), so the merge never writes to an event.
struct Event {
  format::RecordTag tag;
  format::Api api;
  uint8_t code;
  // Exact traces: kPairedBlock and kPairedOldBlock bits (chunk_pairing.h),
  // 0 otherwise.
  uint8_t paired;
  uint32_t stream;
  uint64_t time_us;
  uint64_t id;
  uint64_t old_id;
  uint64_t size;
  uint64_t stack;
  uint64_t value;
  union {
    const format::Record* full;
    // Address frees (version 6), before pairing (address_pairing.h): the
    // address of a kAlloc, kFree, or a kRealloc's new block. The pairer
    // writes the event out with `full` null, as the events above.
    uint64_t address;
  };
};
static_assert(sizeof(Event) == 64, "an Event is one cache line");
static_assert(std::is_trivially_copyable_v<Event>, "EventArray moves Events as bytes");

// Event::paired bits (chunk_pairing.h), set on exact traces where a block's
// allocation and release are in one chunk with no barrier between them:
// - kPairedBlock on the allocation (kAlloc, or a kRealloc's new block) and
//   on the kFree that releases it; that kFree also carries the block's size,
//   stack and allocation api (in `value`, which a kFree does not use).
// - kPairedOldBlock on a kRealloc whose old block was allocated in the
//   chunk: its `old_id` is then the distance back, in events of the chunk,
//   to that allocation's Event (which has the block's id, size, stack and
//   api); the allocation has kPairedBlock.
inline constexpr uint8_t kPairedBlock = 1;
inline constexpr uint8_t kPairedOldBlock = 2;

// Whether an event asks the analysis's live set to release a block: an
// exact kFree (code 0) not paired in its chunk (the block is `id`), or a
// kRealloc whose old block is not paired (`old_id`). DecodedChunk::released
// lists these blocks.
inline bool IsRelease(const Event& e) {
  if (e.tag == format::RecordTag::kFree) return e.code == 0 && e.paired == 0;
  return e.tag == format::RecordTag::kRealloc && (e.paired & kPairedOldBlock) == 0;
}

// Power-of-two size buckets (trace_model.h's SizeBucket): 0 for size 0,
// b >= 1 for sizes in [2^(b-1), 2^b).
inline constexpr int kEventSizeBuckets = 65;
[[gnu::always_inline]] inline int EventSizeBucket(uint64_t size) {
  return size == 0 ? 0 : 64 - std::countl_zero(size);
}

// Event::code of a compact kFree: a free, or a realloc's old block.
inline constexpr uint8_t kCompactFree = 1;
inline constexpr uint8_t kCompactReallocFree = 2;

// A self-owned copy of a record with strings or lists: `record`'s views
// point into the strings here, so it outlives the chunk buffer.
struct FullRecord {
  format::Record record;
  std::string text;
  std::string text2;
  std::vector<std::string> argv;
};

// True for the tags whose Event carries a FullRecord.
bool NeedsFullRecord(format::RecordTag tag);

// Fills `e` from `r` (full left null).
void ToEvent(const format::Record& r, uint32_t stream, Event* e);

// Fills `e` from `r` of an address-frees trace as DecodeChunk does (its
// address, order values; full left null).
void ToAddressEvent(const format::Record& r, uint32_t stream, Event* e);

// Copies `r` into a self-owned FullRecord.
std::unique_ptr<FullRecord> CopyRecord(const format::Record& r);

// A growable array of Events that, unlike std::vector, lets the decoder
// write past its size into reserved room through a plain pointer (no
// capacity check per event) and then set the size. Events are trivially
// copyable: the array is malloc'd and grows by realloc; reserved room is
// not initialized (nor its pages touched).
class EventArray {
 public:
  EventArray() = default;
  ~EventArray() { std::free(data_); }
  EventArray(EventArray&& o) noexcept : data_(o.data_), size_(o.size_), capacity_(o.capacity_) {
    o.data_ = nullptr;
    o.size_ = o.capacity_ = 0;
  }
  EventArray& operator=(EventArray&& o) noexcept {
    if (this != &o) {
      std::free(data_);
      data_ = o.data_;
      size_ = o.size_;
      capacity_ = o.capacity_;
      o.data_ = nullptr;
      o.size_ = o.capacity_ = 0;
    }
    return *this;
  }
  EventArray(const EventArray&) = delete;
  EventArray& operator=(const EventArray&) = delete;

  Event* data() { return data_; }
  const Event* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  Event& operator[](size_t i) { return data_[i]; }
  const Event& operator[](size_t i) const { return data_[i]; }
  Event* begin() { return data_; }
  Event* end() { return data_ + size_; }
  const Event* begin() const { return data_; }
  const Event* end() const { return data_ + size_; }

  // Room for at least `n` events past size(); returns the first.
  Event* Reserve(size_t n) {
    if (capacity_ - size_ < n) Grow(n);
    return data_ + size_;
  }
  // The first `n` events were written (n <= capacity()).
  void set_size(size_t n) { size_ = n; }
  // One more event at the end, uninitialized.
  Event& Append() {
    if (size_ == capacity_) Grow(1);
    return data_[size_++];
  }
  void clear() { size_ = 0; }
  // Frees the memory.
  void Release() {
    std::free(data_);
    data_ = nullptr;
    size_ = capacity_ = 0;
  }

 private:
  // To at least size_ + n, and at least half again the capacity.
  void Grow(size_t n);

  Event* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

// A decoded chunk: every record the decoder yielded, in chunk order, then
// the decoder's error if it stopped early ("" when the chunk was valid to
// its end).
struct DecodedChunk {
  EventArray events;
  // The FullRecords of the events whose `full` is set, in event order.
  std::vector<std::unique_ptr<FullRecord>> full;
  std::string error;
  // Scratch of PairInChunk (chunk_pairing.h), kept across chunks.
  std::vector<uint32_t> pairing;
  // The block of each event that IsRelease, in event order, then
  // kReleasedPad zeros: the analysis loads the live set's memory for
  // these ids a few releases ahead of each (trace_model.cc) by reading
  // this list, instead of looking at every event ahead of the current one
  // (python: 23 M events, a third of them such frees; the per-event look
  // was about 20 instructions an event on the analysing thread).
  std::vector<uint64_t> released;
  static constexpr size_t kReleasedPad = 32;
  // The allocations' sizes (of kAlloc events and kRealloc's new blocks),
  // counted by EventSizeBucket: the analysis adds them up per chunk
  // instead of per event (ProcessProfile::size_histogram).
  std::array<uint64_t, kEventSizeBuckets> allocation_sizes{};
  // The events' times never decrease. The decoder only adds deltas, so
  // this holds for every chunk but one whose clock wraps past 2^64 (a
  // corrupt trace); the merge binary-searches ordered chunks only.
  bool ordered = true;

  void Clear() {
    events.clear();
    released.clear();
    allocation_sizes.fill(0);
    full.clear();
    error.clear();
    ordered = true;
  }
  // Releases all memory (clear() keeps the capacity).
  void Release() {
    events.Release();
    std::vector<std::unique_ptr<FullRecord>>().swap(full);
    std::vector<uint32_t>().swap(pairing);
    std::vector<uint64_t>().swap(released);
    error.clear();
  }
};

// Decodes the raw chunk `data` (a ChunkHeader and its records) into `out`,
// replacing its contents. A malformed chunk yields the records before the
// fault and the decoder's error. `compact_frees`: the file's frees are
// compact (format::HasCompactFrees). `stream`: the merger's stream number
// of the chunk's thread, stored in every event. `address_frees`: the
// file's frees name addresses (format::HasAddressFrees): its events are
// as decoded (above), for the pairing stage; `released` holds only the
// padding.
void DecodeChunk(const uint8_t* data, size_t size, DecodedChunk* out,
                 bool compact_frees = false, uint32_t stream = 0, bool address_frees = false);

// An address-frees chunk as DecodeChunk decodes it, for re-encoding it
// (pairing_converter.h): besides, a kAlloc's alignment in `value`, and a
// FullRecord (`full`) for every record but the hot ones and stack nodes.
void DecodeAddressChunkToConvert(const uint8_t* data, size_t size, DecodedChunk* out,
                                 uint32_t stream);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_CHUNK_EVENTS_H_
