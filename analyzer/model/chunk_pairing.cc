// analyzer/model/chunk_pairing.cc: see chunk_pairing.h.
#include "analyzer/model/chunk_pairing.h"

namespace heapsight::analyzer {

using format::RecordTag;

void ChunkPairer::Touch(uint64_t offset) {
  // Slots past touched_ are kNone already where the scratch reaches; grown
  // by at least half (a chunk's ids run on one by one).
  size_t want = static_cast<size_t>(offset) + 1;
  if (scratch_->size() < want) {
    size_t grown = std::max(want, scratch_->size() + scratch_->size() / 2);
    scratch_->resize(static_cast<size_t>(std::min<uint64_t>(grown, span_)), kNone);
  }
  touched_ = std::max(want, std::min(scratch_->size(), touched_ + touched_ / 2 + 1024));
}

void ChunkPairer::Add(Event* events, uint32_t index) {
  Event& e = events[index];
  switch (e.tag) {
    case RecordTag::kRealloc:
      // The old block is released first, as the analysis does.
      StartAt(e.id);
      if (const Event* a = Pair(events, e.old_id); a != nullptr) {
        e.paired |= kPairedOldBlock;
        e.old_id = index - static_cast<uint32_t>(a - events);
      }
      Allocated(index, e.id);
      break;
    case RecordTag::kAlloc:
      Allocated(index, e.id);
      break;
    case RecordTag::kFree:
      if (e.code != 0) break;  // compact: names no block
      if (const Event* allocation = Pair(events, e.id); allocation != nullptr) {
        e.paired = kPairedBlock;
        e.size = allocation->size;
        e.stack = allocation->stack;
        e.value = static_cast<uint64_t>(allocation->api);
      }
      break;
    case RecordTag::kFreeError:  // looks its block up in the live set
    case RecordTag::kInherited:  // puts blocks in it
    case RecordTag::kExec:       // ends the process image
    case RecordTag::kExecFailed:
    case RecordTag::kEnd:
      Barrier(index);
      break;
    default:  // stack nodes, modules, markers, scans, RSS, lost counts...
      break;
  }
}

size_t PairInChunk(Event* events, size_t count, std::vector<uint32_t>* scratch) {
  // Event indices and the slot states share 32 bits.
  if (count == 0 || count >= (UINT32_MAX - 1) / 2) return 0;
  // A thread's allocation ids only grow, so the chunk's first allocation
  // has its lowest id, and one thread's counter has no gaps but for blocks
  // the preload did not record: ids up to 2 * count + 64 past the first
  // get a slot, others (a sampled trace's far ids, a corrupt trace) do not
  // pair and stay with the live set.
  ChunkPairer pairer(scratch, 2 * static_cast<uint64_t>(count) + 64);
  for (size_t i = 0; i < count; ++i) pairer.Add(events, static_cast<uint32_t>(i));
  return pairer.Finish();
}

}  // namespace heapsight::analyzer
