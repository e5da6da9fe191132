// preload/live_table.h: the preload's map of live blocks, address -> entry.
//
// Sharded by address region (1024 shards), each shard an open-addressing
// table (linear probing, load at most 3/8, backward-shift deletion, no
// tombstones) in mmap'ed memory under its own spin lock; a shard grows under
// its lock. Two threads touching different shards never contend, so there is
// no global lock per event.
//
// The shard is picked by the block's 64 KiB region (address >> 16), not by a
// hash of the whole address: allocators hand each thread blocks from its own
// arena or span (glibc arenas, tcmalloc/jemalloc thread caches), so a thread
// keeps working in a few shards of its own, and their locks and slots stay
// in its core's cache instead of moving between cores on every event (with
// per-address hashing, two threads touched every shard: +15% CPU per event
// with 2 threads, bench/alloc_bench). Blocks freed by another thread, or
// threads sharing an arena, still work: they just share a shard lock. Within
// a shard the slot is picked by a hash of the whole address.
//
// Entries marked `internal` are blocks allocated while heapsight itself was
// running (the reentry guard was set) or before tracing started: their free is
// not recorded, and it is not a bad free either.
//
// Constraints: never calls malloc (memory from PageAlloc); no syscalls on the
// common path (mmap/munmap only when a shard grows). Not async-signal-safe.
// LockAll/UnlockAll exist for fork.
#ifndef HEAPSIGHT_PRELOAD_LIVE_TABLE_H_
#define HEAPSIGHT_PRELOAD_LIVE_TABLE_H_

#include <cstddef>
#include <cstdint>

#include "format/trace_format.h"
#include "preload/spin_lock.h"

namespace heapsight::preload {

struct LiveEntry {
  uint64_t id = 0;
  uint64_t size = 0;
  uint64_t stack = 0;
  format::Api api = format::Api::kUnknown;
  bool internal = false;
};

class LiveTable {
 public:
  static constexpr int kShards = 1024;
  static constexpr int kRegionShift = 16;

  constexpr LiveTable() = default;

  // Inserts or overwrites the entry of `address`. Returns false only if
  // memory for growing the shard could not be mapped (the entry is lost).
  bool Insert(uintptr_t address, const LiveEntry& entry);
  // Removes the entry of `address` into *out. False if absent.
  bool Remove(uintptr_t address, LiveEntry* out);
  bool Contains(uintptr_t address);
  // True if `address` is among the last kRecent addresses removed from its
  // shard (and not live): a cheap double-free hint for a pointer Remove
  // did not find.
  bool RecentlyRemoved(uintptr_t address);
  // Same, and *id receives the removed block's allocation id (leak_check's
  // double-free report names the block's allocation).
  bool RecentlyRemoved(uintptr_t address, uint64_t* id);

  size_t Size();  // sum over shards; for tests
  // Calls fn(address, entry, ctx) for every entry. Caller must hold LockAll
  // or otherwise know no thread mutates the table (fork child).
  void ForEachUnlocked(void (*fn)(uintptr_t, const LiveEntry&, void*), void* ctx);

  void LockAll();
  void UnlockAll();
  void ResetLocksInChild();

 private:
  struct Slot {
    uint64_t address;  // 0 = empty
    uint64_t id;
    uint64_t size;
    uint64_t meta;  // stack << 9 | internal << 8 | api
  };
  static constexpr int kRecent = 16;
  struct alignas(64) Shard {
    SpinLock lock;
    uint32_t recent_pos = 0;
    Slot* slots = nullptr;
    size_t capacity = 0;  // power of two
    size_t count = 0;
    uint64_t recent[kRecent] = {};  // last removed addresses (ring)
    uint64_t recent_id[kRecent] = {};  // their allocation ids
  };

  static uint64_t Hash(uintptr_t address);
  Shard& ShardOf(uintptr_t address) {
    return shards_[Hash(address >> kRegionShift) & (kShards - 1)];
  }
  static bool Grow(Shard* shard);
  static void InsertInto(Slot* slots, size_t capacity, const Slot& slot);

  Shard shards_[kShards];
};

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_LIVE_TABLE_H_
