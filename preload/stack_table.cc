// preload/stack_table.cc: see stack_table.h.
//
// Constraints: no malloc; lock-free lookups; one spin lock on a miss. The
// only system call is madvise (async-signal-safe), under the lock, when a
// table grows.
//
// Returning an old table's memory. A lock-free reader may have loaded the
// old table's pointer just before a growth replaced it and still be probing
// it, for as long as its thread is descheduled: no point in time is known
// where no reader is inside, so the old table is never unmapped (a reader
// would fault). Its pages are instead returned with madvise(MADV_DONTNEED):
// the range stays mapped, and a read of it yields either the old contents
// (still correct: an old table is never written after it was replaced) or
// zeros (the kernel maps the zero page, which costs no memory), field by
// field. Zero is made to never match a lookup:
//  - full-stack slots: hash and hash2 are never 0 (HashStack), and a slot
//    whose node reads 0 is skipped (no stack has node 0 in the table);
//  - edge slots: the parent is stored plus one, and FindEdge never looks up
//    ip 0 (that frame goes to the locked path);
//  - a zeroed hash or edge node reads as an empty slot: the probe ends in a
//    miss, and a miss takes the lock and uses the current table.
// So a reader gets the right node or a miss, never a wrong node. The first
// kKeptBytes of an old table (its capacity header) stay resident, as does
// its tail past the last whole kKeptBytes block: a reader always reads a
// valid capacity, and the advice works for any page size up to 64 KiB.
#include "preload/stack_table.h"

#include <sys/mman.h>

#include "preload/internal_alloc.h"
#include "preload/mix.h"

namespace heapsight::preload {

namespace {

constexpr size_t kKeptBytes = size_t{64} << 10;

// Returns the memory of an old table of `bytes` bytes at `table`, but its
// first kKeptBytes and the tail after the last whole kKeptBytes block (see
// the top of this file). Returns the bytes returned.
size_t ReturnOldTable(void* table, size_t bytes) {
  if (bytes <= kKeptBytes) return 0;
  size_t length = (bytes - kKeptBytes) & ~(kKeptBytes - 1);
  if (length == 0) return 0;
  if (madvise(static_cast<char*>(table) + kKeptBytes, length, MADV_DONTNEED) != 0) return 0;
  return length;
}

}  // namespace

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
  // 0 marks an empty full-stack slot, and is what a returned old table
  // reads as: neither hash may be 0.
  if (*h1 == 0) *h1 = 1;
  if (*h2 == 0) *h2 = 1;
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
  stacks_.store(table, std::memory_order_release);
  // The old table stays mapped, its pages returned: lock-free readers may
  // still be probing it (top of this file).
  if (old != nullptr) {
    size_t returned =
        ReturnOldTable(old, sizeof(StackTableData) + old->capacity * sizeof(StackSlot));
    mapped_bytes_.fetch_sub(returned, std::memory_order_relaxed);
  }
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
  // Huge pages where the kernel has them (THP "madvise" mode): the unwind
  // cache's splices probe this table at random, a TLB miss a probe with 4
  // KiB pages once it outgrows the TLB (cc1plus -O2: 532,037 edges in 48
  // MiB; perf: FindEdge's samples fell from 2,102 to 1,344 of ~17,000,
  // unw24). The table's pages are all touched anyway (a hash spreads the
  // edges over all of them), so it costs no memory; advice only, its
  // failure changes nothing.
  madvise(table, sizeof(EdgeTableData) + capacity * sizeof(EdgeSlot), MADV_HUGEPAGE);
  mapped_bytes_.fetch_add(sizeof(EdgeTableData) + capacity * sizeof(EdgeSlot),
                          std::memory_order_relaxed);
  table->capacity = capacity;
  size_t mask = capacity - 1;
  for (size_t i = 0; old != nullptr && i < old->capacity; ++i) {
    const EdgeSlot& e = old->slots[i];
    uint64_t node = e.node.load(std::memory_order_relaxed);
    if (node == 0) continue;
    for (size_t j = EdgeHash(e.parent_plus_one - 1, e.ip) & mask;; j = (j + 1) & mask) {
      if (table->slots[j].node.load(std::memory_order_relaxed) == 0) {
        table->slots[j].parent_plus_one = e.parent_plus_one;
        table->slots[j].ip = e.ip;
        table->slots[j].node.store(node, std::memory_order_relaxed);
        break;
      }
    }
  }
  // The release store publishes the copied slots.
  edges_.store(table, std::memory_order_release);
  // The old table stays mapped, its pages returned: lock-free readers
  // (FindEdge) may still be probing it (top of this file).
  if (old != nullptr) {
    size_t returned =
        ReturnOldTable(old, sizeof(EdgeTableData) + old->capacity * sizeof(EdgeSlot));
    mapped_bytes_.fetch_sub(returned, std::memory_order_relaxed);
  }
  return true;
}

uint64_t StackTable::FindEdge(uint64_t parent, uint64_t ip) const {
  // ip 0 is what a returned old table's slot reads as: such a frame is
  // looked up under the lock (a rare frame; unwinders end stacks before it).
  if (ip == 0) return 0;
  const EdgeTableData* table = edges_.load(std::memory_order_acquire);
  if (table == nullptr) return 0;
  size_t mask = table->capacity - 1;
  for (size_t j = EdgeHash(parent, ip) & mask;; j = (j + 1) & mask) {
    const EdgeSlot& e = table->slots[j];
    uint64_t node = e.node.load(std::memory_order_acquire);  // then parent and ip are set
    if (node == 0) return 0;
    if (e.parent_plus_one == parent + 1 && e.ip == ip) return node;
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
    if (e.parent_plus_one == parent + 1 && e.ip == ip) {
      return e.node.load(std::memory_order_relaxed);
    }
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
  slot.parent_plus_one = parent + 1;
  slot.ip = ip;
  slot.node.store(node, std::memory_order_release);  // publishes parent and ip
  ++edge_count_;
  *created = true;
  return node;
}

uint64_t StackTable::Extend(uint64_t base, const uintptr_t* ips, size_t count,
                            uint64_t* first_new, uint64_t* last_new, uint64_t* nodes) {
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
    if (nodes != nullptr) nodes[i] = node;
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
    if (nodes != nullptr) nodes[i - 1] = node;
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
      if (h == hash && slot.hash2 == hash2) {
        // 0: a returned old table's slot read after its hash (top of file).
        if (uint64_t node = slot.node; node != 0) return node;
      }
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
