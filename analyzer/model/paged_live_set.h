// analyzer/model/paged_live_set.h: the analysis's live blocks, stored by
// allocation id without storing the id.
//
// An allocation id is (thread index << 40 | per-thread counter), and a
// thread's counters rise one by one in the order of its records
// (format/trace_format.h), which the merge keeps. So the blocks a thread
// allocated one after the other have consecutive ids, and a run of 256
// consecutive counters can be stored as a *page*: a 256-bit presence bitmap
// and 256 packed values (size << 24 | site, LiveSet's packing), 8 bytes a
// block and no key. A program that keeps most of what it allocates (python
// building a dict) costs about 8-11 bytes a live block here instead of
// LiveSet's 21-43 (16-byte slots at its load factors, both tables at once
// while it grows).
//
// Pages are made only at a thread's frontier (a counter past every page
// that thread had). When the frontier moves on, the page it leaves is
// *closed*: a closed page holding fewer than kDemoteBelow blocks moves them
// into a LiveSet (the fallback, keyed by id) and is released, so a page
// never costs more than about 33 bytes a live block however sparse the
// survivors are, and a page with nothing live is released at once. Blocks
// whose counter has no page (below the frontier: a demoted page's, or an
// out-of-order insert) live in the fallback. For every page number, the
// blocks are either all in its page (while it exists) or all in the
// fallback, so each lookup asks one place.
//
// Memory: about 2.1 KB a page held (every live block's page, plus one open
// page per thread), the fallback's 16-byte slots, and the page index (a
// hash map of page number to page, 16-32 bytes a page). Not thread-safe.
#ifndef HEAPSIGHT_ANALYZER_PAGED_LIVE_SET_H_
#define HEAPSIGHT_ANALYZER_PAGED_LIVE_SET_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "analyzer/model/live_set.h"

namespace heapsight::analyzer {

class PagedLiveSet {
 public:
  static constexpr int kPageBits = 8;
  static constexpr uint64_t kPageSlots = uint64_t{1} << kPageBits;
  // A closed page with fewer live blocks than this moves them to the
  // fallback (2.1 KB / 64 = 33 bytes a block at worst).
  static constexpr uint32_t kDemoteBelow = 64;

  PagedLiveSet() = default;
  PagedLiveSet(const PagedLiveSet&) = delete;
  PagedLiveSet& operator=(const PagedLiveSet&) = delete;

  size_t size() const { return paged_ + fallback_.size(); }
  // Pages held now, and blocks in the fallback (for tests and benches).
  size_t page_count() const { return pages_.size(); }
  size_t fallback_size() const { return fallback_.size(); }

  // Inserts `id`; returns false (changing nothing) if it is already live.
  bool Insert(uint64_t id, const LiveBlock& block) {
    uint64_t key = id >> kPageBits;
    Page* page = PageOf(key);
    if (page == nullptr) {
      uint32_t thread = static_cast<uint32_t>(key >> 32);
      uint32_t number = static_cast<uint32_t>(key);
      auto [it, first] = frontier_.try_emplace(thread, number);
      if (!first && number <= it->second) return fallback_.Insert(id, block);
      if (!first) Close(uint64_t{thread} << 32 | it->second);
      it->second = number;
      page = NewPage(key);
    }
    uint32_t slot = static_cast<uint32_t>(id & (kPageSlots - 1));
    uint64_t& word = page->present[slot >> 6];
    uint64_t bit = uint64_t{1} << (slot & 63);
    if ((word & bit) != 0) return false;
    word |= bit;
    page->values[slot] = Pack(id, block);
    ++page->count;
    ++paged_;
    return true;
  }

  // Starts loading the page index entry of `id` (the analysis prefetches
  // the ids of events a few ahead of the one it processes).
  void Prefetch(uint64_t id) const { pages_.prefetch(id >> kPageBits); }

  // Stores the block of `id` in *out; false if it is not live.
  bool Find(uint64_t id, LiveBlock* out) const {
    const Page* page = PageOf(id >> kPageBits);
    if (page == nullptr) return fallback_.Find(id, out);
    uint32_t slot = static_cast<uint32_t>(id & (kPageSlots - 1));
    if ((page->present[slot >> 6] & (uint64_t{1} << (slot & 63))) == 0) return false;
    *out = Unpack(id, page->values[slot]);
    return true;
  }

  // Removes `id` and stores its block in *out; false if it is not live.
  bool Erase(uint64_t id, LiveBlock* out) {
    uint64_t key = id >> kPageBits;
    Page* page = PageOf(key);
    if (page == nullptr) return fallback_.Erase(id, out);
    uint32_t slot = static_cast<uint32_t>(id & (kPageSlots - 1));
    uint64_t& word = page->present[slot >> 6];
    uint64_t bit = uint64_t{1} << (slot & 63);
    if ((word & bit) == 0) return false;
    word &= ~bit;
    uint64_t packed = page->values[slot];
    *out = Unpack(id, packed);
    if (packed == kOverflow) overflow_.erase(id);
    --page->count;
    --paged_;
    if (page->closed && page->count < kDemoteBelow) Demote(key);
    return true;
  }

  // Calls fn(id, block) for every live block (pages in no set order, then
  // the fallback's).
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (const auto& [key, page] : pages_) {
      for (uint32_t w = 0; w < kPageSlots / 64; ++w) {
        for (uint64_t bits = page->present[w]; bits != 0; bits &= bits - 1) {
          uint32_t slot = w * 64 + static_cast<uint32_t>(std::countr_zero(bits));
          uint64_t id = key << kPageBits | slot;
          fn(id, Unpack(id, page->values[slot]));
        }
      }
    }
    fallback_.ForEach(fn);
  }

 private:
  static constexpr int kSiteBits = 24;
  static constexpr uint64_t kOverflow = ~uint64_t{0};  // the block is in overflow_

  struct Page {
    uint32_t count = 0;     // bits set in `present`
    bool closed = false;    // the thread's frontier moved past this page
    uint64_t present[kPageSlots / 64] = {};
    uint64_t values[kPageSlots];  // packed blocks; only present slots are defined
  };

  uint64_t Pack(uint64_t id, const LiveBlock& b) {
    if (b.size >= (uint64_t{1} << (64 - kSiteBits)) - 1 || b.site >= (1u << kSiteBits)) {
      overflow_[id] = b;
      return kOverflow;
    }
    return b.size << kSiteBits | b.site;
  }
  LiveBlock Unpack(uint64_t id, uint64_t packed) const {
    if (packed == kOverflow) return overflow_.at(id);
    return {packed >> kSiteBits, static_cast<uint32_t>(packed & ((1u << kSiteBits) - 1))};
  }

  // The page of `key`, or null; the last page found is tried first (a
  // thread's allocations and its temporaries' frees hit the same page).
  Page* PageOf(uint64_t key) const {
    if (key == last_key_ && last_page_ != nullptr) return last_page_;
    auto it = pages_.find(key);
    if (it == pages_.end()) return nullptr;
    last_key_ = key;
    last_page_ = it->second.get();
    return last_page_;
  }

  Page* NewPage(uint64_t key) {
    auto page = std::make_unique<Page>();
    Page* raw = page.get();
    pages_.emplace(key, std::move(page));
    last_key_ = key;
    last_page_ = raw;
    return raw;
  }

  // The frontier left the page `key`: release it or move its few blocks to
  // the fallback, or mark it so that its frees do once it is sparse.
  void Close(uint64_t key) {
    Page* page = PageOf(key);
    if (page == nullptr) return;
    page->closed = true;
    if (page->count < kDemoteBelow) Demote(key);
  }

  void Demote(uint64_t key) {
    auto it = pages_.find(key);
    const Page& page = *it->second;
    for (uint32_t w = 0; w < kPageSlots / 64; ++w) {
      for (uint64_t bits = page.present[w]; bits != 0; bits &= bits - 1) {
        uint32_t slot = w * 64 + static_cast<uint32_t>(std::countr_zero(bits));
        uint64_t id = key << kPageBits | slot;
        uint64_t packed = page.values[slot];
        if (packed == kOverflow) {
          fallback_.Insert(id, overflow_.at(id));
          overflow_.erase(id);
        } else {
          fallback_.Insert(id, Unpack(id, packed));
        }
      }
    }
    paged_ -= page.count;
    if (last_page_ == it->second.get()) last_page_ = nullptr;
    pages_.erase(it);
  }

  absl::flat_hash_map<uint64_t, std::unique_ptr<Page>> pages_;  // id >> kPageBits -> page
  absl::flat_hash_map<uint32_t, uint32_t> frontier_;  // thread -> its newest page's number
  LiveSet fallback_;
  absl::flat_hash_map<uint64_t, LiveBlock> overflow_;  // paged blocks that do not pack
  size_t paged_ = 0;
  mutable uint64_t last_key_ = ~uint64_t{0};
  mutable Page* last_page_ = nullptr;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_PAGED_LIVE_SET_H_
