// analyzer/model/site_index.cc: see site_index.h.
#include "analyzer/model/site_index.h"

#include <algorithm>

namespace heapsight::analyzer {

void SiteIndex::Insert(uint64_t stack, format::Api api, uint32_t site) {
  ++size_;
  if (stack < kDenseLimit && site < kDenseSites) {
    uint64_t page = stack >> kPageBits;
    if (page >= pages_.size()) {
      // Doubling, spelled out so MemoryBytes is the same on every library.
      pages_.reserve(std::max<size_t>(page + 1, 2 * pages_.size()));
      pages_.resize(page + 1);
    }
    std::unique_ptr<uint32_t[]>& words = pages_[page];
    if (words == nullptr) {
      words = std::make_unique_for_overwrite<uint32_t[]>(kPageNodes);
      std::fill_n(words.get(), kPageNodes, kEmpty);
    }
    uint32_t& word = words[stack & (kPageNodes - 1)];
    if (word == kEmpty) {
      word = site << 8 | static_cast<uint8_t>(api);
      return;
    }
  }
  elsewhere_.try_emplace(Key{stack, api}, site);
}

uint32_t SiteIndex::FindElsewhere(uint64_t stack, format::Api api) const {
  auto it = elsewhere_.find(Key{stack, api});
  return it == elsewhere_.end() ? kNone : it->second;
}

size_t SiteIndex::MemoryBytes() const {
  size_t bytes = pages_.capacity() * sizeof(pages_[0]);
  for (const auto& words : pages_) bytes += words != nullptr ? kPageNodes * sizeof(uint32_t) : 0;
  // abseil's slots and one control byte each.
  bytes += elsewhere_.capacity() * (sizeof(std::pair<const Key, uint32_t>) + 1);
  return bytes;
}

}  // namespace heapsight::analyzer
