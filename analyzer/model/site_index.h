// analyzer/model/site_index.h: the analysis's map from a call site's key
// (leaf stack node, allocation API) to its index in ProcessProfile::sites,
// stored as an array indexed by stack node id.
//
// Every allocation looks its site up. Stack node ids are dense from 1
// (stack_trie.h), and a leaf node is one call instruction, so nearly every
// stack allocates through one API: the index keeps, per node, one word
// (site << 8 | api) in pages of kPageNodes nodes made when a site of theirs
// is first inserted. A lookup is two dependent loads (the page, the word)
// and no hashing. An abseil map of (stack, api) -> site cost 24 bytes a slot
// at a load factor of 7/16 to 7/8, its resizes faulted in a fresh table each
// time, and missing the direct-mapped cache in front of it (4096 entries) was
// most of cc1plus's lookups (130 k sites): 4.5% of the analysis's page
// faults and a hash probe per allocation. Here: 4 bytes a node of every
// page that holds a site (2.1 MB for cc1plus's 533 k nodes).
//
// Kept in a hash map beside the array (`elsewhere_`): a second API on a
// stack that has a site already (rare: the preload records one API per call
// instruction, but a hand-made or corrupt trace may differ), a stack id at
// or above kDenseLimit, and a site number that does not fit 24 bits. So
// any trace is indexed; the array is tried first.
//
// Not thread-safe.
#ifndef HEAPSIGHT_ANALYZER_MODEL_SITE_INDEX_H_
#define HEAPSIGHT_ANALYZER_MODEL_SITE_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "format/trace_format.h"

namespace heapsight::analyzer {

class SiteIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;  // Find: no such site
  static constexpr int kPageBits = 12;
  static constexpr uint64_t kPageNodes = uint64_t{1} << kPageBits;  // 16 KiB a page
  // Stack ids below this are kept in the array (its page table is then at
  // most 64 Ki pointers), as StackTrie's.
  static constexpr uint64_t kDenseLimit = uint64_t{1} << 28;
  // Site numbers below this fit the array's word beside the API.
  static constexpr uint32_t kDenseSites = (uint32_t{1} << 24) - 1;

  // The site of (stack, api), or kNone.
  uint32_t Find(uint64_t stack, format::Api api) const {
    uint64_t page = stack >> kPageBits;
    if (page < pages_.size()) {
      if (const uint32_t* words = pages_[page].get(); words != nullptr) {
        uint32_t word = words[stack & (kPageNodes - 1)];
        if (word != kEmpty && static_cast<uint8_t>(word) == static_cast<uint8_t>(api)) {
          return word >> 8;
        }
      }
    }
    return elsewhere_.empty() ? kNone : FindElsewhere(stack, api);
  }

  // Records (stack, api) -> site. (stack, api) must not be recorded yet.
  void Insert(uint64_t stack, format::Api api, uint32_t site);

  size_t size() const { return size_; }
  // Sites kept in the map beside the array (tests).
  size_t elsewhere_size() const { return elsewhere_.size(); }
  // Bytes held: the pages, the page table and the map's slots.
  size_t MemoryBytes() const;

 private:
  static constexpr uint32_t kEmpty = UINT32_MAX;  // no site in the array for this node

  struct Key {
    uint64_t stack;
    format::Api api;
    bool operator==(const Key& o) const { return stack == o.stack && api == o.api; }
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.stack, static_cast<uint8_t>(k.api));
    }
  };

  uint32_t FindElsewhere(uint64_t stack, format::Api api) const;

  std::vector<std::unique_ptr<uint32_t[]>> pages_;  // null: no site on that page's nodes
  absl::flat_hash_map<Key, uint32_t> elsewhere_;
  size_t size_ = 0;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_SITE_INDEX_H_
