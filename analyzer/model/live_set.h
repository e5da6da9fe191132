// analyzer/model/live_set.h: the set of live allocations during analysis, keyed by
// allocation id. The analysis hot loop does one insert per allocation and
// one erase per free, so this is a purpose-built open-addressing table:
// linear probing, backward-shift deletion (no tombstones), a multiplicative
// hash of the id, and power-of-two capacity kept between 1/8 and 3/4 full.
// Memory is proportional to the live allocations, never to the trace: a
// slot is 16 bytes (the id, and the size and site packed in one word), so
// about 21 to 43 bytes a live block at the table's load factors. A block
// whose size or site does not fit the packed word (a size of 2^40 bytes or
// more, a site number of 2^24 or more) is kept in a side map instead.
#ifndef HEAPSIGHT_ANALYZER_LIVE_SET_H_
#define HEAPSIGHT_ANALYZER_LIVE_SET_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace heapsight::analyzer {

struct LiveBlock {
  uint64_t size;
  uint32_t site;
};

class LiveSet {
 public:
  LiveSet() { Rehash(1024); }

  size_t size() const { return size_; }

  // Inserts `id`; returns false (changing nothing) if it is already live.
  bool Insert(uint64_t id, const LiveBlock& block) {
    if (id == kEmpty) {
      if (has_empty_key_) return false;
      has_empty_key_ = true;
      empty_key_block_ = block;
      ++size_;
      return true;
    }
    if ((size_ + 1) * 4 > slots_.size() * 3) Rehash(slots_.size() * 2);
    size_t i = Home(id);
    for (;;) {
      Slot& s = slots_[i];
      if (s.key == kEmpty) {
        s.key = id;
        s.packed = Pack(block);
        if (s.packed == kOverflow) overflow_[id] = block;
        ++size_;
        return true;
      }
      if (s.key == id) return false;
      i = (i + 1) & mask_;
    }
  }

  // Starts loading the slot where a lookup of `id` begins (the analysis
  // prefetches the ids of events a few ahead of the one it processes).
  void Prefetch(uint64_t id) const { __builtin_prefetch(&slots_[Home(id)]); }

  // Stores the block of `id` in *out; false if it is not live.
  bool Find(uint64_t id, LiveBlock* out) const {
    if (id == kEmpty) {
      if (has_empty_key_) *out = empty_key_block_;
      return has_empty_key_;
    }
    for (size_t i = Home(id);; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.key == id) {
        *out = Unpack(id, s.packed);
        return true;
      }
      if (s.key == kEmpty) return false;
    }
  }

  // Calls fn(id, block) for every live block.
  template <typename Fn>
  void ForEach(Fn fn) const {
    if (has_empty_key_) fn(kEmpty, empty_key_block_);
    for (const Slot& s : slots_) {
      if (s.key != kEmpty) fn(s.key, Unpack(s.key, s.packed));
    }
  }

  // Removes `id` and stores its block in *out; false if it is not live.
  bool Erase(uint64_t id, LiveBlock* out) {
    if (id == kEmpty) {
      if (!has_empty_key_) return false;
      has_empty_key_ = false;
      *out = empty_key_block_;
      --size_;
      return true;
    }
    size_t i = Home(id);
    for (;;) {
      Slot& s = slots_[i];
      if (s.key == kEmpty) return false;
      if (s.key == id) break;
      i = (i + 1) & mask_;
    }
    *out = Unpack(id, slots_[i].packed);
    if (slots_[i].packed == kOverflow) overflow_.erase(id);
    // Backward-shift: move later members of the cluster into the hole.
    size_t hole = i;
    size_t j = i;
    for (;;) {
      j = (j + 1) & mask_;
      if (slots_[j].key == kEmpty) break;
      size_t home = Home(slots_[j].key);
      // Move j into the hole if its home is not in (hole, j] cyclically.
      bool between = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (!between) {
        slots_[hole] = slots_[j];
        hole = j;
      }
    }
    slots_[hole].key = kEmpty;
    --size_;
    if (slots_.size() > 1024 && size_ * 8 < slots_.size()) Rehash(slots_.size() / 2);
    return true;
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  static constexpr int kSiteBits = 24;
  static constexpr uint64_t kOverflow = ~uint64_t{0};  // the block is in overflow_
  struct Slot {
    uint64_t key = kEmpty;
    uint64_t packed = 0;  // size << kSiteBits | site, or kOverflow
  };
  static_assert(sizeof(Slot) == 16);

  static uint64_t Pack(const LiveBlock& b) {
    if (b.size >= (uint64_t{1} << (64 - kSiteBits)) - 1 || b.site >= (1u << kSiteBits)) {
      return kOverflow;
    }
    return b.size << kSiteBits | b.site;
  }
  LiveBlock Unpack(uint64_t id, uint64_t packed) const {
    if (packed == kOverflow) return overflow_.at(id);
    return {packed >> kSiteBits, static_cast<uint32_t>(packed & ((1u << kSiteBits) - 1))};
  }

  size_t Home(uint64_t id) const {
    return static_cast<size_t>((id * 0x9E3779B97F4A7C15ull) >> shift_);
  }

  void Rehash(size_t capacity) {
    std::vector<Slot> old;
    old.swap(slots_);
    slots_.assign(capacity, Slot{});
    mask_ = capacity - 1;
    shift_ = 64;
    for (size_t c = capacity; c > 1; c >>= 1) --shift_;
    size_t keep = has_empty_key_ ? 1 : 0;
    size_ = keep;
    for (const Slot& s : old) {
      if (s.key == kEmpty) continue;
      size_t i = Home(s.key);
      while (slots_[i].key != kEmpty) i = (i + 1) & mask_;
      slots_[i] = s;
      ++size_;
    }
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
  int shift_ = 64;
  size_t size_ = 0;
  bool has_empty_key_ = false;
  LiveBlock empty_key_block_{};
  absl::flat_hash_map<uint64_t, LiveBlock> overflow_;  // blocks that do not pack
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_LIVE_SET_H_
