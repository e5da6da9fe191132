// analyzer/model/compact_free_index.h: the live blocks of a compact trace
// indexed by (stack, size), oldest first.
//
// In a trace with compact frees (format::kFileFlagCompactFrees, trace format
// version 5) a free names the freed block's stack and size, not its id. The
// analysis turns each such free back into an id by releasing the oldest
// live block of that stack and size (Take), then handles it as an exact
// free. Blocks of one stack and size are interchangeable for every count
// and byte total per stack (live, peak, not freed at exit, pprof's
// alloc/inuse, growth), so those stay exact at every moment; which block a
// free released, and so a block's lifetime, whether it was a temporary, and
// the allocation time of a block still live at the end, are approximate.
//
// A free may come before its allocation in the merged order (another
// thread's chunk, the same microsecond), as in exact traces: Take finds no
// block, the caller notes the free as pending (AddPending), and the next
// block of that stack and size is released as it arrives (TakePending).
//
// Memory: 8 bytes per live block plus about 64 bytes per (stack, size)
// with live blocks or pending frees; keys leave when they empty.
#ifndef HEAPSIGHT_ANALYZER_MODEL_COMPACT_FREE_INDEX_H_
#define HEAPSIGHT_ANALYZER_MODEL_COMPACT_FREE_INDEX_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace heapsight::analyzer {

class CompactFreeIndex {
 public:
  // A block of (stack, size) arrives: true if a pending free of that
  // stack and size takes it at once (the caller counts it freed and never
  // makes it live). Cheap when nothing is pending.
  bool TakePending(uint64_t stack, uint64_t size) {
    if (pending_ == 0) return false;
    auto it = queues_.find(Key{stack, size});
    if (it == queues_.end() || it->second.pending == 0) return false;
    --it->second.pending;
    --pending_;
    if (it->second.Empty()) queues_.erase(it);
    return true;
  }

  // Block `id` of (stack, size) became live (newest of its key).
  void Add(uint64_t stack, uint64_t size, uint64_t id) {
    queues_[Key{stack, size}].ids.push_back(id);
  }

  // Removes the oldest live block of (stack, size) into *id; false if none.
  bool Take(uint64_t stack, uint64_t size, uint64_t* id) {
    auto it = queues_.find(Key{stack, size});
    if (it == queues_.end() || it->second.head == it->second.ids.size()) return false;
    Queue& q = it->second;
    *id = q.ids[q.head++];
    if (q.head == q.ids.size()) {
      if (q.pending == 0) {
        queues_.erase(it);
      } else {
        q.ids.clear();
        q.head = 0;
      }
    } else if (q.head >= 64 && q.head * 2 >= q.ids.size()) {
      // Amortized O(1): the taken prefix is dropped once it is half.
      q.ids.erase(q.ids.begin(), q.ids.begin() + static_cast<std::ptrdiff_t>(q.head));
      q.head = 0;
    }
    return true;
  }

  // Removes block `id` of (stack, size) wherever it is (a block released by
  // id, not by a compact free: none in the traces the preload writes; kept
  // so the index never names a block that is gone). Linear in the key's
  // blocks.
  void Remove(uint64_t stack, uint64_t size, uint64_t id) {
    auto it = queues_.find(Key{stack, size});
    if (it == queues_.end()) return;
    Queue& q = it->second;
    for (size_t i = q.head; i < q.ids.size(); ++i) {
      if (q.ids[i] == id) {
        q.ids.erase(q.ids.begin() + static_cast<std::ptrdiff_t>(i));
        break;
      }
    }
    if (q.Empty()) queues_.erase(it);
  }

  // A free of (stack, size) that found no live block: the next block of
  // that stack and size to arrive is released at once. False (nothing
  // noted) past `limit` pending frees.
  bool AddPending(uint64_t stack, uint64_t size, size_t limit) {
    if (pending_ >= limit) return false;
    ++queues_[Key{stack, size}].pending;
    ++pending_;
    return true;
  }
  size_t pending() const { return pending_; }

  // Calls fn(stack, size, count) for every (stack, size) with pending frees.
  template <typename Fn>
  void ForEachPending(Fn fn) const {
    for (const auto& [key, q] : queues_) {
      if (q.pending != 0) fn(key.stack, key.size, q.pending);
    }
  }

  // The n-th oldest live block of (stack, size) (0 = the oldest), without
  // removing it; false past the last.
  bool Peek(uint64_t stack, uint64_t size, size_t n, uint64_t* id) const {
    auto it = queues_.find(Key{stack, size});
    if (it == queues_.end() || it->second.head + n >= it->second.ids.size()) return false;
    *id = it->second.ids[it->second.head + n];
    return true;
  }

  // Live blocks indexed (for tests).
  size_t size() const {
    size_t n = 0;
    for (const auto& [key, q] : queues_) n += q.ids.size() - q.head;
    return n;
  }

 private:
  struct Key {
    uint64_t stack;
    uint64_t size;
    bool operator==(const Key& o) const { return stack == o.stack && size == o.size; }
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.stack, k.size);
    }
  };
  struct Queue {
    std::vector<uint64_t> ids;  // live blocks in the order they became live, from `head`
    size_t head = 0;
    size_t pending = 0;         // frees waiting for a block of this key
    bool Empty() const { return head == ids.size() && pending == 0; }
  };
  absl::flat_hash_map<Key, Queue> queues_;
  size_t pending_ = 0;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_COMPACT_FREE_INDEX_H_
