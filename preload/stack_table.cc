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
// (still correct: an old table is never written after the growth began) or
// zeros (the kernel maps the zero page, which costs no memory), field by
// field. Zero is made to never match a lookup:
//  - full-stack slots: hash and hash2 are never 0 (HashStack), and a slot
//    whose node reads 0 is skipped (no stack has node 0 in the table);
//  - edge slots are one word whose node part is never 0, and a hit is
//    confirmed against the node's data, which is never returned;
//  - a zeroed hash or edge slot reads as an empty slot: the probe ends in a
//    miss, and a miss takes the lock and uses the current table.
// So a reader gets the right node or a miss, never a wrong node.
//
// Incremental return. A growth copies the old table front to back and
// returns each part of it once copied (kReturnBatch at a time), before the
// new table is published: readers still probing the old one then miss and
// wait on the lock for the new one, which is correct. As a slot's home is
// the top bits of its hash, old slot i goes to new slots 2i or 2i+1 (or
// just after, in a run): the new table is touched front to back as the old
// one is returned, so the two together stay near the new table's size
// instead of 1.5 times it (the new table plus the whole old one).
// The first kKeptBytes of an old table (its capacity header) stay resident,
// as does its tail past the last whole kKeptBytes block: a reader always
// reads a valid capacity, and the advice works for any page size up to
// 64 KiB.
#include "preload/stack_table.h"

#include <sys/mman.h>

#include <cstring>

#include "preload/internal_alloc.h"
#include "preload/mix.h"

namespace heapsight::preload {

namespace {

constexpr size_t kKeptBytes = size_t{64} << 10;
// Old-table bytes returned per madvise during a growth (16 blocks).
constexpr size_t kReturnBatch = size_t{1} << 20;
// Slots copied between two checks for a batch to return.
constexpr size_t kCopyBatchSlots = 4096;
// Both tables' first capacity. A slot's home is random, so a table's
// pages are all touched once it holds a few entries per page: at 4,096
// slots (32 KiB of edges, 96 KiB of stacks) a traced `sort` of a few
// hundred nodes took 40 page faults here, about 80 us of its 2 ms (thr27,
// docs/performance.md). Programs with more stacks double it a few times
// more, early and cheaply; those generations are small enough to stay
// mapped whole (kKeptBytes), about 120 KiB in all.
constexpr size_t kFirstSlots = 256;

// The pages of an old table of `bytes` bytes at `table`, returned while it
// is copied (top of this file): all but its first kKeptBytes and the tail
// after the last whole kKeptBytes block.
class OldTablePages {
 public:
  OldTablePages(void* table, size_t bytes) : base_(static_cast<char*>(table)), bytes_(bytes) {}

  // Its first `done` bytes were copied: returns the whole blocks among
  // them once a batch is due, and the rest when `done` is the whole table.
  void CopiedUpTo(size_t done) {
    size_t end = done & ~(kKeptBytes - 1);
    if (end <= next_) return;
    if (end - next_ < kReturnBatch && done < bytes_) return;
    // On failure the range stays resident: still correct, only not smaller.
    if (madvise(base_ + next_, end - next_, MADV_DONTNEED) == 0) returned_ += end - next_;
    next_ = end;
  }
  size_t returned() const { return returned_; }

 private:
  char* base_;
  size_t bytes_;
  size_t next_ = kKeptBytes;  // returned up to here
  size_t returned_ = 0;
};

int ShiftFor(size_t capacity) { return __builtin_clzll(capacity) + 1; }

// Hash of an edge; its top 32 bits go into the slot (and place it).
uint64_t EdgeHash(uint64_t parent, uint64_t ip) {
  // An odd constant far from small numbers: (parent, ip) and
  // (parent + 1, ip - c) only collide for c of about 2^63.
  return Mix64(parent * 0x9e3779b97f4a7c15ULL + ip);
}

constexpr uint64_t kEdgeHashBits = 0xffffffff00000000ULL;
constexpr uint64_t kEdgeNodeBits = 0x00000000ffffffffULL;

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
  const NodeData& d = Data(node);
  *parent = d.parent;
  uint64_t v;
  std::memcpy(&v, d.ip, sizeof v);
  *ip = v;
}

void StackTable::InsertStack(StackTableData* table, uint64_t hash, uint64_t hash2,
                             uint64_t node) {
  size_t mask = table->capacity - 1;
  for (size_t i = hash >> table->shift;; i = (i + 1) & mask) {
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
  size_t capacity = old == nullptr ? kFirstSlots : old->capacity * 2;
  size_t bytes = offsetof(StackTableData, slots) + capacity * sizeof(StackSlot);
  auto* table = static_cast<StackTableData*>(PageAlloc(bytes));
  if (table == nullptr) return false;
  mapped_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  table->capacity = capacity;
  table->shift = ShiftFor(capacity);
  if (old != nullptr) {
    OldTablePages pages(old, offsetof(StackTableData, slots) + old->capacity * sizeof(StackSlot));
    for (size_t i = 0; i < old->capacity; ++i) {
      const StackSlot& s = old->slots[i];
      uint64_t h = s.hash.load(std::memory_order_relaxed);
      if (h != 0) InsertStack(table, h, s.hash2, s.node);
      if ((i + 1) % kCopyBatchSlots == 0 || i + 1 == old->capacity) {
        pages.CopiedUpTo(offsetof(StackTableData, slots) + (i + 1) * sizeof(StackSlot));
      }
    }
    mapped_bytes_.fetch_sub(pages.returned(), std::memory_order_relaxed);
  }
  stacks_.store(table, std::memory_order_release);
  return true;
}

bool StackTable::GrowEdges() {
  EdgeTableData* old = edges_.load(std::memory_order_relaxed);
  size_t capacity = old == nullptr ? kFirstSlots : old->capacity * 2;
  if (capacity > (size_t{1} << 32)) return false;  // the slot's 32 hash bits place it
  size_t bytes = offsetof(EdgeTableData, slots) + capacity * sizeof(uint64_t);
  auto* table = static_cast<EdgeTableData*>(PageAlloc(bytes));
  if (table == nullptr) return false;
  // Huge pages where the kernel has them (THP "madvise" mode): the unwind
  // cache's splices probe this table at random, a TLB miss a probe with 4
  // KiB pages once it outgrows the TLB (cc1plus -O2, 24-byte slots then:
  // 532,037 edges in 48 MiB; perf: FindEdge's samples fell from 2,102 to
  // 1,344 of ~17,000, unw24). The table's pages are all touched anyway (a
  // hash spreads the edges over all of them), so it costs no memory;
  // advice only, its failure changes nothing.
  madvise(table, bytes, MADV_HUGEPAGE);
  mapped_bytes_.fetch_add(bytes, std::memory_order_relaxed);
  table->capacity = capacity;
  table->shift = ShiftFor(capacity);
  size_t mask = capacity - 1;
  if (old != nullptr) {
    OldTablePages pages(old, offsetof(EdgeTableData, slots) + old->capacity * sizeof(uint64_t));
    for (size_t i = 0; i < old->capacity; ++i) {
      uint64_t e = old->slots[i].load(std::memory_order_relaxed);
      if (e != 0) {
        // The slot holds its hash's top 32 bits: enough to place it again.
        for (size_t j = e >> table->shift;; j = (j + 1) & mask) {
          if (table->slots[j].load(std::memory_order_relaxed) == 0) {
            table->slots[j].store(e, std::memory_order_relaxed);
            break;
          }
        }
      }
      if ((i + 1) % kCopyBatchSlots == 0 || i + 1 == old->capacity) {
        pages.CopiedUpTo(offsetof(EdgeTableData, slots) + (i + 1) * sizeof(uint64_t));
      }
    }
    mapped_bytes_.fetch_sub(pages.returned(), std::memory_order_relaxed);
  }
  // The release store publishes the copied slots.
  edges_.store(table, std::memory_order_release);
  return true;
}

uint64_t StackTable::EdgeNode(uint64_t slot, uint64_t hash, uint64_t parent, uint64_t ip) const {
  // The slot holds 32 bits of the hash and the node; the key is confirmed
  // against the node itself, so a hash match alone never gives a node.
  if ((slot & kEdgeHashBits) != (hash & kEdgeHashBits)) return 0;
  uint64_t node = slot & kEdgeNodeBits;
  const NodeData& d = Data(node);
  uint64_t node_ip;
  std::memcpy(&node_ip, d.ip, sizeof node_ip);
  return d.parent == parent && node_ip == ip ? node : 0;
}

uint64_t StackTable::FindEdge(uint64_t parent, uint64_t ip) const {
  const EdgeTableData* table = edges_.load(std::memory_order_acquire);
  if (table == nullptr) return 0;
  uint64_t h = EdgeHash(parent, ip);
  size_t mask = table->capacity - 1;
  for (size_t j = h >> table->shift;; j = (j + 1) & mask) {
    // Acquire: then the node's data (and its page) are there.
    uint64_t e = table->slots[j].load(std::memory_order_acquire);
    if (e == 0) return 0;
    if (uint64_t node = EdgeNode(e, h, parent, ip); node != 0) return node;
  }
}

uint64_t StackTable::FindOrAddEdge(uint64_t parent, uint64_t ip, bool* created) {
  *created = false;
  EdgeTableData* table = edges_.load(std::memory_order_relaxed);
  // Grown at 5/8 full, the full-stack table at 3/4: Extend ends in a miss
  // (an unsuccessful probe run: 8.5 slots at 3/4 full, 4.1 at 5/8) each
  // time it meets new frames; 8 / (5/16) + 12 = 37.6 bytes a node just
  // after a growth keeps nodes and edges under 40.
  if (table == nullptr || (edge_count_ + 1) * 8 > table->capacity * 5) {
    if (!GrowEdges()) return 0;
    table = edges_.load(std::memory_order_relaxed);
  }
  uint64_t h = EdgeHash(parent, ip);
  size_t mask = table->capacity - 1;
  size_t j = h >> table->shift;
  for (;; j = (j + 1) & mask) {
    uint64_t e = table->slots[j].load(std::memory_order_relaxed);
    if (e == 0) break;
    if (uint64_t node = EdgeNode(e, h, parent, ip); node != 0) return node;
  }
  uint64_t node = node_count_.load(std::memory_order_relaxed) + 1;
  if (node > kMaxNodes) return 0;
  uint64_t index = node - 1;
  std::atomic<NodeData*>& page_slot = pages_[index / kNodesPerPage];
  NodeData* page = page_slot.load(std::memory_order_relaxed);
  if (page == nullptr) {
    page = static_cast<NodeData*>(PageAlloc(kNodesPerPage * sizeof(NodeData)));
    if (page == nullptr) return 0;
    mapped_bytes_.fetch_add(kNodesPerPage * sizeof(NodeData), std::memory_order_relaxed);
    page_slot.store(page, std::memory_order_release);
  }
  NodeData& d = page[index % kNodesPerPage];
  d.parent = static_cast<uint32_t>(parent);  // < kMaxNodes < 2^32
  std::memcpy(d.ip, &ip, sizeof ip);
  node_count_.store(node, std::memory_order_release);
  // Publishes the node's data: a reader that sees the slot sees it.
  table->slots[j].store((h & kEdgeHashBits) | node, std::memory_order_release);
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
    for (size_t i = hash >> table->shift;; i = (i + 1) & mask) {
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
  // Another thread may have inserted the same stack between our lookup and
  // the lock, or our lookup may have read a table being returned (a
  // growth's miss): the current table is searched again, so a stack has
  // one slot.
  if (table != nullptr) {
    size_t mask = table->capacity - 1;
    for (size_t i = hash >> table->shift;; i = (i + 1) & mask) {
      const StackSlot& slot = table->slots[i];
      uint64_t h = slot.hash.load(std::memory_order_relaxed);
      if (h == 0) break;
      if (h == hash && slot.hash2 == hash2) return node;
    }
  }
  if (table == nullptr || (stack_count_ + 1) * 4 > table->capacity * 3) {
    if (!GrowStacks()) return node;
    table = stacks_.load(std::memory_order_relaxed);
  }
  InsertStack(table, hash, hash2, node);
  ++stack_count_;
  return node;
}

}  // namespace heapsight::preload
