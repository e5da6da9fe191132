// analyzer/model/chunk_pairing.cc: see chunk_pairing.h.
#include "analyzer/model/chunk_pairing.h"

#include <limits>

namespace heapsight::analyzer {
namespace {

using format::RecordTag;

// Scratch slot states besides an allocation's event index.
constexpr uint32_t kNone = std::numeric_limits<uint32_t>::max();  // no allocation seen
constexpr uint32_t kGone = kNone - 1;  // released, repeated or not pairable

// The id a record allocates (kAlloc, or a kRealloc's new block), else 0.
uint64_t AllocatedId(const Event& e) {
  return e.tag == RecordTag::kAlloc || e.tag == RecordTag::kRealloc ? e.id : 0;
}

}  // namespace

size_t PairInChunk(Event* events, size_t count, std::vector<uint32_t>* scratch) {
  if (count == 0 || count >= kGone / 2) return 0;
  // A thread's allocation ids only grow, so the chunk's first allocation
  // has its lowest id, and one thread's counter has no gaps but for blocks
  // the preload did not record: ids up to 2 * count + 64 past the first
  // get a slot, others (a sampled trace's far ids, a corrupt trace) do not
  // pair and stay with the live set.
  size_t i = 0;
  while (i < count && AllocatedId(events[i]) == 0) ++i;
  if (i == count) return 0;
  const uint64_t lo = events[i].id;
  const uint64_t span = 2 * static_cast<uint64_t>(count) + 64;
  scratch->assign(static_cast<size_t>(span), kNone);
  uint32_t* slots = scratch->data();
  // Allocations before `barrier` do not pair (chunk_pairing.h's last rule).
  size_t barrier = 0;
  size_t pairs = 0;
  for (; i < count; ++i) {
    Event& e = events[i];
    switch (e.tag) {
      case RecordTag::kRealloc:
        // The old block is released first, as the analysis does.
        if (e.old_id - lo < span) {
          uint32_t& slot = slots[e.old_id - lo];
          if (slot < kGone && slot >= barrier) {
            events[slot].paired |= kPairedBlock;
            e.paired |= kPairedOldBlock;
            e.old_id = i - slot;
            ++pairs;
          }
          slot = kGone;
        }
        [[fallthrough]];
      case RecordTag::kAlloc:
        if (e.id - lo < span) {
          uint32_t& slot = slots[e.id - lo];
          slot = slot == kNone ? static_cast<uint32_t>(i) : kGone;
        }
        break;
      case RecordTag::kFree:
        if (e.code == 0 && e.id - lo < span) {
          uint32_t& slot = slots[e.id - lo];
          if (slot < kGone && slot >= barrier) {
            Event& a = events[slot];
            a.paired |= kPairedBlock;
            e.paired = kPairedBlock;
            e.size = a.size;
            e.stack = a.stack;
            e.value = static_cast<uint64_t>(a.api);
            ++pairs;
          }
          slot = kGone;
        }
        break;
      case RecordTag::kFreeError:  // looks its block up in the live set
      case RecordTag::kInherited:  // puts blocks in it
      case RecordTag::kExec:       // ends the process image
      case RecordTag::kExecFailed:
      case RecordTag::kEnd:
        barrier = i + 1;
        break;
      default:  // stack nodes, modules, markers, scans, RSS, lost counts...
        break;
    }
  }
  return pairs;
}

}  // namespace heapsight::analyzer
