// preload/stack_table.h: deduplication of call stacks into a trie of nodes.
//
// A node is (parent node, instruction pointer); node 0 is the empty stack
// and ids count from 1 in creation order. A stack is identified by its leaf
// node. Nodes live in pages of 12-byte entries (a 32-bit parent: ids never
// pass kMaxNodes < 2^32). Two hash tables, open addressing with linear
// probing:
//  - full-stack table: 128-bit hash of the whole stack -> leaf node.
//    Lock-free reads (the common case: a stack seen before). Two independent
//    64-bit hashes must both match; a false hit needs a 128-bit collision
//    (about 2^-128 per pair of distinct stacks), so hits are not re-verified
//    by walking the trie, which used to cost as much as the unwinding.
//    24-byte slots, grown at 3/4 full.
//  - edge table: (parent, ip) -> node, in 8-byte slots: the node id and 32
//    bits of the edge's hash. The key itself is not stored: a slot whose
//    hash bits match is confirmed against the node's own (parent, ip), so
//    a hit is always exact. Written under the lock; read lock-free by
//    Extend (a slot is one word, stored after its node's data), and under
//    the lock on a miss of either path. Grown at 5/8 full.
// On a miss, the caller learns which node ids were created ([first, last])
// and writes them as kStackNode records before the record that uses them.
//
// Constraints: never calls malloc (PageAlloc); one spin lock, taken only on a
// miss; lock-free reads otherwise; madvise on growth, under the lock. Old
// full-stack and edge tables are never unmapped after growth (a lock-free
// reader may still be probing one), but their pages are returned
// (MADV_DONTNEED) while they are copied into the next generation, so the
// two are never both whole and resident (stack_table.cc says why a reader
// still gets the right node or a miss); only their first 64 KiB stay
// resident. Lock()/Unlock() exist for fork.
#ifndef HEAPSIGHT_PRELOAD_STACK_TABLE_H_
#define HEAPSIGHT_PRELOAD_STACK_TABLE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "preload/spin_lock.h"

namespace heapsight::preload {

class StackTable {
 public:
  constexpr StackTable() = default;

  // `ips` innermost first, `depth` entries. Returns the leaf node (0 for an
  // empty stack, or if memory ran out). New nodes, if any, are ids
  // [*first_new, *last_new] (first_new > last_new when none).
  uint64_t Intern(const uintptr_t* ips, size_t depth, uint64_t* first_new, uint64_t* last_new);

  // The leaf node of the stack made of `ips[0..count)` (innermost first)
  // on top of the stack whose leaf is `base` (0: the empty stack): the node
  // Intern would return for the whole stack, found edge by edge, one
  // lock-free probe per frame when the edges exist (the unwind cache's
  // splices). New nodes as in Intern; 0 if memory ran out. With `nodes`,
  // also every frame's node: nodes[k] is the leaf of ips[k..count) on
  // `base` (nodes[0] the returned leaf), for the unwind cache's memos and
  // edge cache, which would otherwise read each back (Node: a cache miss a
  // frame on a big table).
  uint64_t Extend(uint64_t base, const uintptr_t* ips, size_t count, uint64_t* first_new,
                  uint64_t* last_new, uint64_t* nodes = nullptr);

  // Node data; valid for 1 <= node <= NodeCount().
  uint64_t NodeCount() const { return node_count_.load(std::memory_order_acquire); }
  // Bytes the table holds: node pages, stack and edge tables, and what
  // stays resident of their earlier generations (kept mapped for lock-free
  // readers, their pages returned). For HEAPSIGHT_STATS.
  size_t MappedBytes() const { return mapped_bytes_.load(std::memory_order_relaxed); }
  void Node(uint64_t node, uint64_t* parent, uint64_t* ip) const;

  void Lock() { lock_.Lock(); }
  void Unlock() { lock_.Unlock(); }
  void ResetLockInChild() { lock_.ResetInChild(); }

 private:
  // 12 bytes, 4-aligned: the ip is copied in and out (memcpy) as 8 bytes.
  struct NodeData {
    uint32_t parent;
    uint32_t ip[2];
  };
  struct StackSlot {
    std::atomic<uint64_t> hash;  // 0 = empty; published last
    uint64_t hash2;
    uint64_t node;
  };
  // A table's slot for a hash h is h >> shift (the top bits): doubling the
  // capacity sends old slot i to new slots 2i and 2i+1, so a growth copies
  // front to back in both tables (stack_table.cc).
  struct StackTableData {
    size_t capacity;  // power of two
    int shift;        // 64 - log2(capacity)
    StackSlot slots[1];
  };
  // An edge slot: the top 32 bits of the edge's hash, then the node id
  // (never 0: 0 = empty). One word: a reader sees all of it or none.
  struct EdgeTableData {
    size_t capacity;  // power of two, at most 2^32 (the slot's hash bits)
    int shift;        // 64 - log2(capacity)
    std::atomic<uint64_t> slots[1];
  };
  static constexpr size_t kNodesPerPage = 1 << 14;
  static constexpr size_t kMaxPages = 1 << 14;
  // Ids 1..kMaxNodes: they fit the 32-bit parent and edge-slot fields (no
  // wider fallback is needed); past it Intern/Extend return 0, as when
  // memory runs out.
  static constexpr uint64_t kMaxNodes = uint64_t{kNodesPerPage} * kMaxPages;
  static_assert(kMaxNodes < (uint64_t{1} << 32));

  const NodeData& Data(uint64_t node) const {
    uint64_t index = node - 1;
    return pages_[index / kNodesPerPage].load(std::memory_order_acquire)[index % kNodesPerPage];
  }
  // The node of edge slot `slot` if it is the edge (parent, ip) whose
  // EdgeHash is `hash`, else 0.
  uint64_t EdgeNode(uint64_t slot, uint64_t hash, uint64_t parent, uint64_t ip) const;
  uint64_t FindOrAddEdge(uint64_t parent, uint64_t ip, bool* created);
  // Lock-free: the edge's node, or 0 if not (yet) in the table.
  uint64_t FindEdge(uint64_t parent, uint64_t ip) const;
  bool GrowEdges();
  bool GrowStacks();
  static void InsertStack(StackTableData* table, uint64_t hash, uint64_t hash2, uint64_t node);

  SpinLock lock_;
  std::atomic<uint64_t> node_count_{0};
  std::atomic<size_t> mapped_bytes_{0};  // added to under lock_
  std::atomic<StackTableData*> stacks_{nullptr};
  size_t stack_count_ = 0;  // under lock_
  std::atomic<EdgeTableData*> edges_{nullptr};  // replaced under lock_
  size_t edge_count_ = 0;                       // under lock_
  std::atomic<NodeData*> pages_[kMaxPages] = {};
};

// Two independent hashes of a whole stack (*h1 never 0).
void HashStack(const uintptr_t* ips, size_t depth, uint64_t* h1, uint64_t* h2);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_STACK_TABLE_H_
