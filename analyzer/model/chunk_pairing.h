// analyzer/model/chunk_pairing.h: pairs each allocation with the free that
// releases it when both are in one chunk, so the analysis never puts such a
// block in its live set.
//
// A chunk holds one thread's records in order, and the thread's allocation
// ids are its own counter (format::MakeAllocId), so the allocations of a
// chunk have ids in a short contiguous range: a block's allocation is found
// from its free by an array index, with no hashing. The pass over the chunk
// runs on the decode workers, beside the analysing thread; on that thread an
// insert and a lookup in the live set (a page per block, most of them cache
// misses) were the dearest part of a short-lived block (python's trace: 16 M
// events, most of them blocks freed within a few hundred events).
//
// A pair is only made where the result cannot differ from the live set's:
//  - the trace's frees are exact (compact frees name no block);
//  - its id appears once as an allocation in the chunk (a corrupt trace that
//    repeats an id keeps the live set's duplicate counting);
//  - no barrier lies between the two: a free error (the analysis looks its
//    block up in the live set), inherited blocks (put in it), an exec or
//    the end. Other records (stack nodes, modules, markers, leak scans, RSS
//    samples) read nothing of the live set: the analysis takes its
//    snapshots from per-site counts, and a leak scan's classes only apply
//    to blocks still live at the end.
// Every trace writer keeps one kFree per block (the preload's table removes
// a block once; a second free is a kFreeError), so no other thread can
// release a paired block in between.
//
// How a pair is marked: kPairedBlock and kPairedOldBlock (chunk_events.h).
// The analysis may always ignore the marks and use the live set as before
// (AnalyzeOptions::pair_in_chunk): a paired kFree keeps its id, and a
// paired realloc's old id is its allocation event's.
#ifndef HEAPSIGHT_ANALYZER_MODEL_CHUNK_PAIRING_H_
#define HEAPSIGHT_ANALYZER_MODEL_CHUNK_PAIRING_H_

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "analyzer/model/chunk_events.h"

namespace heapsight::analyzer {

// Pairs a chunk's events one at a time, in chunk order, as they are
// written: DecodeChunk runs it inside its decoding loop (one pass over the
// events instead of a second one over 1.6 MB of them; python: PairInChunk
// was 0.57 G of the decode workers' 3.75 G instructions), PairInChunk over
// an array. The first allocation with a nonzero id fixes the range: ids
// from it up to `span` past it get a slot (PairInChunk: 2 * events + 64).
//
// `scratch` is reused between chunks and holds only kNone between uses:
// the pairer grows it to the ids it meets (not to the span: a decoder's
// span bound is the chunk's record bound, 4 times its events) and Finish
// resets just the slots it touched, so no chunk pays for clearing a
// span's worth of slots.
class ChunkPairer {
 public:
  static constexpr uint32_t kNoPair = UINT32_MAX;

  ChunkPairer(std::vector<uint32_t>* scratch, uint64_t span) : scratch_(scratch), span_(span) {}
  ~ChunkPairer() { Finish(); }
  ChunkPairer(const ChunkPairer&) = delete;
  ChunkPairer& operator=(const ChunkPairer&) = delete;

  // A free, or a realloc's old block, releases `id`: the index of the event
  // that allocated it if the two pair (that event is then taken: a second
  // release of `id` does not pair), else kNoPair.
  [[gnu::always_inline]] uint32_t Released(uint64_t id) {
    uint32_t* slot = Slot(id);
    if (slot == nullptr) return kNoPair;
    const uint32_t allocation = *slot;
    *slot = kGone;
    return allocation < kGone && allocation >= barrier_ ? allocation : kNoPair;
  }
  // A free, or a realloc's old block, releases `id`: the allocation's event
  // if the two pair, marked kPairedBlock and counted, else null. The
  // releasing event's own mark (and what it carries) is the caller's.
  [[gnu::always_inline]] Event* Pair(Event* events, uint64_t id) {
    const uint32_t a = Released(id);
    if (a == kNoPair) return nullptr;
    events[a].paired |= kPairedBlock;
    ++pairs_;
    return &events[a];
  }
  // Event `index` allocates `id` (a kAlloc, or a kRealloc's new block after
  // its Released old one).
  [[gnu::always_inline]] void Allocated(uint32_t index, uint64_t id) {
    StartAt(id);
    if (uint32_t* slot = Slot(id); slot != nullptr) *slot = *slot == kNone ? index : kGone;
  }
  // A realloc's new block `id`, before its old block is Released: the
  // range starts at the chunk's first allocating event, whichever its kind.
  [[gnu::always_inline]] void StartAt(uint64_t id) {
    if (!started_ && id != 0) {
      started_ = true;
      lo_ = id;
    }
  }
  // Event `index` is a barrier (chunk_pairing.h's last rule).
  void Barrier(uint32_t index) { barrier_ = index + 1; }

  // Looks at events[index] (written already) and marks it and its
  // allocation's event as PairInChunk does, whatever its tag.
  void Add(Event* events, uint32_t index);

  // Pairs made so far.
  size_t pairs() const { return pairs_; }

  // Resets the slots touched (the destructor does too); returns pairs().
  size_t Finish() {
    if (touched_ != 0) {
      std::fill(scratch_->begin(), scratch_->begin() + static_cast<ptrdiff_t>(touched_), kNone);
      touched_ = 0;
    }
    return pairs_;
  }

 private:
  static constexpr uint32_t kNone = UINT32_MAX;  // no allocation seen
  static constexpr uint32_t kGone = kNone - 1;   // released, repeated or not pairable

  // The slot of `id`, or null outside the range (before the first
  // allocation, every id).
  [[gnu::always_inline]] uint32_t* Slot(uint64_t id) {
    const uint64_t offset = id - lo_;
    if (!started_ || offset >= span_) return nullptr;
    if (offset >= touched_) [[unlikely]] Touch(offset);
    return scratch_->data() + offset;
  }
  // Slots up to `offset` may be written (growing the scratch).
  [[gnu::noinline]] void Touch(uint64_t offset);

  std::vector<uint32_t>* scratch_;
  const uint64_t span_;
  uint64_t lo_ = 0;
  bool started_ = false;
  uint32_t barrier_ = 0;  // allocations before this do not pair
  size_t touched_ = 0;    // slots [0, touched_) may hold other than kNone
  size_t pairs_ = 0;
};

// Marks the allocations, frees and reallocs of `events[0, count)` that pair
// as above (chunk_events.h's kPairedBlock, kPairedOldBlock), with a span of
// 2 * count + 64 ids. `scratch` is reused between calls (ChunkPairer's).
// Returns the number of pairs made.
size_t PairInChunk(Event* events, size_t count, std::vector<uint32_t>* scratch);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_CHUNK_PAIRING_H_
