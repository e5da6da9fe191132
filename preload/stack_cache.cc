// preload/stack_cache.cc: see stack_cache.h.
//
// Constraints: no malloc, no locks, no syscalls; async-signal-safe.
#include "preload/stack_cache.h"

#include <cstring>

namespace heapsight::preload {

size_t StackCache::SetOf(const uintptr_t* ips, size_t depth) {
  // Only picks the set (the match is exact), so a fold of rotate+xor, two
  // cycles a frame, is enough; the multiply spreads it over the set bits.
  uint64_t h = depth;
  for (size_t i = 0; i < depth; ++i) h = ((h << 7) | (h >> 57)) ^ ips[i];
  h *= 0x9e3779b97f4a7c15ULL;
  return static_cast<size_t>(h >> 58) & (kSets - 1);
}

bool StackCache::Matches(size_t slot, const uintptr_t* ips, size_t depth) const {
  const Entry& e = entries_[slot];
  if (e.leaf == 0 || e.depth != depth) return false;
  size_t inline_depth = depth < kInlineFrames ? depth : kInlineFrames;
  if (std::memcmp(e.ips, ips, inline_depth * sizeof(uintptr_t)) != 0) return false;
  return depth == inline_depth ||
         std::memcmp(deep_[slot], ips + kInlineFrames,
                     (depth - kInlineFrames) * sizeof(uintptr_t)) == 0;
}

uint64_t StackCache::Find(const uintptr_t* ips, size_t depth) {
  if (depth == 0 || depth > kMaxDepth) return 0;
  if (++lookups_ == kWindow) {
    // Fewer than two hits in three lookups: the misses cost more than the
    // hits save, so stand aside for a while.
    if (hits_ * 3 < kWindow * 2) bypass_ = kBypassEvents;
    lookups_ = 0;
    hits_ = 0;
  }
  size_t set = SetOf(ips, depth);
  // A set's two entries lie in one page (written_pages.h: not read first).
  entry_pages_.BeforeRead(entries_, &entries_[set * 2]);
  entry_pages_.BeforeRead(entries_, &entries_[set * 2 + 1]);
  for (size_t way = 0; way < 2; ++way) {
    if (Matches(set * 2 + way, ips, depth)) {
      last_used_[set] = static_cast<uint8_t>(way);
      ++hits_;
      return entries_[set * 2 + way].leaf;
    }
  }
  return 0;
}

void StackCache::WriteFirstPages() {
  WriteTouchRange(last_used_, sizeof(*this) - (reinterpret_cast<char*>(last_used_) -
                                               reinterpret_cast<char*>(this)));
}

void StackCache::Insert(const uintptr_t* ips, size_t depth, uint64_t leaf) {
  if (leaf == 0 || depth == 0 || depth > kMaxDepth) return;
  size_t set = SetOf(ips, depth);
  // An empty slot first (leaf 0), else the one not used last.
  size_t way = entries_[set * 2].leaf == 0 ? 0 : 1 - last_used_[set];
  Entry& e = entries_[set * 2 + way];
  e.leaf = leaf;
  e.depth = depth;
  size_t inline_depth = depth < kInlineFrames ? depth : kInlineFrames;
  std::memcpy(e.ips, ips, inline_depth * sizeof(uintptr_t));
  if (depth > inline_depth) {
    std::memcpy(deep_[set * 2 + way], ips + kInlineFrames,
                (depth - kInlineFrames) * sizeof(uintptr_t));
  }
  last_used_[set] = static_cast<uint8_t>(way);
}

}  // namespace heapsight::preload
