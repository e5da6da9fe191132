// preload/memo_frame_index.h: which of the unwind cache's memos may hold a
// frame at a given (sp, ip), in one load.
//
// The unwind cache (unwind_cache.h) asks at the entry and at each frame of
// its walk whether one of its 8 memos had a frame with the walk's sp and
// ip. Finding out memo by memo cost python3.11's dict loop about 140
// instructions per event (the entry compare of 8 top frames, and per step
// a search of each memo's frames for the walk's sp), most of it for memos
// that had no such frame. This index answers with a byte: slot
// Slot(sp, ip) holds bit m for every frame (sp, ip) memo m was given.
//
// A set bit is a candidate only: bits are never cleared when a memo's frame
// is overwritten (a frame's slot may also hold other frames of the same
// memo), and slots are shared by hash collisions. The caller compares the
// frame itself, so a stale bit costs a search, never a wrong answer. A
// missing bit would only lose a splice (the walk goes on and learns the
// stack), never give a wrong stack; still, every frame a memo holds has its
// bit, as long as the caller adds each frame it writes (Add) and rebuilds
// from the memos' frames after Clear.
//
// Stale bits pile up; the owner clears the index and adds its memos' frames
// again once NeedsRebuild() (after kRebuildAfter adds since the last
// Clear: with 4,096 slots, at most a quarter of them set by stale frames).
//
// Constraints: plain memory inside the owner (zero-filled = empty), no
// locks, no calls; one thread.
#ifndef HEAPSIGHT_PRELOAD_MEMO_FRAME_INDEX_H_
#define HEAPSIGHT_PRELOAD_MEMO_FRAME_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace heapsight::preload {

class MemoFrameIndex {
 public:
  // One bit per memo.
  using Mask = uint16_t;
  static constexpr uint32_t kMaxMemos = 16;
  static constexpr int kSlotBits = 12;
  static constexpr size_t kSlots = size_t{1} << kSlotBits;
  static constexpr uint32_t kRebuildAfter = kSlots;

  // Bit m set: memo m may have a frame (sp, ip).
  uint32_t Candidates(uintptr_t sp, uintptr_t ip) const { return masks_[Slot(sp, ip)]; }
  // Memo `memo` (< kMaxMemos) now has a frame (sp, ip).
  void Add(uintptr_t sp, uintptr_t ip, uint32_t memo) {
    masks_[Slot(sp, ip)] |= static_cast<Mask>(1u << memo);
    ++adds_;
  }
  bool NeedsRebuild() const { return adds_ > kRebuildAfter; }
  // Empties the index (the caller then adds the frames its memos hold).
  void Clear() {
    std::memset(masks_, 0, sizeof(masks_));
    adds_ = 0;
  }

  // The slot of a frame: the top bits of a multiplicative hash of sp and ip
  // (a stack's frames have distinct sp, 16-aligned at calls; the ip moves
  // the slots of frames at the same depth on different paths).
  static size_t Slot(uintptr_t sp, uintptr_t ip) {
    return static_cast<size_t>(((sp >> 4) ^ (ip << 20) ^ ip) * 0x9e3779b97f4a7c15ULL >>
                               (64 - kSlotBits));
  }

 private:
  Mask masks_[kSlots];
  uint32_t adds_;
};

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_MEMO_FRAME_INDEX_H_
