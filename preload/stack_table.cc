// preload/stack_table.cc: see stack_table.h.
//
// Constraints: no malloc; lock-free lookups; one spin lock on a miss.
#include "preload/stack_table.h"

#include "preload/internal_alloc.h"
#include "preload/mix.h"

namespace heapsight::preload {

void HashStack(const uintptr_t* ips, size_t depth, uint64_t* h1, uint64_t* h2) {
  // Two multiply chains in parallel (independent constants and mixing), one
  // finalizer each.
  uint64_t a = 0x9e3779b97f4a7c15ULL ^ depth;
  uint64_t b = 0xc2b2ae3d27d4eb4fULL + depth;
  for (size_t i = 0; i < depth; ++i) {
    a = (a ^ ips[i]) * 0xff51afd7ed558ccdULL;
    a = (a << 29) | (a >> 35);
    b = (b + ips[i]) * 0xc4ceb9fe1a85ec53ULL;
    b ^= b >> 31;
  }
  *h1 = Mix64(a);
  *h2 = Mix64(b ^ 0x2545f4914f6cdd1dULL);
  if (*h1 == 0) *h1 = 1;
}

void StackTable::Node(uint64_t node, uint64_t* parent, uint64_t* ip) const {
  uint64_t index = node - 1;
  const NodeData* page = pages_[index / kNodesPerPage].load(std::memory_order_acquire);
  const NodeData& d = page[index % kNodesPerPage];
  *parent = d.parent;
  *ip = d.ip;
}

void StackTable::InsertStack(StackTableData* table, uint64_t hash, uint64_t hash2,
                             uint64_t node) {
  size_t mask = table->capacity - 1;
  for (size_t i = hash & mask;; i = (i + 1) & mask) {
    StackSlot& s = table->slots[i];
    if (s.hash.load(std::memory_order_relaxed) == 0) {
      s.hash2 = hash2;
      s.node = node;
      s.hash.store(hash, std::memory_order_release);  // publishes hash2 and node
      return;
    }
  }
}

bool StackTable::GrowStacks() {
  StackTableData* old = stacks_.load(std::memory_order_relaxed);
  size_t capacity = old == nullptr ? 4096 : old->capacity * 2;
  auto* table = static_cast<StackTableData*>(
      PageAlloc(sizeof(StackTableData) + capacity * sizeof(StackSlot)));
  if (table == nullptr) return false;
  mapped_bytes_.fetch_add(sizeof(StackTableData) + capacity * sizeof(StackSlot),
                          std::memory_order_relaxed);
  table->capacity = capacity;
  if (old != nullptr) {
    for (size_t i = 0; i < old->capacity; ++i) {
      uint64_t h = old->slots[i].hash.load(std::memory_order_relaxed);
      if (h != 0) InsertStack(table, h, old->slots[i].hash2, old->slots[i].node);
    }
  }
  // The old table stays mapped: lock-free readers may still be probing it.
  stacks_.store(table, std::memory_order_release);
  return true;
}

namespace {

size_t EdgeHash(uint64_t parent, uint64_t ip) { return Mix64(parent * 31 + ip); }

}  // namespace

bool StackTable::GrowEdges() {
  EdgeTableData* old = edges_.load(std::memory_order_relaxed);
  size_t capacity = old == nullptr ? 4096 : old->capacity * 2;
  auto* table = static_cast<EdgeTableData*>(
      PageAlloc(sizeof(EdgeTableData) + capacity * sizeof(EdgeSlot)));
  if (table == nullptr) return false;
  mapped_bytes_.fetch_add(sizeof(EdgeTableData) + capacity * sizeof(EdgeSlot),
                          std::memory_order_relaxed);
  table->capacity = capacity;
  size_t mask = capacity - 1;
  for (size_t i = 0; old != nullptr && i < old->capacity; ++i) {
    const EdgeSlot& e = old->slots[i];
    uint64_t node = e.node.load(std::memory_order_relaxed);
    if (node == 0) continue;
    for (size_t j = EdgeHash(e.parent, e.ip) & mask;; j = (j + 1) & mask) {
      if (table->slots[j].node.load(std::memory_order_relaxed) == 0) {
        table->slots[j].parent = e.parent;
        table->slots[j].ip = e.ip;
        table->slots[j].node.store(node, std::memory_order_relaxed);
        break;
      }
    }
  }
  // The old table stays mapped: lock-free readers (FindEdge) may still be
  // probing it. The release store publishes the copied slots.
  edges_.store(table, std::memory_order_release);
  return true;
}

uint64_t StackTable::FindEdge(uint64_t parent, uint64_t ip) const {
  const EdgeTableData* table = edges_.load(std::memory_order_acquire);
  if (table == nullptr) return 0;
  size_t mask = table->capacity - 1;
  for (size_t j = EdgeHash(parent, ip) & mask;; j = (j + 1) & mask) {
    const EdgeSlot& e = table->slots[j];
    uint64_t node = e.node.load(std::memory_order_acquire);  // then parent and ip are set
    if (node == 0) return 0;
    if (e.parent == parent && e.ip == ip) return node;
  }
}

uint64_t StackTable::FindOrAddEdge(uint64_t parent, uint64_t ip, bool* created) {
  *created = false;
  EdgeTableData* table = edges_.load(std::memory_order_relaxed);
  if (table == nullptr || (edge_count_ + 1) * 2 > table->capacity) {
    if (!GrowEdges()) return 0;
    table = edges_.load(std::memory_order_relaxed);
  }
  size_t mask = table->capacity - 1;
  size_t j = EdgeHash(parent, ip) & mask;
  for (;; j = (j + 1) & mask) {
    const EdgeSlot& e = table->slots[j];
    if (e.node.load(std::memory_order_relaxed) == 0) break;
    if (e.parent == parent && e.ip == ip) return e.node.load(std::memory_order_relaxed);
  }
  uint64_t node = node_count_.load(std::memory_order_relaxed) + 1;
  uint64_t index = node - 1;
  if (index / kNodesPerPage >= kMaxPages) return 0;
  std::atomic<NodeData*>& page_slot = pages_[index / kNodesPerPage];
  NodeData* page = page_slot.load(std::memory_order_relaxed);
  if (page == nullptr) {
    page = static_cast<NodeData*>(PageAlloc(kNodesPerPage * sizeof(NodeData)));
    if (page == nullptr) return 0;
    mapped_bytes_.fetch_add(kNodesPerPage * sizeof(NodeData), std::memory_order_relaxed);
    page_slot.store(page, std::memory_order_release);
  }
  page[index % kNodesPerPage] = NodeData{parent, ip};
  node_count_.store(node, std::memory_order_release);
  EdgeSlot& slot = table->slots[j];
  slot.parent = parent;
  slot.ip = ip;
  slot.node.store(node, std::memory_order_release);  // publishes parent and ip
  ++edge_count_;
  *created = true;
  return node;
}

uint64_t StackTable::Extend(uint64_t base, const uintptr_t* ips, size_t count,
                            uint64_t* first_new, uint64_t* last_new) {
  *first_new = 1;
  *last_new = 0;
  uint64_t node = base;
  size_t i = count;
  // Lock-free while the edges exist (the common case: a stack seen before).
  while (i > 0) {
    uint64_t next = FindEdge(node, ips[i - 1]);
    if (next == 0) break;
    node = next;
    --i;
  }
  if (i == 0) return node;
  SpinLockHolder hold(&lock_);
  for (; i > 0; --i) {
    bool created;
    uint64_t next = FindOrAddEdge(node, ips[i - 1], &created);
    if (next == 0) return 0;
    if (created) {
      if (*first_new > *last_new) *first_new = next;
      *last_new = next;
    }
    node = next;
  }
  return node;
}

uint64_t StackTable::Intern(const uintptr_t* ips, size_t depth, uint64_t* first_new,
                            uint64_t* last_new) {
  *first_new = 1;
  *last_new = 0;
  if (depth == 0) return 0;
  uint64_t hash, hash2;
  HashStack(ips, depth, &hash, &hash2);
  if (StackTableData* table = stacks_.load(std::memory_order_acquire); table != nullptr) {
    size_t mask = table->capacity - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
      const StackSlot& slot = table->slots[i];
      uint64_t h = slot.hash.load(std::memory_order_acquire);
      if (h == 0) break;
      if (h == hash && slot.hash2 == hash2) return slot.node;
    }
  }
  SpinLockHolder hold(&lock_);
  // Build the path root-first (ips[depth-1] is the outermost frame).
  uint64_t node = 0;
  for (size_t i = depth; i-- > 0;) {
    bool created;
    uint64_t next = FindOrAddEdge(node, ips[i], &created);
    if (next == 0) return 0;
    if (created) {
      if (*first_new > *last_new) *first_new = next;
      *last_new = next;
    }
    node = next;
  }
  StackTableData* table = stacks_.load(std::memory_order_relaxed);
  if (table == nullptr || (stack_count_ + 1) * 2 > table->capacity) {
    if (!GrowStacks()) return node;
    table = stacks_.load(std::memory_order_relaxed);
  }
  // Another thread may have inserted the same stack between our lookup and
  // the lock; a duplicate slot is harmless (both map to the same node).
  InsertStack(table, hash, hash2, node);
  ++stack_count_;
  return node;
}

}  // namespace heapsight::preload
