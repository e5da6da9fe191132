// analyzer/model/stack_trie.cc: see stack_trie.h.
#include "analyzer/model/stack_trie.h"

#include <algorithm>

namespace heapsight::analyzer {

bool StackTrie::Define(uint64_t node, uint64_t parent, uint64_t ip) {
  if (node >= kDenseLimit) {
    if (!overflow_.try_emplace(node, StackNode{parent, ip}).second) return false;
    ++size_;
    return true;
  }
  uint64_t page = node >> kPageBits;
  if (page >= pages_.size()) {
    // Doubling, spelled out so MemoryBytes is the same on every library.
    pages_.reserve(std::max<size_t>(page + 1, 2 * pages_.size()));
    pages_.resize(page + 1);
  }
  std::vector<Entry>& entries = pages_[page];
  if (entries.empty()) entries.assign(kPageNodes, Entry{0, 0, kUndefined});
  Entry& e = entries[node & (kPageNodes - 1)];
  if (e.parent != kUndefined) return false;
  if (parent >= kElsewhere) {
    e.parent = kElsewhere;
    overflow_.try_emplace(node, StackNode{parent, ip});
  } else {
    e = {static_cast<uint32_t>(ip), static_cast<uint32_t>(ip >> 32),
         static_cast<uint32_t>(parent)};
  }
  ++size_;
  return true;
}

bool StackTrie::FindOverflow(uint64_t node, StackNode* out) const {
  auto it = overflow_.find(node);
  if (it == overflow_.end()) return false;
  *out = it->second;
  return true;
}

std::vector<uint64_t> StackTrie::SortedOverflowAbove() const {
  std::vector<uint64_t> nodes;
  for (const auto& [node, unused] : overflow_) {
    if (node >= kDenseLimit) nodes.push_back(node);
  }
  std::sort(nodes.begin(), nodes.end());
  return nodes;
}

size_t StackTrie::MemoryBytes() const {
  size_t bytes = pages_.capacity() * sizeof(std::vector<Entry>);
  for (const std::vector<Entry>& entries : pages_) bytes += entries.capacity() * sizeof(Entry);
  // abseil's slots and one control byte each.
  bytes += overflow_.capacity() * (sizeof(std::pair<const uint64_t, StackNode>) + 1);
  return bytes;
}

}  // namespace heapsight::analyzer
