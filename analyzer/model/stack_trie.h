// analyzer/model/stack_trie.h: a trace's stack trie (node -> parent, ip),
// stored as an array indexed by node id.
//
// The preload numbers a process's stack nodes from 1 in creation order
// (docs/trace-format.md, "Stack nodes"; a fork child's file redefines the
// nodes of its parent under the same numbers), so the ids of a trace are
// dense and the trie can be an array: 12 bytes a node (the ip, and the
// parent as 32 bits: a parent is older than its child), in pages of
// kPageNodes nodes made when a node of theirs is first defined, so growing
// never copies what is stored. A hash map of node -> (parent, ip) cost 24
// bytes a slot at a load factor of 7/16 to 7/8, and both tables at once
// while it grew: on a cc1plus trace (533 k nodes) 39 MB at the analyzer's
// peak, against 6.5 MB here.
//
// Ids at or above kDenseLimit, and nodes whose parent does not fit in 32
// bits (neither is written by the preload; a corrupt or hand-made trace
// may hold them), go to a hash map beside the array, so any trace is
// read; a lone huge id costs a map slot, not an array up to it.
//
// The first definition of a node wins (a fork child's file, and a corrupt
// trace, may define a node again). Not thread-safe.
#ifndef HEAPSIGHT_ANALYZER_MODEL_STACK_TRIE_H_
#define HEAPSIGHT_ANALYZER_MODEL_STACK_TRIE_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace heapsight::analyzer {

struct StackNode {
  uint64_t parent = 0;  // 0: a root frame
  uint64_t ip = 0;      // a return address, or a cut marker (a root's only)
};

class StackTrie {
 public:
  static constexpr int kPageBits = 12;
  static constexpr uint64_t kPageNodes = uint64_t{1} << kPageBits;  // 48 KiB a page
  // Ids below this are stored in the array (its page table is then at
  // most 64 Ki entries).
  static constexpr uint64_t kDenseLimit = uint64_t{1} << 28;

  // Defines `node` (not 0) as (parent, ip); false, and nothing changes,
  // if it was defined already.
  bool Define(uint64_t node, uint64_t parent, uint64_t ip);

  // The node's (parent, ip); false if it is not defined.
  bool Find(uint64_t node, StackNode* out) const {
    if (node < kDenseLimit) {
      uint64_t page = node >> kPageBits;
      if (page >= pages_.size() || pages_[page].empty()) return false;
      const Entry& e = pages_[page][node & (kPageNodes - 1)];
      if (e.parent >= kElsewhere) return e.parent == kElsewhere && FindOverflow(node, out);
      out->parent = e.parent;
      out->ip = uint64_t{e.ip_high} << 32 | e.ip_low;
      return true;
    }
    return FindOverflow(node, out);
  }
  bool Contains(uint64_t node) const {
    StackNode unused;
    return Find(node, &unused);
  }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  // Bytes held: the pages, the page table and the overflow map's slots.
  size_t MemoryBytes() const;

  // Calls f(node, StackNode) for every defined node, in ascending node order.
  template <typename F>
  void ForEach(F&& f) const {
    for (size_t page = 0; page < pages_.size(); ++page) {
      const std::vector<Entry>& entries = pages_[page];
      for (size_t i = 0; i < entries.size(); ++i) {
        const Entry& e = entries[i];
        if (e.parent == kUndefined) continue;
        uint64_t node = (uint64_t{page} << kPageBits) | i;
        StackNode n;
        if (e.parent == kElsewhere) {
          FindOverflow(node, &n);
        } else {
          n = {e.parent, uint64_t{e.ip_high} << 32 | e.ip_low};
        }
        f(node, n);
      }
    }
    for (uint64_t node : SortedOverflowAbove()) {
      StackNode n;
      FindOverflow(node, &n);
      f(node, n);
    }
  }

 private:
  // 12 bytes, 4-aligned: the ip in two halves.
  struct Entry {
    uint32_t ip_low;
    uint32_t ip_high;
    uint32_t parent;  // kUndefined, kElsewhere (in overflow_), or the parent
  };
  static_assert(sizeof(Entry) == 12);
  static constexpr uint32_t kUndefined = UINT32_MAX;
  static constexpr uint32_t kElsewhere = UINT32_MAX - 1;

  bool FindOverflow(uint64_t node, StackNode* out) const;
  // The overflow's ids at or above kDenseLimit, ascending.
  std::vector<uint64_t> SortedOverflowAbove() const;

  std::vector<std::vector<Entry>> pages_;  // empty: no node of that page defined
  absl::flat_hash_map<uint64_t, StackNode> overflow_;
  size_t size_ = 0;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_STACK_TRIE_H_
