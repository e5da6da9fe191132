// preload/live_table.cc: see live_table.h.
//
// Constraints: no malloc; one shard spin lock per operation; mmap/munmap
// only while growing a shard.
#include "preload/live_table.h"

#include "preload/internal_alloc.h"
#include "preload/mix.h"

namespace heapsight::preload {

uint64_t LiveTable::Hash(uintptr_t address) { return Mix64(address); }

void LiveTable::InsertInto(Slot* slots, size_t capacity, const Slot& slot) {
  size_t mask = capacity - 1;
  for (size_t i = (Hash(slot.address) >> 8) & mask;; i = (i + 1) & mask) {
    if (slots[i].address == 0 || slots[i].address == slot.address) {
      slots[i] = slot;
      return;
    }
  }
}

bool LiveTable::Grow(Shard* shard) {
  size_t capacity = shard->capacity == 0 ? 64 : shard->capacity * 2;
  auto* slots = static_cast<Slot*>(PageAlloc(capacity * sizeof(Slot)));
  if (slots == nullptr) return false;
  for (size_t i = 0; i < shard->capacity; ++i) {
    if (shard->slots[i].address != 0) InsertInto(slots, capacity, shard->slots[i]);
  }
  PageFree(shard->slots, shard->capacity * sizeof(Slot));
  shard->slots = slots;
  shard->capacity = capacity;
  return true;
}

bool LiveTable::Insert(uintptr_t address, const LiveEntry& e) {
  if (address == 0) return false;
  Shard& shard = ShardOf(address);
  SpinLockHolder hold(&shard.lock);
  // Load factor at most 3/8 keeps probe runs short: every insert probes to
  // an empty slot and every remove shifts the rest of its run back, each
  // step a hash and a hard-to-predict branch. Against the earlier 1/2 this
  // saved about 6 ns per event (bench/alloc_bench, 1 thread), for about 30
  // bytes more per live block on average (32-byte slots at a load between
  // 3/16 and 3/8: 85-171 bytes per live block, about 120, instead of 64-128,
  // about 90; docs/performance.md).
  if ((shard.count + 1) * 8 > shard.capacity * 3 && !Grow(&shard)) return false;
  Slot slot{address, e.id, e.size,
            (e.stack << 9) | (uint64_t{e.internal} << 8) | static_cast<uint8_t>(e.api)};
  size_t mask = shard.capacity - 1;
  for (size_t i = (Hash(address) >> 8) & mask;; i = (i + 1) & mask) {
    if (shard.slots[i].address == 0) {
      shard.slots[i] = slot;
      ++shard.count;
      return true;
    }
    if (shard.slots[i].address == address) {  // stale entry: the block was lost to us
      shard.slots[i] = slot;
      return true;
    }
  }
}

bool LiveTable::Remove(uintptr_t address, LiveEntry* out) {
  if (address == 0) return false;
  Shard& shard = ShardOf(address);
  SpinLockHolder hold(&shard.lock);
  if (shard.count == 0) return false;
  size_t mask = shard.capacity - 1;
  size_t i = (Hash(address) >> 8) & mask;
  for (;; i = (i + 1) & mask) {
    if (shard.slots[i].address == 0) return false;
    if (shard.slots[i].address == address) break;
  }
  const Slot& s = shard.slots[i];
  out->id = s.id;
  out->size = s.size;
  out->stack = s.meta >> 9;
  out->internal = (s.meta >> 8) & 1;
  out->api = static_cast<format::Api>(s.meta & 0xff);
  // Backward-shift deletion: move later members of the probe run into the
  // hole so lookups never need tombstones.
  size_t hole = i;
  for (size_t j = (i + 1) & mask; shard.slots[j].address != 0; j = (j + 1) & mask) {
    size_t home = (Hash(shard.slots[j].address) >> 8) & mask;
    // Move j into the hole if its home position is not in (hole, j].
    bool in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!in_range) {
      shard.slots[hole] = shard.slots[j];
      hole = j;
    }
  }
  shard.slots[hole].address = 0;
  --shard.count;
  shard.recent_id[shard.recent_pos % kRecent] = out->id;
  shard.recent[shard.recent_pos++ % kRecent] = address;
  return true;
}

bool LiveTable::RecentlyRemoved(uintptr_t address) {
  uint64_t id;
  return RecentlyRemoved(address, &id);
}

bool LiveTable::RecentlyRemoved(uintptr_t address, uint64_t* id) {
  Shard& shard = ShardOf(address);
  SpinLockHolder hold(&shard.lock);
  // Newest first: the same address may have been freed more than once.
  for (uint32_t k = 1; k <= kRecent; ++k) {
    uint32_t pos = (shard.recent_pos - k) % kRecent;
    if (shard.recent[pos] == address) {
      *id = shard.recent_id[pos];
      return true;
    }
  }
  return false;
}

bool LiveTable::Contains(uintptr_t address) {
  Shard& shard = ShardOf(address);
  SpinLockHolder hold(&shard.lock);
  if (shard.count == 0) return false;
  size_t mask = shard.capacity - 1;
  for (size_t i = (Hash(address) >> 8) & mask;; i = (i + 1) & mask) {
    if (shard.slots[i].address == 0) return false;
    if (shard.slots[i].address == address) return true;
  }
}

size_t LiveTable::Size() {
  size_t n = 0;
  for (Shard& shard : shards_) {
    SpinLockHolder hold(&shard.lock);
    n += shard.count;
  }
  return n;
}

void LiveTable::ForEachUnlocked(void (*fn)(uintptr_t, const LiveEntry&, void*), void* ctx) {
  for (Shard& shard : shards_) {
    for (size_t i = 0; i < shard.capacity; ++i) {
      const Slot& s = shard.slots[i];
      if (s.address == 0) continue;
      LiveEntry e{s.id, s.size, s.meta >> 9, static_cast<format::Api>(s.meta & 0xff),
                  ((s.meta >> 8) & 1) != 0};
      fn(s.address, e, ctx);
    }
  }
}

void LiveTable::LockAll() {
  for (Shard& shard : shards_) shard.lock.Lock();
}
void LiveTable::UnlockAll() {
  for (Shard& shard : shards_) shard.lock.Unlock();
}
void LiveTable::ResetLocksInChild() {
  for (Shard& shard : shards_) shard.lock.ResetInChild();
}

}  // namespace heapsight::preload
