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
// The page index is a table per thread, by page number, in chunks of
// kChunkPages page pointers (kept while one of their pages is held): a
// lookup is three dependent loads and no hashing (an abseil map of page
// number to page cost python's frees a probe each: a quarter of the live
// set's instructions). Pages do not move once made. A thread index at or
// above kDenseThreads or a page number at or above kDenseNumbers (counters
// of 2^36 and more: hand-made or corrupt traces) is kept in a hash map
// instead (`far_`), so any id works.
//
// Memory: about 2.1 KB a page held (every live block's page, plus one open
// page per thread), the fallback's 16-byte slots, and the page index: 4 KB a
// chunk that holds a page, and 8 bytes per kChunkPages page numbers of a
// thread's span (a thread's table covers its counters up to its frontier:
// 1 G allocations, 32 KB). Not thread-safe.
#ifndef HEAPSIGHT_ANALYZER_PAGED_LIVE_SET_H_
#define HEAPSIGHT_ANALYZER_PAGED_LIVE_SET_H_

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "analyzer/model/live_set.h"

namespace heapsight::analyzer {

class PagedLiveSet {
 public:
  static constexpr int kPageBits = 8;
  static constexpr uint64_t kPageSlots = uint64_t{1} << kPageBits;
  // Distinct values a palette page holds (4-bit indices).
  static constexpr uint32_t kPaletteSize = 16;
  // A closed page with fewer live blocks than this keeps only their values
  // (compact: 8 bytes a block, found by rank in the bitmap): below 32 for a
  // palette page (256 bytes), below 128 for a dense one (2 KB; a compact
  // page's insert and erase move up to 1 KB).
  static constexpr uint32_t kCompactPaletteBelow = 32;
  static constexpr uint32_t kCompactDenseBelow = 128;
  // A closed page with fewer live blocks than this moves them to the
  // fallback (a page's own cost, ~100 bytes, would be over 25 a block).
  static constexpr uint32_t kFallbackBelow = 4;

  PagedLiveSet() = default;
  PagedLiveSet(const PagedLiveSet&) = delete;
  PagedLiveSet& operator=(const PagedLiveSet&) = delete;

  size_t size() const { return paged_ + fallback_.size(); }
  // Pages held now (every mode), compact and palette ones, and blocks in the
  // fallback (for tests and benches).
  size_t page_count() const { return page_count_; }
  size_t compact_page_count() const { return mode_pages_[kCompact]; }
  size_t palette_page_count() const { return mode_pages_[kPalette]; }
  size_t fallback_size() const { return fallback_.size(); }
  // Bytes held by the pages' values (not the index or the fallback).
  size_t value_bytes() const { return value_bytes_; }

  // Inserts `id`; returns false (changing nothing) if it is already live.
  // The common case (the thread's newest page, a palette with the value or
  // room for it, or dense) is inlined into the caller: the analysis calls
  // this for every allocation, and the call's prologue and epilogue were a
  // fifth of its instructions.
  [[gnu::always_inline]] bool Insert(uint64_t id, const LiveBlock& block) {
    uint64_t key = id >> kPageBits;
    if (key == insert_key_ && block.size < kMaxPackedSize && block.site < kMaxPackedSite) {
      Page* page = insert_page_;
      uint32_t slot = static_cast<uint32_t>(id & (kPageSlots - 1));
      uint64_t& word = page->present[slot >> 6];
      uint64_t bit = uint64_t{1} << (slot & 63);
      uint64_t packed = block.size << kSiteBits | block.site;
      if ((word & bit) == 0 && page->mode != kCompact &&
          (page->mode == kDense || PaletteStore(page, slot, packed))) {
        if (page->mode == kDense) page->values[slot] = packed;
        word |= bit;
        ++page->count;
        ++paged_;
        return true;
      }
    }
    return InsertSlow(id, block);
  }

 private:
  [[gnu::noinline]] bool InsertSlow(uint64_t id, const LiveBlock& block) {
    uint64_t key = id >> kPageBits;
    // A thread allocates into its newest page: tried first, since the
    // frees in between moved PageOf's cache elsewhere.
    Page* page = key == insert_key_ ? insert_page_ : PageOf(key);
    if (page == nullptr) {
      uint32_t thread = static_cast<uint32_t>(key >> 32);
      uint32_t number = static_cast<uint32_t>(key);
      auto [it, first] = frontier_.try_emplace(thread, number);
      if (!first && number <= it->second) return fallback_.Insert(id, block);
      uint32_t old = it->second;
      it->second = number;
      if (!first) Close(uint64_t{thread} << 32 | old);
      page = NewPage(key);
    }
    insert_key_ = key;
    insert_page_ = page;
    uint32_t slot = static_cast<uint32_t>(id & (kPageSlots - 1));
    uint64_t& word = page->present[slot >> 6];
    uint64_t bit = uint64_t{1} << (slot & 63);
    if ((word & bit) != 0) return false;
    uint64_t packed = Pack(id, block);
    switch (page->mode) {
      case kPalette:
        if (PaletteStore(page, slot, packed)) break;
        SetMode(page, kDense);
        [[fallthrough]];
      case kDense:
        page->values[slot] = packed;
        break;
      case kCompact:
        if (page->count == page->capacity && page->capacity * 2 >= kPageSlots) {
          SetMode(page, kDense);
          page->values[slot] = packed;
          break;
        }
        if (page->count == page->capacity) Resize(page, page->capacity * 2);
        uint32_t rank = Rank(*page, slot);
        uint64_t* v = page->values.get();
        std::memmove(v + rank + 1, v + rank, (page->count - rank) * sizeof(uint64_t));
        v[rank] = packed;
        break;
    }
    word |= bit;
    ++page->count;
    ++paged_;
    return true;
  }

 public:
  // The first stage, a few events before Prefetch(id): starts loading the
  // page index's entry for `id` (the page pointer Prefetch reads, in a
  // 4 KB chunk of them), without waiting for anything not in cache;
  // nothing when the previous call asked for the same page.
  [[gnu::always_inline]] void PrefetchSlot(uint64_t id) const {
    uint64_t key = id >> kPageBits;
    if (key == last_slot_prefetch_) return;
    last_slot_prefetch_ = key;
    uint64_t thread = key >> 32;
    uint32_t number = static_cast<uint32_t>(key);
    // dense_ only has threads below kDenseThreads.
    if (thread >= dense_.size() || number >= kDenseNumbers) return;
    const std::vector<std::unique_ptr<Chunk>>& chunks = dense_[thread];
    uint32_t c = number >> kChunkBits;
    if (c >= chunks.size()) return;
    if (const Chunk* chunk = chunks[c].get(); chunk != nullptr) {
      __builtin_prefetch(&chunk->pages[number & (kChunkPages - 1)]);
    }
  }

  // Starts loading the page header of `id` (the analysis prefetches the
  // ids of events a few ahead of the one it processes); nothing when the
  // previous call asked for the same page (consecutive allocations do).
  [[gnu::always_inline]] void Prefetch(uint64_t id) const {
    uint64_t key = id >> kPageBits;
    if (key == last_prefetch_) return;
    last_prefetch_ = key;
    if (const Page* page = Lookup(key); page != nullptr) {
      // A Page (56 bytes, malloc's 16-byte alignment) often straddles two
      // lines: its mode and its values pointer, which PrefetchValue reads,
      // are at either end.
      __builtin_prefetch(page);
      __builtin_prefetch(reinterpret_cast<const char*>(page) + sizeof(Page) - 1);
    }
  }

  // The second stage, a few events after Prefetch(id): finds the page
  // (its header is loaded by now) and starts loading the words an
  // Erase or Find of `id` reads in the page's values, which a free of an
  // old block otherwise waits for twice (a palette page's 4-bit index,
  // then the palette entry it names: python's frees spent 80% of Erase
  // there).
  [[gnu::always_inline]] void PrefetchValue(uint64_t id) const {
    uint64_t key = id >> kPageBits;
    const Page* page = key == last_key_ ? last_page_ : Lookup(key);
    if (page == nullptr) {
      fallback_.Prefetch(id);
      return;
    }
    uint32_t slot = static_cast<uint32_t>(id & (kPageSlots - 1));
    const uint64_t* v = page->values.get();
    switch (page->mode) {
      case kPalette:
        __builtin_prefetch(Nibbles(*page) + (slot >> 1));
        __builtin_prefetch(v);
        __builtin_prefetch(v + kPaletteSize - 1);
        break;
      case kDense:
        __builtin_prefetch(v + slot);
        break;
      case kCompact:
        // The rank is about the slot's share of the present ones.
        __builtin_prefetch(v + (static_cast<uint64_t>(slot) * page->count >> kPageBits));
        break;
    }
  }

  // Stores the block of `id` in *out; false if it is not live.
  bool Find(uint64_t id, LiveBlock* out) const {
    const Page* page = PageOf(id >> kPageBits);
    if (page == nullptr) return fallback_.Find(id, out);
    uint32_t slot = static_cast<uint32_t>(id & (kPageSlots - 1));
    if ((page->present[slot >> 6] & (uint64_t{1} << (slot & 63))) == 0) return false;
    *out = Unpack(id, Value(*page, slot));
    return true;
  }

  // Removes `id` and stores its block in *out; false if it is not live.
  // The common case (a palette or dense page, a value that packs, no
  // shrinking) is inlined into the caller, as Insert's.
  [[gnu::always_inline]] bool Erase(uint64_t id, LiveBlock* out) {
    uint64_t key = id >> kPageBits;
    Page* page = PageOf(key);
    if (page != nullptr && page->mode != kCompact) {
      uint32_t slot = static_cast<uint32_t>(id & (kPageSlots - 1));
      uint64_t& word = page->present[slot >> 6];
      uint64_t bit = uint64_t{1} << (slot & 63);
      if ((word & bit) == 0) return false;
      uint64_t packed = Value(*page, slot);
      if (packed != kOverflow && page->count > page->shrink_below) {
        word &= ~bit;
        --page->count;
        --paged_;
        *out = {packed >> kSiteBits, static_cast<uint32_t>(packed & (kMaxPackedSite - 1))};
        return true;
      }
    }
    return EraseSlow(id, out);
  }

 private:
  [[gnu::noinline]] bool EraseSlow(uint64_t id, LiveBlock* out) {
    uint64_t key = id >> kPageBits;
    Page* page = PageOf(key);
    if (page == nullptr) return fallback_.Erase(id, out);
    uint32_t slot = static_cast<uint32_t>(id & (kPageSlots - 1));
    uint64_t& word = page->present[slot >> 6];
    uint64_t bit = uint64_t{1} << (slot & 63);
    if ((word & bit) == 0) return false;
    uint64_t packed;
    if (page->mode != kCompact) {
      packed = Value(*page, slot);
    } else {
      uint32_t rank = Rank(*page, slot);
      uint64_t* v = page->values.get();
      packed = v[rank];
      std::memmove(v + rank, v + rank + 1, (page->count - rank - 1) * sizeof(uint64_t));
    }
    word &= ~bit;
    *out = Unpack(id, packed);
    if (packed == kOverflow) overflow_.erase(id);
    --page->count;
    --paged_;
    if (page->closed && ShouldShrink(*page)) Shrink(key, page);
    return true;
  }

 public:
  // Calls fn(id, block) for every live block (pages in no set order, then
  // the fallback's).
  template <typename Fn>
  void ForEach(Fn fn) const {
    auto page_values = [&](uint64_t key, const Page& page) {
      ForEachValue(page, [&](uint32_t slot, uint64_t packed) {
        uint64_t id = key << kPageBits | slot;
        fn(id, Unpack(id, packed));
      });
    };
    for (uint64_t thread = 0; thread < dense_.size(); ++thread) {
      const std::vector<std::unique_ptr<Chunk>>& chunks = dense_[thread];
      for (uint64_t c = 0; c < chunks.size(); ++c) {
        if (chunks[c] == nullptr) continue;
        for (uint64_t i = 0; i < kChunkPages; ++i) {
          if (const Page* page = chunks[c]->pages[i].get(); page != nullptr) {
            page_values(thread << 32 | c << kChunkBits | i, *page);
          }
        }
      }
    }
    // Not a structured binding: clang 14 (the fuzzing build) cannot capture
    // one in a lambda.
    for (const auto& entry : far_) page_values(entry.first, *entry.second);
    fallback_.ForEach(fn);
  }

  ~PagedLiveSet() = default;

 private:
  static constexpr int kSiteBits = 24;
  static constexpr uint64_t kOverflow = ~uint64_t{0};  // the block is in overflow_

  // How a page keeps its values (`values`, `capacity` 64-bit words):
  //  kPalette: words [0, 16) the distinct values seen, words [16, 32) one
  //    4-bit index a slot (256 bytes a page; new pages start so: a
  //    program's consecutive blocks come from few sites and sizes);
  //  kDense: values[slot] (2 KB), once a 17th distinct value arrives;
  //  kCompact: the present slots' values in slot order, values[rank of the
  //    slot among the present ones] (closed pages with few blocks).
  enum Mode : uint8_t { kPalette = 0, kDense = 1, kCompact = 2 };
  struct Page {
    uint32_t count = 0;     // bits set in `present`
    uint16_t capacity = 0;  // 64-bit words in `values`
    uint8_t palette = 0;    // kPalette: values used in the palette
    Mode mode = kPalette;
    bool closed = false;    // the thread's frontier moved past this page
    // kPalette, kDense: ShouldShrink once `count` falls below this (0
    // while the page is open). Erase's inline path checks just this.
    uint16_t shrink_below = 0;
    uint64_t present[kPageSlots / 64] = {};
    std::unique_ptr<uint64_t[]> values;
  };
  static constexpr uint16_t kPaletteWords = kPaletteSize + kPageSlots / 16;

  static uint8_t* Nibbles(const Page& page) {
    return reinterpret_cast<uint8_t*>(page.values.get() + kPaletteSize);
  }

  // The value of a present slot (kPalette or kDense; any mode for kCompact).
  [[gnu::always_inline]] static uint64_t Value(const Page& page, uint32_t slot) {
    switch (page.mode) {
      case kPalette:
        return page.values[(Nibbles(page)[slot >> 1] >> ((slot & 1) * 4)) & 15];
      case kDense:
        return page.values[slot];
      case kCompact:
        break;
    }
    return page.values[Rank(page, slot)];
  }

  // Stores `packed` for `slot` in a palette page; false if the palette is
  // full and does not hold it.
  [[gnu::always_inline]] static bool PaletteStore(Page* page, uint32_t slot, uint64_t packed) {
    uint32_t index = 0;
    while (index < page->palette && page->values[index] != packed) ++index;
    if (index == page->palette) {
      if (index == kPaletteSize) return false;
      page->values[index] = packed;
      ++page->palette;
    }
    uint8_t& b = Nibbles(*page)[slot >> 1];
    int shift = (slot & 1) * 4;
    b = static_cast<uint8_t>((b & ~(15 << shift)) | (index << shift));
    return true;
  }

  // Calls fn(slot, packed value) for every present slot, in slot order.
  template <typename Fn>
  static void ForEachValue(const Page& page, Fn fn) {
    uint32_t rank = 0;
    for (uint32_t w = 0; w < kPageSlots / 64; ++w) {
      for (uint64_t bits = page.present[w]; bits != 0; bits &= bits - 1) {
        uint32_t slot = w * 64 + static_cast<uint32_t>(std::countr_zero(bits));
        fn(slot, page.mode == kCompact ? page.values[rank++] : Value(page, slot));
      }
    }
  }

  // Bits set in `x`, inline: without -mpopcnt (the x86-64 baseline this
  // builds for) std::popcount is a call to libgcc's __popcountdi2 (python:
  // 78 M instructions under Rank, with the calls).
  [[gnu::always_inline]] static uint32_t PopCount(uint64_t x) {
#if defined(__POPCNT__)
    return static_cast<uint32_t>(std::popcount(x));
#else
    x = x - ((x >> 1) & 0x5555555555555555u);
    x = (x & 0x3333333333333333u) + ((x >> 2) & 0x3333333333333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0f0f0f0f0fu;
    return static_cast<uint32_t>((x * 0x0101010101010101u) >> 56);
#endif
  }

  static uint32_t Rank(const Page& page, uint32_t slot) {
    uint32_t rank = 0;
    uint32_t w = slot >> 6;
    for (uint32_t i = 0; i < w; ++i) rank += PopCount(page.present[i]);
    uint64_t below = (uint64_t{1} << (slot & 63)) - 1;
    return rank + PopCount(page.present[w] & below);
  }

  static constexpr uint64_t kMaxPackedSize = (uint64_t{1} << (64 - kSiteBits)) - 1;
  static constexpr uint32_t kMaxPackedSite = uint32_t{1} << kSiteBits;
  uint64_t Pack(uint64_t id, const LiveBlock& b) {
    if (b.size >= kMaxPackedSize || b.site >= kMaxPackedSite) {
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
  [[gnu::always_inline]] Page* PageOf(uint64_t key) const {
    if (key == last_key_) return last_page_;
    Page* page = Lookup(key);
    if (page != nullptr) {
      last_key_ = key;
      last_page_ = page;
    }
    return page;
  }

  // The index's page of `key`, or null.
  [[gnu::always_inline]] Page* Lookup(uint64_t key) const {
    uint64_t thread = key >> 32;
    uint32_t number = static_cast<uint32_t>(key);
    if (thread < kDenseThreads && number < kDenseNumbers) [[likely]] {
      if (thread >= dense_.size()) return nullptr;
      const std::vector<std::unique_ptr<Chunk>>& chunks = dense_[thread];
      uint32_t c = number >> kChunkBits;
      if (c >= chunks.size()) return nullptr;
      const Chunk* chunk = chunks[c].get();
      return chunk == nullptr ? nullptr : chunk->pages[number & (kChunkPages - 1)].get();
    }
    return far_.empty() ? nullptr : FindFar(key);
  }

  [[gnu::noinline]] Page* FindFar(uint64_t key) const {
    auto it = far_.find(key);
    return it == far_.end() ? nullptr : it->second.get();
  }

  // A new palette page.
  [[gnu::noinline]] Page* NewPage(uint64_t key) {
    auto made = std::make_unique<Page>();
    Page* page = made.get();
    uint64_t thread = key >> 32;
    uint32_t number = static_cast<uint32_t>(key);
    if (thread < kDenseThreads && number < kDenseNumbers) {
      if (thread >= dense_.size()) dense_.resize(thread + 1);
      std::vector<std::unique_ptr<Chunk>>& chunks = dense_[thread];
      uint32_t c = number >> kChunkBits;
      if (c >= chunks.size()) chunks.resize(c + size_t{1});
      if (chunks[c] == nullptr) chunks[c] = std::make_unique<Chunk>();
      chunks[c]->pages[number & (kChunkPages - 1)] = std::move(made);
      ++chunks[c]->held;
    } else {
      far_[key] = std::move(made);
    }
    ++page_count_;
    page->values = std::make_unique<uint64_t[]>(kPaletteWords);
    page->capacity = kPaletteWords;
    page->mode = kPalette;
    value_bytes_ += kPaletteWords * sizeof(uint64_t);
    ++mode_pages_[kPalette];
    last_key_ = key;
    last_page_ = page;
    return page;
  }

  // Releases the page of `key` (the caches forget it).
  void ReleasePage(uint64_t key) {
    if (last_key_ == key) {
      last_key_ = kNoKey;
      last_page_ = nullptr;
    }
    if (insert_key_ == key) {
      insert_key_ = kNoKey;
      insert_page_ = nullptr;
    }
    --page_count_;
    uint64_t thread = key >> 32;
    uint32_t number = static_cast<uint32_t>(key);
    if (thread < kDenseThreads && number < kDenseNumbers) {
      std::unique_ptr<Chunk>& chunk = dense_[thread][number >> kChunkBits];
      chunk->pages[number & (kChunkPages - 1)].reset();
      if (--chunk->held == 0) chunk.reset();
      return;
    }
    far_.erase(key);
  }

  // Replaces a page's values by `capacity` words in `mode`, the present
  // slots' values carried over.
  void SetMode(Page* page, Mode mode, uint16_t capacity = kPageSlots) {
    auto values = std::make_unique_for_overwrite<uint64_t[]>(capacity);
    uint32_t rank = 0;
    ForEachValue(*page, [&](uint32_t slot, uint64_t packed) {
      values[mode == kDense ? slot : rank++] = packed;
    });
    value_bytes_ = value_bytes_ + size_t{capacity} * sizeof(uint64_t) -
                   size_t{page->capacity} * sizeof(uint64_t);
    --mode_pages_[page->mode];
    ++mode_pages_[mode];
    page->values = std::move(values);
    page->capacity = capacity;
    page->mode = mode;
    SetShrinkBelow(page);
  }

  // Gives a compact page room for `capacity` values.
  void Resize(Page* page, uint16_t capacity) {
    auto values = std::make_unique_for_overwrite<uint64_t[]>(capacity);
    std::memcpy(values.get(), page->values.get(), page->count * sizeof(uint64_t));
    value_bytes_ = value_bytes_ + size_t{capacity} * sizeof(uint64_t) -
                   size_t{page->capacity} * sizeof(uint64_t);
    page->values = std::move(values);
    page->capacity = capacity;
  }

  // The frontier left the page `key`.
  void Close(uint64_t key) {
    Page* page = PageOf(key);
    if (page == nullptr) return;
    page->closed = true;
    SetShrinkBelow(page);
    if (ShouldShrink(*page)) Shrink(key, page);
  }

  static void SetShrinkBelow(Page* page) {
    uint32_t below = !page->closed                ? 0
                     : page->mode == kPalette     ? kCompactPaletteBelow
                     : page->mode == kDense       ? kCompactDenseBelow
                                                  : 0;
    page->shrink_below = static_cast<uint16_t>(below);
  }

  static bool ShouldShrink(const Page& page) {
    switch (page.mode) {
      case kPalette:
        return page.count < kCompactPaletteBelow;
      case kDense:
        return page.count < kCompactDenseBelow;
      case kCompact:
        break;
    }
    return page.count < kFallbackBelow || page.count * 4 < page.capacity;
  }

  // A closed page that ShouldShrink: make it compact, halve a compact page
  // that is a quarter full, or move a nearly empty page's blocks to the
  // fallback and release it.
  void Shrink(uint64_t key, Page* page) {
    if (page->count < kFallbackBelow) {
      ForEachValue(*page, [&](uint32_t slot, uint64_t packed) {
        uint64_t id = key << kPageBits | slot;
        fallback_.Insert(id, Unpack(id, packed));
        if (packed == kOverflow) overflow_.erase(id);
      });
      paged_ -= page->count;
      value_bytes_ -= size_t{page->capacity} * sizeof(uint64_t);
      --mode_pages_[page->mode];
      ReleasePage(key);
      return;
    }
    if (page->mode != kCompact) {
      SetMode(page, kCompact, static_cast<uint16_t>(std::max<uint32_t>(page->count, 8)));
    } else if (page->count * 4 < page->capacity) {
      Resize(page, static_cast<uint16_t>(page->capacity / 2));
    }
  }

  // The page index (see the top): per thread below kDenseThreads, chunks of
  // kChunkPages pages by page number (null: none held there); the rest in
  // far_.
  static constexpr int kChunkBits = 9;
  static constexpr uint32_t kChunkPages = uint32_t{1} << kChunkBits;
  static constexpr uint64_t kDenseThreads = uint64_t{1} << 16;
  static constexpr uint32_t kDenseNumbers = uint32_t{1} << 28;
  struct Chunk {
    uint32_t held = 0;  // pages held in `pages`
    std::unique_ptr<Page> pages[kChunkPages];
  };
  std::vector<std::vector<std::unique_ptr<Chunk>>> dense_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<Page>> far_;
  size_t page_count_ = 0;
  absl::flat_hash_map<uint32_t, uint32_t> frontier_;  // thread -> its newest page's number
  LiveSet fallback_;
  absl::flat_hash_map<uint64_t, LiveBlock> overflow_;  // paged blocks that do not pack
  size_t paged_ = 0;
  size_t mode_pages_[3] = {};
  size_t value_bytes_ = 0;
  // Keys are below 2^56 (ids >> kPageBits): this one is no page's.
  static constexpr uint64_t kNoKey = ~uint64_t{0};
  mutable uint64_t last_key_ = kNoKey;  // PageOf's last page (never a released one)
  mutable Page* last_page_ = nullptr;
  mutable uint64_t last_prefetch_ = kNoKey;
  mutable uint64_t last_slot_prefetch_ = kNoKey;
  uint64_t insert_key_ = kNoKey;  // Insert's last page
  Page* insert_page_ = nullptr;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_PAGED_LIVE_SET_H_
