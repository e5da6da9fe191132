// preload/node_edge_cache.h: a thread's recent stack-table edges
// (parent node, ip) -> node, in front of the shared table's.
//
// The unwind cache (unwind_cache.h) splices the frames it stepped onto a
// memo's node: one StackTable edge lookup a frame (StackTable::Extend). On a
// program with many stacks that table is big (cc1plus -O2 on
// bench/compile_workload.cc: 532,037 nodes, a 48 MiB edge table), and each
// lookup is a cache and TLB miss, a chain of them per event (each probe
// needs the node the previous one found): perf put 12% of that run's CPU
// time in FindEdge, ~130 ns a stepped frame. The same few hundred edges
// come back event after event (the allocation sites and their callers), so
// a small direct-mapped copy of the ones the thread used last answers most
// lookups from memory that stays cached.
//
// Exact: the stack table never removes or changes an edge, so a copied
// edge stays true for the life of the table; the owner clears this cache
// when it is used with another table (tests). A slot holds one edge or is
// empty (node 0: no edge leads to node 0).
//
// Constraints: plain memory inside the owner (zero-filled = empty), no
// locks, no calls, no malloc; one thread.
#ifndef HEAPSIGHT_PRELOAD_NODE_EDGE_CACHE_H_
#define HEAPSIGHT_PRELOAD_NODE_EDGE_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "preload/written_pages.h"

namespace heapsight::preload {

class NodeEdgeCache {
 public:
  // 1,024 slots (24 KiB per thread, touched only as edges land there).
  // cc1plus -O2 (3.06 M events, 8.09 M stepped frames): 34% of the
  // stepped frames' edges found here with 1,024 slots, 54% with 4,096,
  // 71% with 16,384; the CPU time did not tell the sizes apart (the
  // edges found here are the ones likely cached anyway), so the smallest.
  // Its other use: Extend hands back every frame's node, which Record read
  // back from the table before (StackTable::Node, 1.5% of that run).
  static constexpr int kSlotBits = 10;
  static constexpr size_t kSlots = size_t{1} << kSlotBits;

  // The node of edge (parent, ip), or 0 if this cache does not hold it.
  uint64_t Find(uint64_t parent, uintptr_t ip) {
    Slot& s = slots_[SlotOf(parent, ip)];
    written_.BeforeRead(slots_, &s);  // a page's first access a write: written_pages.h
    return s.parent == parent && s.ip == ip ? s.node : 0;
  }
  // Edge (parent, ip) -> node (not 0) exists in the table.
  void Put(uint64_t parent, uintptr_t ip, uint64_t node) {
    Slot& s = slots_[SlotOf(parent, ip)];
    s.parent = parent;
    s.ip = ip;
    s.node = node;
  }
  void Clear() { std::memset(slots_, 0, sizeof(slots_)); }

 private:
  struct Slot {
    uint64_t parent;
    uintptr_t ip;
    uint64_t node;  // 0: empty
  };
  // The top bits of a multiplicative hash of both (a node's children differ
  // in ip, a call site's parents in node).
  static size_t SlotOf(uint64_t parent, uintptr_t ip) {
    return static_cast<size_t>(((parent * 0xff51afd7ed558ccdULL) ^ ip) * 0x9e3779b97f4a7c15ULL >>
                               (64 - kSlotBits));
  }

  Slot slots_[kSlots];
  WrittenPages<sizeof(Slot) * kSlots> written_;
};

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_NODE_EDGE_CACHE_H_
