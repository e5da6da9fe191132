// preload/stack_cache.h: a small per-thread cache of recently seen stacks.
//
// Maps a whole stack (its return addresses, compared exactly) to its leaf
// node in the process-wide StackTable. It sits in front of
// StackTable::Intern: a hit costs a cheap fold of the frames plus one
// memcmp, instead of the table's two 64-bit hashes, and it verifies every
// frame, so a hit can never be a hash collision. A miss falls through to
// the StackTable, whose answer is then cached. Entries are only ever
// (stack -> existing node id), and node ids are process-wide and survive
// fork, so an entry never goes stale: a cache may move to another thread
// with its recycled ThreadState, and a fork child keeps it.
//
// Two-way set associative: a stack lives in one of the two slots of its
// set; a new stack replaces the slot of its set that was not used last (so a
// miss costs one copy of the new stack's frames, nothing more). Stacks of
// any depth up to kMaxDepth (every stack the recorder keeps) are cached:
// the first kInlineFrames frames of an entry sit next to its header, the
// rest in a separate area whose pages are touched only by deep stacks, so a
// thread with shallow stacks keeps a small cache in memory.
//
// A miss costs more than going to the StackTable directly (the fold, the
// compares, the copy: about 20 ns for a 17-frame stack), so a thread whose
// stacks do not repeat within the cache's reach (thousands of call sites in
// rotation) would pay for it on every event. The cache therefore counts its
// hits: when fewer than two lookups in three hit, it stands aside (Active()
// false) for the next kBypassEvents stacks, then tries again.
//
// Constraints: owned by one thread (not thread-safe: never used through the
// shared orphan state); no malloc (the caller maps it with PageAlloc, zero
// filled = empty); no locks, no syscalls; async-signal-safe.
#ifndef HEAPSIGHT_PRELOAD_STACK_CACHE_H_
#define HEAPSIGHT_PRELOAD_STACK_CACHE_H_

#include <cstddef>
#include <cstdint>

#include "format/options.h"
#include "preload/written_pages.h"

namespace heapsight::preload {

class StackCache {
 public:
  static constexpr size_t kMaxDepth = static_cast<size_t>(format::kMaxStackDepth) + 1;  // + a cut marker
  static constexpr size_t kInlineFrames = 30;
  static constexpr size_t kSets = 64;
  static constexpr uint32_t kWindow = 1024;        // lookups per hit-rate check
  static constexpr uint32_t kBypassEvents = 16384;  // stacks skipped after a poor window

  // False while the cache stands aside after a poor hit rate; then neither
  // Find nor Insert should be called for this stack.
  bool Active() {
    if (__builtin_expect(bypass_ == 0, 1)) return true;
    --bypass_;
    return false;
  }

  // The leaf node of `ips[0..depth)`, or 0 if not cached.
  uint64_t Find(const uintptr_t* ips, size_t depth);
  // Remembers `leaf` (non-zero) for the stack. `ips`/`depth` as in Find.
  void Insert(const uintptr_t* ips, size_t depth, uint64_t leaf);
  // Writes the counters' page, which Active and Find read first
  // (written_pages.h). Call once the cache is mapped (zero-filled).
  void WriteFirstPages();

 private:
  struct Entry {
    uint64_t leaf;  // 0 = empty
    uint64_t depth;
    uintptr_t ips[kInlineFrames];  // frames [0, kInlineFrames)
  };
  static size_t SetOf(const uintptr_t* ips, size_t depth);
  bool Matches(size_t slot, const uintptr_t* ips, size_t depth) const;

  Entry entries_[kSets * 2];
  // Frames [kInlineFrames, depth) of slot i's stack.
  uintptr_t deep_[kSets * 2][kMaxDepth - kInlineFrames];
  uint8_t last_used_[kSets];  // per set: the slot (0 or 1) hit or filled last
  uint32_t lookups_;          // in the current window
  uint32_t hits_;
  uint32_t bypass_;           // stacks left to skip
  WrittenPages<sizeof(Entry) * kSets * 2> entry_pages_;  // entries_ written before read
};

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_STACK_CACHE_H_
