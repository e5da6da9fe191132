// preload/live_table.cc: see live_table.h.
//
// Constraints: no malloc; one shard spin lock per operation; mmap/munmap
// only while a shard grows (the old table's pages are returned in 64 KiB
// pieces as they are emptied).
#include "preload/live_table.h"

#include <cstring>

#include "preload/internal_alloc.h"
#include "preload/mix.h"

namespace heapsight::preload {

__extension__ typedef unsigned __int128 Uint128;

// The hook path's helpers: inlined into Insert/Remove (each call otherwise
// costs a prologue and spills, about 10% of the table's time per event).
#define HS_HOT __attribute__((always_inline)) inline

// A chunk: one cache line, three packed entries. `overflow` counts the
// entries stored beyond this chunk whose probe passed it (255 sticks: such a
// chunk is never again a reason to stop early, which is only slower).
struct LiveTable::Chunk {
  uint8_t overflow;
  uint8_t pad[3];
  unsigned char entries[3][20];
};

// The packed entry (160 bits, three words a:64 b:64 c:32, stored unaligned):
//   a: address >> 3 (44 bits) | api (6 bits, 63 = internal) << 44 |
//      size bits 0-13 << 50
//   b: allocation counter (36 bits) | thread index (14 bits) << 36 |
//      size bits 14-27 << 50
//   c: stack id (28 bits) | size bits 28-31 << 28
// Address field 0 = empty (address 0 is never inserted). The allocation id
// is rebuilt with format::MakeAllocId, so ids keep their format meaning.
struct LiveTableImpl {
  using Shard = LiveTable::Shard;
  using Chunk = LiveTable::Chunk;
  using WideSlot = LiveTable::WideSlot;

  static constexpr int kPerChunk = 3;
  static_assert(sizeof(Chunk) == 64);
  // At most 9/4 entries per chunk (a load of 3/4): at that load a chunk
  // overflows often enough that a miss reads about two cache lines, which
  // are adjacent (the hardware prefetcher fetches them together).
  static constexpr size_t kMaxNum = 9, kMaxDen = 4;
  static constexpr size_t kMinChunks = 64;  // one 4 KiB page
  // Old chunks moved per insert or remove while a shard grows: the new
  // table holds 3/2 as many chunks, so migration (old chunks / 4 operations)
  // ends long before it could need to grow again (after about 9/8 x old
  // chunks inserts); it is finished first if it ever would.
  static constexpr size_t kMigratePerOp = 4;
  static constexpr size_t kUnmapBatch = 64 * 1024;  // old-table bytes per munmap
  static constexpr uint64_t kAddressMask = (uint64_t{1} << 44) - 1;
  static constexpr uint64_t kInternalApi = 63;

  struct Packed {
    uint64_t a, b;
    uint32_t c;
  };

  static uint64_t Hash(uintptr_t address) { return Mix64(address); }

  static bool Fits(uintptr_t address, const LiveEntry& e) {
    auto api = static_cast<uint64_t>(e.api);
    // One branch: every field's bits beyond its packed width, or-ed.
    uint64_t beyond = (address & 7) | (address >> 47) | (e.size >> 32) | (e.stack >> 28) |
                      (e.id >> format::kAllocIdThreadShift >> 14) |
                      (format::AllocIdCounter(e.id) >> 36);
    return beyond == 0 && (e.internal ? api == 0 : api < kInternalApi);
  }
  static bool AddressFits(uintptr_t address) {
    return (address & 7) == 0 && (address >> 47) == 0;
  }

  HS_HOT static void Store(unsigned char* p, uintptr_t address, const LiveEntry& e) {
    uint64_t api = e.internal ? kInternalApi : static_cast<uint64_t>(e.api);
    uint64_t a = (address >> 3) | api << 44 | (e.size & 0x3fff) << 50;
    uint64_t b = format::AllocIdCounter(e.id) | uint64_t{format::AllocIdThread(e.id)} << 36 |
                 ((e.size >> 14) & 0x3fff) << 50;
    auto c = static_cast<uint32_t>(e.stack | ((e.size >> 28) & 0xf) << 28);
    std::memcpy(p, &a, 8);
    std::memcpy(p + 8, &b, 8);
    std::memcpy(p + 16, &c, 4);
  }
  static uint64_t KeyAt(const unsigned char* p) {
    uint64_t a;
    std::memcpy(&a, p, 8);
    return a & kAddressMask;
  }
  HS_HOT static uintptr_t Load(const unsigned char* p, LiveEntry* e) {
    uint64_t a, b;
    uint32_t c;
    std::memcpy(&a, p, 8);
    std::memcpy(&b, p + 8, 8);
    std::memcpy(&c, p + 16, 4);
    uint64_t api = (a >> 44) & 63;
    e->internal = api == kInternalApi;
    e->api = static_cast<format::Api>(e->internal ? 0 : api);
    e->size = (a >> 50) | ((b >> 50) << 14) | (uint64_t{c >> 28} << 28);
    e->stack = c & ((uint32_t{1} << 28) - 1);
    e->id = format::MakeAllocId(static_cast<uint32_t>((b >> 36) & 0x3fff),
                                b & ((uint64_t{1} << 36) - 1));
    return static_cast<uintptr_t>((a & kAddressMask) << 3);
  }

  // One chunk table as probed: chunks [lo, n) exist (an old table being
  // migrated has lost the chunks below its cursor; they were empty, and a
  // probe that would cross them skips them).
  struct View {
    Chunk* chunks;
    size_t n;
    size_t lo;
    size_t Start(uint64_t hash) const {
      size_t home = static_cast<size_t>((static_cast<Uint128>(hash) * n) >> 64);
      return home < lo ? lo : home;
    }
    size_t Next(size_t i) const { return i + 1 == n ? lo : i + 1; }
  };
  static View Current(const Shard& s) { return View{s.chunks, s.nchunks, 0}; }
  static View Old(const Shard& s) { return View{s.old, s.old_nchunks, s.cursor}; }

  // Finds `key` (address >> 3): chunk index and entry slot, or false.
  HS_HOT static bool Find(View v, uint64_t key, uint64_t hash, size_t* ci, int* ei) {
    if (v.n == 0) return false;
    size_t i = v.Start(hash);
    for (size_t steps = v.n - v.lo; steps > 0; --steps, i = v.Next(i)) {
      Chunk& c = v.chunks[i];
      for (int j = 0; j < kPerChunk; ++j) {
        if (KeyAt(c.entries[j]) == key) {
          *ci = i;
          *ei = j;
          return true;
        }
      }
      if (c.overflow == 0) return false;
    }
    return false;
  }

  // The table has room (load below 1) and `address` is not in it.
  static void Place(View v, uintptr_t address, uint64_t hash, const LiveEntry& e) {
    for (size_t i = v.Start(hash);; i = v.Next(i)) {
      Chunk& c = v.chunks[i];
      for (int j = 0; j < kPerChunk; ++j) {
        if (KeyAt(c.entries[j]) == 0) {
          Store(c.entries[j], address, e);
          return;
        }
      }
      if (c.overflow != 255) ++c.overflow;
    }
  }

  // The common insert in one walk: overwrites `key`'s entry if present,
  // else stores it in the first free slot from its home chunk. Returns true
  // if an entry was added. The table has room.
  HS_HOT static bool PlaceOrReplace(View v, uintptr_t address, uint64_t hash,
                             const LiveEntry& e) {
    uint64_t key = address >> 3;
    size_t start = v.Start(hash), i = start, free_chunk = v.n;
    int free_slot = 0;
    for (size_t steps = v.n - v.lo; steps > 0; --steps, i = v.Next(i)) {
      Chunk& c = v.chunks[i];
      for (int j = 0; j < kPerChunk; ++j) {
        uint64_t k = KeyAt(c.entries[j]);
        if (k == key) {  // stale entry: the block's free went around us
          Store(c.entries[j], address, e);
          return false;
        }
        if (k == 0 && free_chunk == v.n) {
          free_chunk = i;
          free_slot = j;
        }
      }
      if (c.overflow == 0) break;
    }
    if (free_chunk == v.n) {  // every chunk of the probe is full
      Place(v, address, hash, e);
      return true;
    }
    Store(v.chunks[free_chunk].entries[free_slot], address, e);
    // The chunks before the free one were full: the entry went past them.
    for (size_t k = start; k != free_chunk; k = v.Next(k)) {
      if (v.chunks[k].overflow != 255) ++v.chunks[k].overflow;
    }
    return true;
  }

  // Empties the entry and takes it off the overflow counts of the chunks
  // its probe passed (those still present).
  HS_HOT static void Erase(View v, uint64_t hash, size_t ci, int ei) {
    std::memset(v.chunks[ci].entries[ei], 0, 20);
    for (size_t i = v.Start(hash); i != ci; i = v.Next(i)) {
      if (v.chunks[i].overflow != 255) --v.chunks[i].overflow;
    }
  }

  HS_HOT static bool RemoveChunked(View v, uintptr_t address, uint64_t hash, LiveEntry* out) {
    size_t ci;
    int ei;
    if (!Find(v, address >> 3, hash, &ci, &ei)) return false;
    if (out != nullptr) Load(v.chunks[ci].entries[ei], out);
    Erase(v, hash, ci, ei);
    return true;
  }

  // --- growth ---

  static size_t Bytes(size_t nchunks) { return nchunks * sizeof(Chunk); }

  static void FreeOld(Shard* s) {
    PageFree(reinterpret_cast<char*>(s->old) + s->old_unmapped,
             Bytes(s->old_nchunks) - s->old_unmapped);
    s->old = nullptr;
    s->old_nchunks = s->old_count = s->cursor = s->old_unmapped = 0;
  }

  // Moves up to `n` chunks of the old table into the current one, in order.
  static void Migrate(Shard* s, size_t n) {
    View cur = Current(*s);
    for (; n > 0 && s->old != nullptr; --n) {
      Chunk& c = s->old[s->cursor];
      for (int j = 0; j < kPerChunk; ++j) {
        if (KeyAt(c.entries[j]) == 0) continue;
        LiveEntry e;
        uintptr_t address = Load(c.entries[j], &e);
        Place(cur, address, Hash(address), e);
        --s->old_count;
        ++s->count;
      }
      ++s->cursor;
      if (s->cursor == s->old_nchunks) {
        FreeOld(s);
        return;
      }
      // Whole 64 KiB pieces below the cursor are empty and never read again.
      size_t done = Bytes(s->cursor) / kUnmapBatch * kUnmapBatch;
      if (done > s->old_unmapped) {
        PageFree(reinterpret_cast<char*>(s->old) + s->old_unmapped, done - s->old_unmapped);
        s->old_unmapped = done;
      }
    }
  }

  // The next size: 3/2 as many chunks, rounded up to whole pages (64
  // chunks). Homes are multiply-shift, so any count keeps the hash order
  // that migration relies on; a step of 3/2 instead of 2 keeps the load
  // between 1/2 and 3/4 (28-43 bytes per live block instead of 28-57), for
  // one more move per inserted block while a shard grows.
  static size_t GrownChunks(size_t n) {
    return (n * 3 / 2 + kMinChunks - 1) / kMinChunks * kMinChunks;
  }

  // Makes room for one more packed entry. False if no memory.
  static bool Reserve(Shard* s) {
    if ((s->count + s->old_count + 1) * kMaxDen <= s->nchunks * kMaxNum) return true;
    if (s->old != nullptr) Migrate(s, s->old_nchunks);  // finish the last growth first
    size_t n = s->nchunks == 0 ? kMinChunks : GrownChunks(s->nchunks);
    auto* chunks = static_cast<Chunk*>(PageAlloc(Bytes(n)));
    if (chunks == nullptr) return false;
    s->old = s->chunks;
    s->old_nchunks = s->nchunks;
    s->old_count = s->count;
    s->cursor = 0;
    s->old_unmapped = 0;
    s->chunks = chunks;
    s->nchunks = n;
    s->count = 0;
    if (s->old_nchunks == 0) {
      s->old = nullptr;
    } else {
      Migrate(s, kMigratePerOp);
    }
    return true;
  }

  // --- side table for entries the packed form cannot hold ---

  static uint64_t Meta(const LiveEntry& e) {
    return (e.stack << 9) | (uint64_t{e.internal} << 8) | static_cast<uint8_t>(e.api);
  }
  static LiveEntry FromWide(const WideSlot& w) {
    return LiveEntry{w.id, w.size, w.meta >> 9, static_cast<format::Api>(w.meta & 0xff),
                     ((w.meta >> 8) & 1) != 0};
  }
  static size_t WideHome(uint64_t hash, size_t capacity) { return (hash >> 8) & (capacity - 1); }

  static bool WideFind(const Shard& s, uintptr_t address, uint64_t hash, size_t* index) {
    if (s.wide_count == 0) return false;
    size_t mask = s.wide_capacity - 1;
    for (size_t i = WideHome(hash, s.wide_capacity);; i = (i + 1) & mask) {
      if (s.wide[i].address == 0) return false;
      if (s.wide[i].address == address) {
        *index = i;
        return true;
      }
    }
  }

  static void WidePlace(WideSlot* slots, size_t capacity, const WideSlot& slot) {
    size_t mask = capacity - 1;
    for (size_t i = WideHome(Hash(slot.address), capacity);; i = (i + 1) & mask) {
      if (slots[i].address == 0) {
        slots[i] = slot;
        return;
      }
    }
  }

  // `address` is not in the side table.
  static bool WideInsert(Shard* s, uintptr_t address, const LiveEntry& e) {
    if ((s->wide_count + 1) * 2 > s->wide_capacity) {
      size_t capacity = s->wide_capacity == 0 ? 64 : s->wide_capacity * 2;
      auto* slots = static_cast<WideSlot*>(PageAlloc(capacity * sizeof(WideSlot)));
      if (slots == nullptr) return false;
      for (size_t i = 0; i < s->wide_capacity; ++i) {
        if (s->wide[i].address != 0) WidePlace(slots, capacity, s->wide[i]);
      }
      PageFree(s->wide, s->wide_capacity * sizeof(WideSlot));
      s->wide = slots;
      s->wide_capacity = capacity;
    }
    WidePlace(s->wide, s->wide_capacity, WideSlot{address, e.id, e.size, Meta(e)});
    ++s->wide_count;
    return true;
  }

  // Backward-shift deletion: later members of the probe run move into the
  // hole, so lookups never need tombstones.
  static void WideErase(Shard* s, size_t i) {
    size_t mask = s->wide_capacity - 1;
    size_t hole = i;
    for (size_t j = (i + 1) & mask; s->wide[j].address != 0; j = (j + 1) & mask) {
      size_t home = WideHome(Hash(s->wide[j].address), s->wide_capacity);
      // Move j into the hole if its home position is not in (hole, j].
      bool in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (!in_range) {
        s->wide[hole] = s->wide[j];
        hole = j;
      }
    }
    s->wide[hole].address = 0;
    --s->wide_count;
  }

  // --- the shard operations ---

  // Removes `address` from wherever it is (current table, old table, side
  // table) into *out (if not null).
  HS_HOT static bool RemoveAny(Shard* s, uintptr_t address, uint64_t hash, LiveEntry* out) {
    if (AddressFits(address)) {
      if (RemoveChunked(Current(*s), address, hash, out)) {
        --s->count;
        return true;
      }
      if (s->old != nullptr && RemoveChunked(Old(*s), address, hash, out)) {
        --s->old_count;
        return true;
      }
    }
    size_t i;
    if (!WideFind(*s, address, hash, &i)) return false;
    if (out != nullptr) *out = FromWide(s->wide[i]);
    WideErase(s, i);
    return true;
  }

  static bool Contains(const Shard& s, uintptr_t address, uint64_t hash) {
    size_t ci, wi;
    int ei;
    if (AddressFits(address)) {
      if (Find(Current(s), address >> 3, hash, &ci, &ei)) return true;
      if (s.old != nullptr && Find(Old(s), address >> 3, hash, &ci, &ei)) return true;
    }
    return WideFind(s, address, hash, &wi);
  }

  // --- the counting filter (live_table.h) ---

  static constexpr size_t kFilterSlots = size_t{1} << LiveTable::kFilterBits;
  static constexpr uint8_t kStuck = 255;

  // One more entry in `address`'s slot; 255 sticks.
  static void Mark(std::atomic<uint8_t>* filter, uintptr_t address) {
    std::atomic<uint8_t>& c = filter[LiveTable::FilterSlot(address)];
    uint8_t v = c.load(std::memory_order_relaxed);
    while (v != kStuck && !c.compare_exchange_weak(v, static_cast<uint8_t>(v + 1),
                                                   std::memory_order_relaxed)) {
    }
  }
  // One entry fewer; a stuck slot stays stuck (its true count is unknown).
  static void Unmark(std::atomic<uint8_t>* filter, uintptr_t address) {
    std::atomic<uint8_t>& c = filter[LiveTable::FilterSlot(address)];
    uint8_t v = c.load(std::memory_order_relaxed);
    while (v != kStuck && v != 0 &&
           !c.compare_exchange_weak(v, static_cast<uint8_t>(v - 1), std::memory_order_relaxed)) {
    }
  }

  // Drops the internal entries of one chunk table (entries never move:
  // Erase only empties the slot and fixes overflow counts) and counts the
  // others in the filter.
  static void FilterChunks(Shard* s, View v, bool old, std::atomic<uint8_t>* filter) {
    for (size_t i = v.lo; i < v.n; ++i) {
      for (int j = 0; j < kPerChunk; ++j) {
        if (KeyAt(v.chunks[i].entries[j]) == 0) continue;
        LiveEntry e;
        uintptr_t address = Load(v.chunks[i].entries[j], &e);
        if (!e.internal) {
          Mark(filter, address);
          continue;
        }
        Erase(v, Hash(address), i, j);
        --(old ? s->old_count : s->count);
      }
    }
  }

  static void FilterShard(Shard* s, std::atomic<uint8_t>* filter) {
    FilterChunks(s, Current(*s), false, filter);
    if (s->old != nullptr) FilterChunks(s, Old(*s), true, filter);
    // Backward-shift deletion may move a later entry into slot i: look at
    // i again after an erase.
    for (size_t i = 0; i < s->wide_capacity;) {
      WideSlot& w = s->wide[i];
      if (w.address != 0 && FromWide(w).internal) {
        WideErase(s, i);
        continue;
      }
      if (w.address != 0) Mark(filter, w.address);
      ++i;
    }
  }

  static void ForEach(View v, void (*fn)(uintptr_t, const LiveEntry&, void*), void* ctx) {
    for (size_t i = v.lo; i < v.n; ++i) {
      for (int j = 0; j < kPerChunk; ++j) {
        if (KeyAt(v.chunks[i].entries[j]) == 0) continue;
        LiveEntry e;
        uintptr_t address = Load(v.chunks[i].entries[j], &e);
        fn(address, e, ctx);
      }
    }
  }
};

HS_HOT LiveTable::Shard& LiveTable::ShardOf(uintptr_t address) {
  return shards_[Mix64(address >> kRegionShift) & (kShards - 1)];
}

bool LiveTable::Insert(uintptr_t address, const LiveEntry& entry) {
  using Impl = LiveTableImpl;
  // A copy: stores into the chunks (through unsigned char) could alias
  // `entry`, and the compiler would reload its fields after each one.
  const LiveEntry e = entry;
  if (address == 0) return false;
  uint64_t hash = Impl::Hash(address);
  Shard& shard = ShardOf(address);
  SpinLockHolder hold(&shard.lock);
  // Read under the shard lock: EnableFilter publishes it under every lock,
  // so this insert is either counted by it or counts itself.
  std::atomic<uint8_t>* filter = filter_.load(std::memory_order_relaxed);
  if (shard.old != nullptr) Impl::Migrate(&shard, Impl::kMigratePerOp);
  bool fits = Impl::Fits(address, e);
  if (filter == nullptr && fits && shard.old == nullptr && shard.wide_count == 0 &&
      (shard.count + 1) * Impl::kMaxDen <= shard.nchunks * Impl::kMaxNum) {
    // The common case: one table, with room.
    if (Impl::PlaceOrReplace(Impl::Current(shard), address, hash, e)) ++shard.count;
    return true;
  }
  // A stale entry (the block's free went around us) is replaced.
  if (Impl::RemoveAny(&shard, address, hash, nullptr) && filter != nullptr) {
    Impl::Unmark(filter, address);
  }
  // Sampled mode keeps no internal entries (live_table.h).
  if (filter != nullptr && e.internal) return true;
  bool added;
  if (!fits) {
    added = Impl::WideInsert(&shard, address, e);
  } else if ((added = Impl::Reserve(&shard))) {
    Impl::Place(Impl::Current(shard), address, hash, e);
    ++shard.count;
  }
  // Counted before the block is returned to the program (the caller
  // inserts first), so no free of it can find its slot at 0.
  if (added && filter != nullptr) Impl::Mark(filter, address);
  return added;
}

bool LiveTable::Remove(uintptr_t address, LiveEntry* out) {
  using Impl = LiveTableImpl;
  if (address == 0) return false;
  uint64_t hash = Impl::Hash(address);
  Shard& shard = ShardOf(address);
  SpinLockHolder hold(&shard.lock);
  if (shard.old != nullptr) Impl::Migrate(&shard, Impl::kMigratePerOp);
  if (!Impl::RemoveAny(&shard, address, hash, out)) return false;
  // Uncounted only once the entry is gone (under the same lock).
  if (std::atomic<uint8_t>* filter = filter_.load(std::memory_order_relaxed); filter != nullptr) {
    Impl::Unmark(filter, address);
  }
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
  if (address == 0) return false;
  uint64_t hash = LiveTableImpl::Hash(address);
  Shard& shard = ShardOf(address);
  SpinLockHolder hold(&shard.lock);
  return LiveTableImpl::Contains(shard, address, hash);
}

size_t LiveTable::Size() {
  size_t n = 0;
  for (Shard& shard : shards_) {
    SpinLockHolder hold(&shard.lock);
    n += shard.count + shard.old_count + shard.wide_count;
  }
  return n;
}

size_t LiveTable::MappedBytes() {
  using Impl = LiveTableImpl;
  constexpr size_t kPage = 4096;
  auto pages = [](size_t bytes) { return (bytes + kPage - 1) / kPage * kPage; };
  size_t n = sizeof(LiveTable) + FilterBytes();
  for (Shard& shard : shards_) {
    SpinLockHolder hold(&shard.lock);
    n += pages(Impl::Bytes(shard.nchunks)) + pages(shard.wide_capacity * sizeof(WideSlot));
    if (shard.old != nullptr) n += pages(Impl::Bytes(shard.old_nchunks)) - shard.old_unmapped;
  }
  return n;
}

void LiveTable::ForEachUnlocked(void (*fn)(uintptr_t, const LiveEntry&, void*), void* ctx) {
  using Impl = LiveTableImpl;
  for (Shard& shard : shards_) {
    Impl::ForEach(Impl::Current(shard), fn, ctx);
    if (shard.old != nullptr) Impl::ForEach(Impl::Old(shard), fn, ctx);
    for (size_t i = 0; i < shard.wide_capacity; ++i) {
      if (shard.wide[i].address != 0) fn(shard.wide[i].address, Impl::FromWide(shard.wide[i]), ctx);
    }
  }
}

bool LiveTable::EnableFilter() {
  using Impl = LiveTableImpl;
  if (filter_.load() != nullptr) return true;
  // Zero-filled and touched only where a slot is marked.
  auto* filter = static_cast<std::atomic<uint8_t>*>(PageAlloc(Impl::kFilterSlots));
  if (filter == nullptr) return false;
  LockAll();
  for (Shard& shard : shards_) Impl::FilterShard(&shard, filter);
  // Release: a lock-free reader (SurelyAbsent) that sees the filter sees
  // its counts. Inserts and removes read it under their shard lock.
  filter_.store(filter, std::memory_order_release);
  UnlockAll();
  return true;
}

size_t LiveTable::FilterBytes() const {
  return filter_.load() != nullptr ? LiveTableImpl::kFilterSlots : 0;
}

size_t LiveTable::FilterMarkedSlots() const {
  const std::atomic<uint8_t>* filter = filter_.load();
  if (filter == nullptr) return 0;
  size_t n = 0;
  for (size_t i = 0; i < LiveTableImpl::kFilterSlots; ++i) {
    n += filter[i].load(std::memory_order_relaxed) != 0;
  }
  return n;
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

#undef HS_HOT

}  // namespace heapsight::preload
