// preload/live_table.cc: see live_table.h.
//
// Constraints: no malloc; one shard spin lock per operation, always inside
// the thread's table-op marker (defer_zone.h: a signal handler's hook
// nested in the operation never takes a shard lock); mmap, munmap,
// madvise (populate) and process_madvise only while a shard resizes (the
// old table's pages are handed back in 64 KiB pieces as they are emptied,
// and returned in batches through a process-wide queue whose lock is only
// ever tried, never waited for, under a shard lock: see Retire).
#include "preload/live_table.h"

#include <cstring>

#include "preload/internal_alloc.h"
#include "preload/mix.h"
#include "preload/defer_zone.h"

namespace heapsight::preload {

constinit thread_local int t_defer_zone __attribute__((tls_model("initial-exec"))) = 0;

// The hook path's helpers: inlined into Insert/Remove (each call otherwise
// costs a prologue and spills, about 10% of the table's time per event).
#define HS_HOT __attribute__((always_inline)) inline

// The inverse of an odd number mod 2^64 (Newton's iteration; each step
// doubles the correct low bits).
constexpr uint64_t InverseOf(uint64_t a) {
  uint64_t x = a;
  for (int i = 0; i < 6; ++i) x *= 2 - a * x;
  return x;
}

// A chunk: one cache line, four packed 16-byte entries (words lo, hi).
struct LiveTable::Chunk {
  uint64_t w[8];
};

namespace {

// The queue of old tables to return (LiveTableImpl::Retire), process-wide.
constexpr size_t kRetireQueueRanges = 64;
struct RetireQueue {
  SpinLock lock;
  size_t n = 0;
  size_t bytes = 0;  // written under `lock`; Memory() reads it without
  PageRange ranges[kRetireQueueRanges] = {};
};
constinit RetireQueue g_retired;
// System calls that returned old tables, and ranges they returned
// (HEAPSIGHT_STATS, tests).
constinit std::atomic<size_t> g_release_calls{0};
constinit std::atomic<size_t> g_released_ranges{0};

}  // namespace

// The packed entry (128 bits, two words; the address is not stored, see
// live_table.h):
//   lo: tag (5 bits: 0 = empty, else 1 + the distance in chunks from the
//       entry's home chunk) | the hash's low 29 bits << 5 |
//       api (5 bits, 31 = internal) << 34 | stack id (24 bits) << 39 |
//       one bit of the chunk's overflow count << 63
//   hi: allocation counter (36 bits) | thread index (14 bits) << 36 |
//       size (14 bits) << 50
// The allocation id is rebuilt with format::MakeAllocId, so ids keep their
// format meaning. Tag and hash bits are the entry's key within its chunk:
// equal keys in one chunk mean the same home and hash; a probe compares
// the low 32 bits first (one instruction with the load) and the other two
// only when those match. Bit 63 of the four
// slots (empty ones too) is the chunk's overflow count: how many entries
// stored beyond the chunk passed it on their way from home (15 sticks:
// such a chunk is never again a reason to stop early, which is only
// slower; a resize counts afresh). A lookup stops at the first chunk
// nobody passed, and deletion needs no tombstones and moves nothing.
struct LiveTableImpl {
  using Shard = LiveTable::Shard;
  using Chunk = LiveTable::Chunk;
  using WideSlot = LiveTable::WideSlot;

  static constexpr int kPerChunk = 4;
  static_assert(sizeof(Chunk) == 64);
  static_assert(sizeof(Shard) == 384 && offsetof(Shard, old) < 64);
  static constexpr int kTagBits = 5;
  static constexpr uint64_t kTagMask = (uint64_t{1} << kTagBits) - 1;
  static constexpr size_t kMaxDistance = kTagMask - 1;  // 30 chunks
  // Spare chunks past the last home: a probe never wraps around.
  static constexpr size_t kTail = kMaxDistance;
  static constexpr int kHashBits = 34;
  static constexpr uint64_t kHashMask = (uint64_t{1} << kHashBits) - 1;
  static constexpr int kLowBits = 29;
  static constexpr uint64_t kLowMask = (uint64_t{1} << kLowBits) - 1;
  static constexpr int kLowShift = kTagBits;
  static constexpr uint64_t kKeyMask = kTagMask | kLowMask << kLowShift;
  static constexpr int kApiShift = kLowShift + kLowBits, kStackShift = kApiShift + 5;
  static constexpr uint64_t kInternalApi = 31;
  static constexpr int kSizeBits = 14, kStackBits = 24, kThreadBits = 14, kCounterBits = 36;
  static_assert(kStackShift + kStackBits == 63);
  static constexpr uint64_t kOverflowBit = uint64_t{1} << 63;
  // Two pages: 98 homes, so a home covers at most 2^34 / 64 = 2^28 hashes
  // and 29 low bits (one more than the span) tell which hash of the span
  // the entry has (Rebuild below).
  static constexpr size_t kMinChunks = 128;
  static_assert(kMinChunks - kTail >= (size_t{1} << (kHashBits - kLowBits + 1)));
  static constexpr size_t kPageChunks = 64;
  // Old chunks moved per insert or remove while a shard resizes: growth
  // gives room for 7/8 x 4 x 1/4 = 7/8 x old chunks inserts before the next
  // one, migration takes old chunks / 8 operations (it is finished first if
  // a growth ever comes sooner). Shards grow at about the same time (the
  // hash spreads blocks evenly), so the shorter a migration, the fewer
  // shards hold an old table at once: at 4 per operation, a 2 million
  // block program ended with 286 of 1,024 shards mid-migration.
  static constexpr size_t kMigratePerOp = 8;
  // Old-table bytes per munmap. Each munmap of a process with a second
  // thread (heapsight's writer) flushes the other cores' TLBs by
  // interrupt: in a VM that is the dearest part of a resize (python's dict
  // build spent a quarter of its CPU in munmap's TLB flushes with 16 KiB
  // pieces). 64 KiB: a table up to that size goes back in one call when
  // its migration ends, a larger one as it goes (a 400 KiB table in 7
  // calls, not 25), holding at most 64 KiB of moved chunks meanwhile.
  static constexpr size_t kUnmapBatch = 64 * 1024;
  // Tables below this many chunks (32 KiB) grow by doubling (up to it),
  // tables up to it shrink straight to the smallest table (8 KiB) once
  // that would be at most half full; larger ones grow by 5/4 and shrink to
  // a load of 4/5 (see Reserve and SetThresholds). A shard of a program with a few hundred
  // thousand to a million live blocks lives at these sizes, where whole
  // pages made each 5/4 step a one-page step: python's 200,000-entry dict
  // resized each shard 7-8 times on the way up (8, 12, 16, 20, 24, 28,
  // 32 KiB...) and again on the way down (17k munmaps, 10k mmaps). The cost is memory where it is
  // least: a 32 KiB table holds 395 to 1,687 entries (83 to 19 bytes
  // each; 41 right after it doubled from 16 KiB), so the 24-byte bound
  // holds from 40 KiB tables on, and below it a shard maps at most 32 KiB
  // (32 MiB for all 1,024 shards).
  static constexpr size_t kSmallChunks = 512;
  // Tables up to this size shrink in one go (MaybeShrink).
  static constexpr size_t kShrinkAtOnce = 64 * 1024;
  // New-table bytes made resident per system call (PagePopulate), ahead of
  // the migration: a table up to this size at once, when it is mapped.
  static constexpr size_t kPopulateWindow = 64 * 1024;

  // --- hashing: two bijections, so the address can be rebuilt ---

  static constexpr uint64_t kRegionMask = (uint64_t{1} << 31) - 1;
  static constexpr uint64_t kM1 = 0x9E3779B97F4A7C15ull, kM2 = 0xbf58476d1ce4e5b9ull;
  static constexpr uint64_t kM1Inv = InverseOf(kM1), kM2Inv = InverseOf(kM2);
  static_assert(kM1 * kM1Inv == 1 && kM2 * kM2Inv == 1);

  // The region (address bits 16-46) mixed over 31 bits, invertibly: the
  // first xor-shift folds the high bits down, the multiply (by an odd
  // number, invertible mod 2^31) carries every low bit up, and the last
  // xor-shift brings product bits 16-25 into the shard's 10 bits, so
  // regions 64 MiB apart (glibc's thread arenas) land in different shards.
  // Xor-shifts by 16 are their own inverse on 31 bits.
  HS_HOT static uint64_t MixRegion(uint64_t x) {
    x &= kRegionMask;
    x ^= x >> 16;
    x = (x * kM1) & kRegionMask;
    return x ^ (x >> 16);
  }
  static uint64_t UnmixRegion(uint64_t x) {
    x ^= x >> 16;
    x = (x * kM1Inv) & kRegionMask;
    return x ^ (x >> 16);
  }
  // The 34-bit key (mixed region bits above the shard's 10, then the 8-byte
  // offset in the region) mixed the same way, xor-shift by 17 then
  // multiply: a home is picked by the product's top bits, which every key
  // bit reaches (blocks at even steps in a region get evenly spread homes,
  // as a Weyl sequence). The low bits kept in the entry need no mixing.
  HS_HOT static uint64_t MixKey(uint64_t x) {
    x ^= x >> 17;
    return (x * kM2) & kHashMask;
  }
  static uint64_t UnmixKey(uint64_t x) {
    x = (x * kM2Inv) & kHashMask;
    return x ^ (x >> 17);
  }
  // `mixed` = MixRegion(address >> 16); `address` fits (AddressFits).
  HS_HOT static uint64_t HashOf(uintptr_t address, uint64_t mixed) {
    uint64_t key = (mixed >> 10) << 13 | ((address >> 3) & 0x1fff);
    return MixKey(key);
  }
  static uintptr_t AddressOf(size_t shard, uint64_t hash) {
    uint64_t key = UnmixKey(hash);
    uint64_t region = UnmixRegion((key >> 13) << 10 | shard);
    return static_cast<uintptr_t>(region << 16 | (key & 0x1fff) << 3);
  }
  // The side table's hash (any address).
  static uint64_t WideHash(uintptr_t address) { return Mix64(address); }

  // The entry's fields fit the packed form (the address is checked apart,
  // by AddressFits). One branch: every field's bits beyond its packed
  // width, or-ed; the api must be below 31, or 0 if internal.
  HS_HOT static bool Fits(const LiveEntry& e) {
    constexpr uint64_t kIdBeyond =
        ~((uint64_t{1} << kCounterBits) - 1) &
        ~(((uint64_t{1} << kThreadBits) - 1) << format::kAllocIdThreadShift);
    static_assert(format::kAllocIdThreadShift >= kCounterBits);
    auto api = static_cast<uint64_t>(e.api);
    uint64_t code = e.internal ? kInternalApi + api : api;
    uint64_t beyond = (e.size >> kSizeBits) | (e.stack >> kStackBits) | (e.id & kIdBeyond);
    return beyond == 0 && code < kInternalApi + e.internal;
  }
  // 8-aligned and below 2^47: one mask, one test.
  HS_HOT static bool AddressFits(uintptr_t address) {
    return (address & (~((uint64_t{1} << 47) - 1) | 7)) == 0;
  }

  // The entry's words but the tag and hash bits.
  struct Payload {
    uint64_t lo, hi;
  };
  HS_HOT static Payload Pack(const LiveEntry& e) {
    uint64_t api = e.internal ? kInternalApi : static_cast<uint64_t>(e.api);
    return Payload{api << kApiShift | e.stack << kStackShift,
                   format::AllocIdCounter(e.id) | uint64_t{format::AllocIdThread(e.id)} << 36 |
                       e.size << 50};
  }
  HS_HOT static void Unpack(uint64_t lo, uint64_t hi, LiveEntry* e) {
    uint64_t api = (lo >> kApiShift) & 31;
    e->internal = api == kInternalApi;
    e->api = static_cast<format::Api>(e->internal ? 0 : api);
    e->stack = (lo >> kStackShift) & ((uint64_t{1} << kStackBits) - 1);
    e->size = hi >> 50;
    e->id = format::MakeAllocId(static_cast<uint32_t>((hi >> 36) & 0x3fff),
                                hi & ((uint64_t{1} << kCounterBits) - 1));
  }

  // One chunk table as probed: `n` homes, `end` chunks; chunks [lo, end)
  // exist (an old table being migrated has lost the chunks below its
  // cursor; a probe starts at lo at the earliest).
  struct View {
    Chunk* chunks;
    size_t n;
    size_t lo;
    size_t end;
    size_t Home(uint64_t hash) const { return static_cast<size_t>((hash * n) >> kHashBits); }
    // The smallest hash whose home is `home`.
    uint64_t First(size_t home) const {
      return ((static_cast<uint64_t>(home) << kHashBits) + n - 1) / n;
    }
    // The hash of the entry at chunk i with lo word `lo`: its home's span
    // is at most 2^28 hashes wide, so its 29 low bits pick one.
    uint64_t Rebuild(size_t i, uint64_t lo) const {
      uint64_t first = First(i - ((lo & kTagMask) - 1));
      return first + ((((lo >> kLowShift) & kLowMask) - first) & kLowMask);
    }
  };
  static View Current(const Shard& s) { return View{s.chunks, s.nhome, 0, s.nchunks}; }
  static View Old(const Shard& s) { return View{s.old, s.old_nhome, s.cursor, s.old_nchunks}; }

  static uint64_t KeyAt(size_t distance, uint64_t hash) {
    return (distance + 1) | (hash & kLowMask) << kLowShift;
  }

  // The overflow count of chunk `c` is not 0.
  HS_HOT static bool Passed(const Chunk& c) {
    return static_cast<int64_t>(c.w[0] | c.w[2] | c.w[4] | c.w[6]) < 0;
  }
  // The overflow count as a number (bit j in slot j), for tests of the
  // layout and nothing on the hook path.
  static unsigned OverflowCount(const Chunk& c) {
    unsigned n = 0;
    for (int j = 0; j < kPerChunk; ++j) n |= static_cast<unsigned>(c.w[2 * j] >> 63) << j;
    return n;
  }
  // +1 and -1 on the count's four bits as binary counting does (flip the
  // bits up to the first 0, or 1): a count that is usually 0 or 1 costs a
  // test and a store. 15 sticks.
  static void AddPassed(Chunk& c) {
    if ((c.w[0] & c.w[2] & c.w[4] & c.w[6] & kOverflowBit) != 0) return;
    for (int j = 0; j < kPerChunk; ++j) {
      c.w[2 * j] ^= kOverflowBit;
      if ((c.w[2 * j] & kOverflowBit) != 0) return;  // was 0: carry stops
    }
  }
  static void RemovePassed(Chunk& c) {
    uint64_t all = c.w[0] & c.w[2] & c.w[4] & c.w[6], any = c.w[0] | c.w[2] | c.w[4] | c.w[6];
    if ((all & kOverflowBit) != 0 || (any & kOverflowBit) == 0) return;  // stuck, or 0
    for (int j = 0; j < kPerChunk; ++j) {
      c.w[2 * j] ^= kOverflowBit;
      if ((c.w[2 * j] & kOverflowBit) == 0) return;  // was 1: borrow stops
    }
  }

  // The first empty slot of chunk `c`, or -1.
  HS_HOT static int EmptySlot(const Chunk& c) {
    if ((c.w[0] & kTagMask) == 0) return 0;
    if ((c.w[2] & kTagMask) == 0) return 1;
    if ((c.w[4] & kTagMask) == 0) return 2;
    if ((c.w[6] & kTagMask) == 0) return 3;
    return -1;
  }
  // The slot of chunk `c` whose key is `key`, or -1.
  HS_HOT static bool Is(uint64_t lo, uint64_t key) {
    return static_cast<uint32_t>(lo) == static_cast<uint32_t>(key) && (lo & kKeyMask) == key;
  }
  HS_HOT static int SlotOf(const Chunk& c, uint64_t key) {
    return Is(c.w[0], key) ? 0 : Is(c.w[2], key) ? 1 : Is(c.w[4], key) ? 2 : Is(c.w[6], key) ? 3 : -1;
  }

  // Finds the entry of `hash`: chunk index and entry slot, or false.
  HS_HOT static bool Find(View v, uint64_t hash, size_t* ci, int* ei) {
    if (v.n == 0) return false;
    size_t home = v.Home(hash);
    size_t i = home < v.lo ? v.lo : home;
    // The key holds the distance from home: one more per chunk.
    for (uint64_t key = KeyAt(i - home, hash), last = KeyAt(0, hash) + kMaxDistance; key <= last;
         ++key, ++i) {
      const Chunk& c = v.chunks[i];
      if (int j = SlotOf(c, key); j >= 0) {
        *ci = i;
        *ei = j;
        return true;
      }
      if (!Passed(c)) return false;  // nobody went further
    }
    return false;
  }

  // Stores in slot j of chunk c (its overflow bit stays).
  HS_HOT static void Store(Chunk& c, int j, uint64_t key, Payload p) {
    c.w[2 * j] = (c.w[2 * j] & kOverflowBit) | key | p.lo;
    c.w[2 * j + 1] = p.hi;
  }

  // Stores a new entry in the first slot with room from its home (at or
  // past v.lo) and counts it in the chunks it passed. False if there is no
  // room within kMaxDistance chunks.
  static bool Place(View v, uint64_t hash, Payload p) {
    size_t home = v.Home(hash);
    for (size_t i = home; i <= home + kMaxDistance; ++i) {
      if (int j = EmptySlot(v.chunks[i]); j >= 0) {
        Store(v.chunks[i], j, KeyAt(i - home, hash), p);
        for (size_t k = home; k < i; ++k) AddPassed(v.chunks[k]);
        return true;
      }
    }
    return false;
  }

  // The common insert in one walk: overwrites the entry of `hash` if
  // present (a stale entry: the block's free went around us; returns 0),
  // else stores it in the first slot with room (returns 1). -1: no room
  // within reach. Each chunk's four key words are loaded once.
  HS_HOT static int PlaceOrReplace(View v, uint64_t hash, Payload p) {
    Chunk* home = v.chunks + v.Home(hash);
    Chunk* c = home;
    Chunk* room = nullptr;
    int room_slot = 0;
    uint64_t room_key = 0;
    for (uint64_t key = KeyAt(0, hash), last = KeyAt(0, hash) + kMaxDistance; key <= last;
         ++key, ++c) {
      if (int j = SlotOf(*c, key); j >= 0) {
        Store(*c, j, key, p);
        return 0;
      }
      if (room == nullptr) {
        room_slot = EmptySlot(*c);
        if (room_slot >= 0) {
          room = c;
          room_key = key;
        }
      }
      if (!Passed(*c)) break;  // the entry is not further on
    }
    if (room == nullptr) return Place(v, hash, p) ? 1 : -1;
    Store(*room, room_slot, room_key, p);
    for (Chunk* k = home; k != room; ++k) AddPassed(*k);
    return 1;
  }

  // Empties slot (ci, ei) (its overflow bit stays) and takes the entry off
  // the counts of the chunks it passed (those still present). Nothing
  // moves.
  HS_HOT static void Erase(View v, size_t ci, int ei) {
    Chunk& c = v.chunks[ci];
    size_t distance = (c.w[2 * ei] & kTagMask) - 1;
    c.w[2 * ei] &= kOverflowBit;
    c.w[2 * ei + 1] = 0;
    size_t home = ci - distance;
    for (size_t i = home < v.lo ? v.lo : home; i < ci; ++i) RemovePassed(v.chunks[i]);
  }

  HS_HOT static bool RemoveChunked(View v, uint64_t hash, LiveEntry* out) {
    size_t ci;
    int ei;
    if (!Find(v, hash, &ci, &ei)) return false;
    if (out != nullptr) Unpack(v.chunks[ci].w[2 * ei], v.chunks[ci].w[2 * ei + 1], out);
    Erase(v, ci, ei);
    return true;
  }

  // --- returning old tables: in batches, one TLB flush for many ---
  //
  // Why: every old table (or 64 KiB piece of one) returned by its own
  // munmap flushed its pages from the TLB one by one, 30-50 us a page in
  // this project's VM (python's 200,000-entry dict: 4,362 munmaps, 0.67 s
  // of its 3.9 s, nearly all of it in flush_tlb_mm_range). A range is now
  // queued, and once the queue holds kRetireBytes or kRetireRanges (at
  // least 128 pages: more than the kernel's 33-page limit for flushing
  // page by page) one thread returns the whole queue with PageFreeMany:
  // one process_madvise and one full flush, then munmaps that flush
  // nothing. Even a full flush cost about 190 us a call here, so the
  // batch is as large as the memory bound allows: 512 KiB or 64 ranges
  // (with 256 KiB or 32, python's dict returned 3,602 ranges in 367
  // calls). A range of more than 33 pages flushes in full anyway and
  // goes back at once. The queue is process-wide and bounded (at most
  // 512 KiB of returned tables stay resident: half a byte per live block
  // at a million blocks), its lock is taken only by a shard
  // returning a table (a resize, not every event), always under that
  // shard's lock and never the other way round, and nothing but the copy
  // of the queue happens under it: the system calls run after it is let
  // go; a second resizing shard that finds it taken does not wait but
  // returns its range on its own (TryLock). A
  // fork child inherits the queue consistent: fork happens under LockAll
  // (every shard lock), so no thread is inside the queue then.
  static constexpr size_t kRetireBytes = 512 * 1024;
  static constexpr size_t kRetireRanges = kRetireQueueRanges;  // each at least 8 KiB
  static constexpr size_t kFlushInFull = 34 * 4096;
  static constexpr RetireQueue& retired_ = g_retired;
  static constexpr std::atomic<size_t>& release_calls_ = g_release_calls;
  static constexpr std::atomic<size_t>& released_ranges_ = g_released_ranges;

  static void ReleaseBatch(const PageRange* batch, size_t n) {
    if (n == 0) return;
    release_calls_.fetch_add(PageFreeMany(batch, n), std::memory_order_relaxed);
    released_ranges_.fetch_add(n, std::memory_order_relaxed);
  }

  static void Retire(void* p, size_t bytes) {
    // A range that flushes in full anyway goes back at once. And never
    // wait for the queue: a thread that finds it taken (another shard
    // returning a table at this instant) returns its range on its own, as
    // before batching. So the hook path never spins on a process-wide
    // lock; the cost of losing the race is one unbatched munmap.
    if (bytes >= kFlushInFull || !retired_.lock.TryLock()) {
      PageRange one{p, bytes};
      ReleaseBatch(&one, 1);
      return;
    }
    retired_.ranges[retired_.n++] = PageRange{p, bytes};
    size_t queued = retired_.bytes + bytes;
    if (retired_.n < kRetireRanges && queued < kRetireBytes) {
      __atomic_store_n(&retired_.bytes, queued, __ATOMIC_RELAXED);
      retired_.lock.Unlock();
      return;
    }
    PageRange batch[kRetireRanges];
    size_t n = TakeQueueLocked(batch);
    retired_.lock.Unlock();
    ReleaseBatch(batch, n);
  }

  // Empties the queue into `batch` (kRetireRanges slots); returns how many
  // ranges it held. The queue's lock is held.
  static size_t TakeQueueLocked(PageRange* batch) {
    size_t n = retired_.n;
    memcpy(batch, retired_.ranges, n * sizeof(PageRange));
    retired_.n = 0;
    __atomic_store_n(&retired_.bytes, size_t{0}, __ATOMIC_RELAXED);
    return n;
  }

  // Returns whatever the queue holds now.
  static void ReleaseRetired() {
    PageRange batch[kRetireRanges];
    size_t n = 0;
    {
      SpinLockHolder hold(&retired_.lock);
      n = TakeQueueLocked(batch);
    }
    ReleaseBatch(batch, n);
  }

  // --- growth and shrinking ---

  static size_t Bytes(size_t nchunks) { return nchunks * sizeof(Chunk); }
  static size_t WholePages(size_t chunks) {
    return (chunks + kPageChunks - 1) / kPageChunks * kPageChunks;
  }

  static void FreeOld(Shard* s) {
    ++s->unmaps;
    Retire(reinterpret_cast<char*>(s->old) + s->old_unmapped,
           Bytes(s->old_nchunks) - s->old_unmapped);
    s->old = nullptr;
    s->old_nchunks = s->old_nhome = s->old_count = s->cursor = s->old_unmapped = 0;
  }

  // Moves up to `n` chunks of the old table into the current one, in order.
  static void Migrate(Shard* s, size_t shard, size_t n) {
    View cur = Current(*s), old = Old(*s);
    for (; n > 0 && s->old != nullptr; --n) {
      Chunk& c = s->old[s->cursor];
      for (int j = 0; j < kPerChunk; ++j) {
        uint64_t lo = c.w[2 * j];
        if ((lo & kTagMask) == 0) continue;
        uint64_t hash = old.Rebuild(s->cursor, lo);
        --s->old_count;
        if (Place(cur, hash, Payload{lo & ~(kKeyMask | kOverflowBit), c.w[2 * j + 1]})) {
          ++s->count;
          continue;
        }
        LiveEntry e;
        Unpack(lo, c.w[2 * j + 1], &e);
        WideInsert(s, AddressOf(shard, hash), e);  // lost only without memory
      }
      ++s->cursor;
      if (s->cursor == s->old_nchunks) {
        FreeOld(s);
        PopulateAhead(s);
        return;
      }
      // Whole 64 KiB pieces below the cursor are empty and never read again.
      size_t done = Bytes(s->cursor) / kUnmapBatch * kUnmapBatch;
      if (done > s->old_unmapped) {
        ++s->unmaps;
        Retire(reinterpret_cast<char*>(s->old) + s->old_unmapped, done - s->old_unmapped);
        s->old_unmapped = done;
      }
    }
    PopulateAhead(s);
  }

  // Makes the current table's pages resident up to a window past the
  // migration's front (where migrated entries land: the new home of the
  // old cursor's first hash, and up to 30 chunks on), in one system call
  // per window. Migration reads each chunk before writing it (is there
  // room?), so a page it found unpopulated faulted twice: once for the read
  // (the zero page), once for the write (python's dict build: 107k of its
  // 114k extra faults, for 57k pages of new tables). Populated a window at
  // a time, not the whole table at its mapping, so a large shard's new
  // table becomes resident as the old one is returned, as before.
  static void PopulateAhead(Shard* s) {
    size_t total = Bytes(s->nchunks);
    if (s->populated >= total) return;
    size_t front = s->old == nullptr
                       ? s->nchunks
                       : Current(*s).Home(Old(*s).First(s->cursor)) + kMaxDistance + 1;
    size_t need = Bytes(front < s->nchunks ? front : s->nchunks);
    if (need <= s->populated) return;
    size_t end = s->populated + kPopulateWindow;
    if (end < need) end = (need + kPopulateWindow - 1) / kPopulateWindow * kPopulateWindow;
    if (end > total) end = total;
    PagePopulate(reinterpret_cast<char*>(s->chunks) + s->populated, end - s->populated);
    s->populated = end;
  }

  // Maps a table of `nchunks` chunks and starts moving the current one
  // into it. False if no memory (nothing changes).
  static bool Resize(Shard* s, size_t shard, size_t nchunks) {
    auto* chunks = static_cast<Chunk*>(PageAlloc(Bytes(nchunks)));
    if (chunks == nullptr) return false;
    if (s->nchunks != 0) ++(nchunks > s->nchunks ? s->grows : s->shrinks);
    s->populated = 0;
    s->old = s->chunks;
    s->old_nchunks = s->nchunks;
    s->old_nhome = s->nhome;
    s->old_count = s->count;
    s->cursor = 0;
    s->old_unmapped = 0;
    s->chunks = chunks;
    s->nchunks = nchunks;
    s->nhome = nchunks - kTail;
    s->count = 0;
    SetThresholds(s);
    if (s->old_nchunks == 0) s->old = nullptr;
    // Before the first chunks move in (the shard's first table: before
    // inserts land anywhere in it).
    PopulateAhead(s);
    if (s->old != nullptr) Migrate(s, shard, kMigratePerOp);
    return true;
  }

  // While a shard resizes, an entry whose home in the old table is at or
  // past the cursor goes to the old table (if its chunks have room within
  // reach), and migration moves it in its turn: so the new table's pages
  // are touched in hash order, by migration only (inserts into the new
  // table would touch its pages at random, and the shard would hold most
  // of two tables until the migration ends). True if placed there.
  static bool PlaceWhileResizing(Shard* s, uint64_t hash, Payload p) {
    if (s->old == nullptr) return false;
    View old = Old(*s);
    if (old.Home(hash) < old.lo || !Place(old, hash, p)) return false;
    ++s->old_count;
    return true;
  }

  // At most 7/8 x 4 entries per home chunk: the largest load at which a
  // miss still reads under two chunks on average (adjacent ones: the
  // prefetcher fetches them together) and under 1% of entries would be
  // more than 30 chunks from home.
  static bool HasRoom(const Shard& s, size_t more) {
    return s.count + s.old_count + more <= s.room;
  }

  // Makes room for one more packed entry. False if no memory. The step is
  // 5/4 (in whole pages): the load goes from 7/8 to 7/10, 18.3-22.9 bytes
  // per live block, for about four moves per inserted block while a shard
  // grows.
  static bool Reserve(Shard* s, size_t shard) {
    if (HasRoom(*s, 1)) return true;
    if (s->old != nullptr) Migrate(s, shard, s->old_nchunks);  // finish the last resize first
    if (HasRoom(*s, 1)) return true;
    size_t n = s->nchunks == 0             ? kMinChunks
               : s->nchunks < kSmallChunks ? (s->nchunks * 2 < kSmallChunks ? s->nchunks * 2
                                                                            : kSmallChunks)
                                           : WholePages(s->nhome * 5 / 4 + kTail);
    return Resize(s, shard, n);
  }

  // Below a load of 2/3 (24 bytes per live block), a shard shrinks to a
  // load of 4/5, unless that saves less than an eighth of it (right after
  // a growth rounded up to whole pages, the load may be below 2/3: that
  // growth is not undone). It does so at its next insert (Insert), or at a
  // remove once its count falls below a quarter of that threshold
  // (kRemoveShrinkDivisor, Remove), straight to the table that fits its
  // count either way. No memory: it stays as it is.
  static void MaybeShrink(Shard* s, size_t shard) {
    if (s->count >= s->shrink_below || s->old != nullptr) return;
    size_t n = s->nchunks <= kSmallChunks ? kMinChunks : WholePages(s->count * 5 / 16 + kTail);
    if (!Resize(s, shard, n < kMinChunks ? kMinChunks : n)) return;
    // A table of up to kShrinkAtOnce shrinks in one go: its entries (at
    // most 2/3 x 4 per chunk: 2,730 in 64 KiB) move now and the old table
    // joins the retire queue at once. Moved a few chunks per remove,
    // a program freeing its heap kept about a fifth of its shards mid-
    // shrink, each holding its old table and its new one (the shards
    // shrink at about the same rate): a 1M-block program's RSS rose 5.5
    // MiB above its allocation peak as it freed (24.8 MB of new tables
    // mapped while freeing). Bounded work: one remove in a few hundred
    // of that shard's moves at most 2,730 entries.
    if (s->old != nullptr && Bytes(s->old_nchunks) <= kShrinkAtOnce) {
      Migrate(s, shard, s->old_nchunks);
    }
  }
  // A remove shrinks a shard only once its count is below this fraction of
  // the insert threshold (shrink_below). A program freeing its heap (python
  // dropping a 1M-entry dict at exit) shrank every shard at each 4/5 -> 2/3
  // step, moving its remaining entries each time (9,038 shrinks; 2,450
  // now, docs/performance.md) for memory it was about to give up; a
  // shard emptied by removes alone now migrates once per factor of 4.8
  // (from a load of 1/6 to 4/5), moving about a third of what it held,
  // not six times it. Bound for a shard that never sees another insert:
  // a load of at least 1/6, 96 bytes per live block from 144 KiB tables
  // on (up to 111 between 36 and 140 KiB, where a shrink must save an
  // eighth), and at most 32 KiB for a small table (as before).
  static constexpr size_t kRemoveShrinkDivisor = 4;
  static bool FarBelowThreshold(const Shard& s) {
    return s.count < s.shrink_below / kRemoveShrinkDivisor;
  }
  // The thresholds of a table of `nchunks` chunks (see HasRoom and
  // MaybeShrink): room for 7/8 x 4 entries per home; shrink below 2/3 x 4
  // per chunk (tail included) if the smaller table (whole pages, at a load of 4/5) is at
  // most 7/8 of this one: (count x 5/16 + kTail) in whole pages <= P, the
  // whole pages in 7/8 x nchunks, for every count below the threshold.
  // A small table (kSmallChunks or less) shrinks straight to the smallest
  // one (kMinChunks) once that would be at most half full (7/16 x 4
  // entries per home: 171), never to a size between: a shard emptying
  // from 32 KiB migrates once, not twice (python's 200,000-entry dict, as
  // it freed the dict at exit: 1,024 resizes fewer, each a table mapped,
  // populated, migrated and returned). A table just doubled (half full)
  // does not shrink until most of its entries are gone; a 32 KiB table
  // may then hold as few as 171 entries (191 bytes each), within the
  // 32 KiB a small shard may map.
  static void SetThresholds(Shard* s) {
    s->room = s->nhome * 7 / 2;
    if (s->nchunks <= kSmallChunks) {
      s->shrink_below = s->nchunks > kMinChunks ? (kMinChunks - kTail) * 7 / 4 : 0;
      return;
    }
    size_t pages = s->nchunks * 7 / 8 / kPageChunks * kPageChunks;
    size_t by_size = pages > kTail ? (pages - kTail) * 16 / 5 : 0;
    size_t by_load = (s->nchunks * 8 + 2) / 3;  // count x 3 < nchunks x 8: 24 bytes per entry
    s->shrink_below = by_size < by_load ? by_size : by_load;
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

  static constexpr size_t kWideFirstSlots = 128;  // a page
  static constexpr uint32_t kWideKeepAfter = 2;

  static void WidePlace(WideSlot* slots, size_t capacity, const WideSlot& slot) {
    size_t mask = capacity - 1;
    for (size_t i = WideHome(WideHash(slot.address), capacity);; i = (i + 1) & mask) {
      if (slots[i].address == 0) {
        slots[i] = slot;
        return;
      }
    }
  }

  // `address` is not in the side table.
  static bool WideInsert(Shard* s, uintptr_t address, const LiveEntry& e) {
    if ((s->wide_count + 1) * 2 > s->wide_capacity) {
      size_t capacity = s->wide_capacity == 0 ? kWideFirstSlots : s->wide_capacity * 2;
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
      size_t home = WideHome(WideHash(s->wide[j].address), s->wide_capacity);
      // Move j into the hole if its home position is not in (hole, j].
      bool in_range = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
      if (!in_range) {
        s->wide[hole] = s->wide[j];
        hole = j;
      }
    }
    s->wide[hole].address = 0;
    // An empty side table goes back to the system: most shards only ever
    // hold a few side entries (a big block, a run of over 30 chunks), and
    // a page each would stay with all 1,024 shards. But a shard whose side
    // table emptied kWideKeepAfter times keeps its one-page table once
    // empty: git log -p allocates and frees one 16 KiB+ block at a time,
    // and mapped and unmapped a side table for each (4,112 mmaps and 3,998
    // munmaps in 400 commits, each munmap a TLB shootdown once the writer
    // thread exists: git's system time doubled). At most a page a shard
    // (4 MiB if all 1,024 shards churn), only for shards that churn.
    if (--s->wide_count == 0) {
      if (s->wide_empties >= kWideKeepAfter && s->wide_capacity == kWideFirstSlots) return;
      ++s->wide_empties;
      PageFree(s->wide, s->wide_capacity * sizeof(WideSlot));
      s->wide = nullptr;
      s->wide_capacity = 0;
    }
  }

  // --- the shard operations ---

  // Where an address lives: its shard and, if it fits the packed form, its
  // hash (0 otherwise).
  struct Where {
    size_t shard;
    uint64_t hash;
    bool fits;
  };
  HS_HOT static Where Locate(uintptr_t address) {
    uint64_t mixed = MixRegion(address >> LiveTable::kRegionShift);
    bool fits = AddressFits(address);
    return Where{static_cast<size_t>(mixed & (LiveTable::kShards - 1)),
                 fits ? HashOf(address, mixed) : 0, fits};
  }

  static bool WideRemove(Shard* s, uintptr_t address, LiveEntry* out) {
    size_t i;
    if (!WideFind(*s, address, WideHash(address), &i)) return false;
    if (out != nullptr) *out = FromWide(s->wide[i]);
    WideErase(s, i);
    return true;
  }

  // Removes `address` from wherever it is (current table, old table, side
  // table) into *out (if not null).
  HS_HOT static bool RemoveAny(Shard* s, uintptr_t address, Where w, LiveEntry* out) {
    if (w.fits) {
      if (RemoveChunked(Current(*s), w.hash, out)) {
        --s->count;
        return true;
      }
      if (s->old != nullptr && RemoveChunked(Old(*s), w.hash, out)) {
        --s->old_count;
        return true;
      }
    }
    return s->wide_count != 0 && WideRemove(s, address, out);
  }

  static bool Contains(const Shard& s, uintptr_t address, Where w) {
    size_t ci, wi;
    int ei;
    if (w.fits) {
      if (Find(Current(s), w.hash, &ci, &ei)) return true;
      if (s.old != nullptr && Find(Old(s), w.hash, &ci, &ei)) return true;
    }
    return WideFind(s, address, WideHash(address), &wi);
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

  // Drops the internal entries of one chunk table (Erase moves no entry)
  // and counts the others in the filter.
  static void FilterChunks(Shard* s, size_t shard, View v, bool old,
                           std::atomic<uint8_t>* filter) {
    for (size_t i = v.lo; i < v.end; ++i) {
      for (int j = 0; j < kPerChunk; ++j) {
        uint64_t lo = v.chunks[i].w[2 * j];
        if ((lo & kTagMask) == 0) continue;
        if (((lo >> kApiShift) & 31) != kInternalApi) {
          Mark(filter, AddressOf(shard, v.Rebuild(i, lo)));
          continue;
        }
        Erase(v, i, j);
        --(old ? s->old_count : s->count);
      }
    }
  }

  static void FilterShard(Shard* s, size_t shard, std::atomic<uint8_t>* filter) {
    FilterChunks(s, shard, Current(*s), false, filter);
    if (s->old != nullptr) FilterChunks(s, shard, Old(*s), true, filter);
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

  static void ForEach(size_t shard, View v, void (*fn)(uintptr_t, const LiveEntry&, void*),
                      void* ctx) {
    for (size_t i = v.lo; i < v.end; ++i) {
      for (int j = 0; j < kPerChunk; ++j) {
        uint64_t lo = v.chunks[i].w[2 * j];
        if ((lo & kTagMask) == 0) continue;
        LiveEntry e;
        Unpack(lo, v.chunks[i].w[2 * j + 1], &e);
        fn(AddressOf(shard, v.Rebuild(i, lo)), e, ctx);
      }
    }
  }
};

size_t LiveTable::ShardIndex(uintptr_t address) {
  return static_cast<size_t>(LiveTableImpl::MixRegion(address >> kRegionShift) & (kShards - 1));
}

size_t LiveTable::HomeForTest(uintptr_t address, size_t homes) {
  using Impl = LiveTableImpl;
  return Impl::View{nullptr, homes, 0, homes + Impl::kTail}.Home(Impl::Locate(address).hash);
}

LiveTable::Shard& LiveTable::ShardOf(uintptr_t address) { return shards_[ShardIndex(address)]; }

// Once per shard and process (at most 1024 times). In the defer zone like
// a shard lock: a signal handler's hook nested here must not wait for it.
// Never held while waiting for a shard lock, so it adds no lock order but
// LockAll's (touch lock, then the shards).
void LiveTable::Touch(size_t shard) {
  ShardLockHolder hold(&touch_lock_);
  touched_[shard / 64].fetch_or(uint64_t{1} << (shard % 64), std::memory_order_acq_rel);
}

bool LiveTable::Insert(uintptr_t address, uint64_t id, uint64_t size, uint64_t stack,
                       format::Api api, bool internal) {
  using Impl = LiveTableImpl;
  // A local entry (its fields in registers): stores into the chunks
  // cannot alias it, so nothing is reloaded after each one.
  const LiveEntry e{id, size, stack, api, internal};
  if (address == 0) return false;
  // Sequentially consistent, like the filter's load below and
  // EnableFilter's store and load (plain moves on x86-64 but for the one
  // store): if EnableFilter reads `inserted_` as false, this insert reads
  // its filter and counts itself.
  if (!inserted_.load(std::memory_order_seq_cst)) inserted_.store(true, std::memory_order_seq_cst);
  Impl::Where w = Impl::Locate(address);
  if (__builtin_expect(!Touched(w.shard), 0)) Touch(w.shard);
  Shard& shard = shards_[w.shard];
  ShardLockHolder hold(&shard.lock);
  // Read under the shard lock: EnableFilter publishes it under every lock
  // (or before any insert), so this insert is either counted by it or
  // counts itself.
  std::atomic<uint8_t>* filter = filter_.load(std::memory_order_seq_cst);
  if (shard.old != nullptr) Impl::Migrate(&shard, w.shard, Impl::kMigratePerOp);
  bool fits = w.fits && Impl::Fits(e);
  if (filter == nullptr && fits && shard.old == nullptr && Impl::HasRoom(shard, 1) &&
      shard.count >= shard.shrink_below) {
    // The common case: one table, with room, not due to shrink.
    int added = Impl::PlaceOrReplace(Impl::Current(shard), w.hash, Impl::Pack(e));
    if (added >= 0) {
      shard.count += static_cast<size_t>(added);
      // A stale side entry of the same address (it did not fit then).
      if (shard.wide_count != 0) Impl::WideRemove(&shard, address, nullptr);
      return true;
    }
    // No room within 30 chunks of its home: the general path below.
  }
  // A shard below its shrink threshold shrinks here, at its next insert,
  // not at each remove (see kRemoveShrinkDivisor): during a burst of frees
  // it stays put, and the insert that follows shrinks it once.
  Impl::MaybeShrink(&shard, w.shard);
  // A stale entry (the block's free went around us) is replaced.
  if (Impl::RemoveAny(&shard, address, w, nullptr) && filter != nullptr) {
    Impl::Unmark(filter, address);
  }
  // Sampled mode keeps no internal entries (live_table.h).
  if (filter != nullptr && e.internal) return true;
  bool added = false;
  if (fits && Impl::Reserve(&shard, w.shard)) {
    added = Impl::PlaceWhileResizing(&shard, w.hash, Impl::Pack(e));
    if (!added && Impl::Place(Impl::Current(shard), w.hash, Impl::Pack(e))) {
      ++shard.count;
      added = true;
    }
  }
  if (!added) added = Impl::WideInsert(&shard, address, e);
  // Counted before the block is returned to the program (the caller
  // inserts first), so no free of it can find its slot at 0.
  if (added && filter != nullptr) Impl::Mark(filter, address);
  return added;
}

bool LiveTable::Remove(uintptr_t address, LiveEntry* out) {
  using Impl = LiveTableImpl;
  if (address == 0) return false;
  Impl::Where w = Impl::Locate(address);
  // A shard no insert reached holds nothing, and its lock stays untaken
  // (see touched_). An insert of this block set the bit before the block
  // went back to the program, so a free of it sees the bit.
  if (__builtin_expect(!Touched(w.shard), 0)) return false;
  Shard& shard = shards_[w.shard];
  ShardLockHolder hold(&shard.lock);
  if (shard.old != nullptr) Impl::Migrate(&shard, w.shard, Impl::kMigratePerOp);
  if (!Impl::RemoveAny(&shard, address, w, out)) return false;
  // Uncounted only once the entry is gone (under the same lock).
  if (std::atomic<uint8_t>* filter = filter_.load(std::memory_order_relaxed); filter != nullptr) {
    Impl::Unmark(filter, address);
  }
  shard.recent_id[shard.recent_pos % kRecent] = out->id;
  shard.recent[shard.recent_pos++ % kRecent] = address;
  if (Impl::FarBelowThreshold(shard)) Impl::MaybeShrink(&shard, w.shard);
  return true;
}

LiveTable::NestedRemove LiveTable::TryRemoveNested(uintptr_t address, format::Api api,
                                                    bool internal_only, LiveEntry* out) {
  using Impl = LiveTableImpl;
  if (address == 0) return NestedRemove::kAbsent;
  Impl::Where w = Impl::Locate(address);
  // As in Remove: a shard no insert reached holds nothing, and its lock
  // stays untaken (LockAll leaves untouched shards' locks alone, so one
  // taken here during a fork would stay locked in the child).
  if (__builtin_expect(!Touched(w.shard), 0)) return NestedRemove::kAbsent;
  Shard& shard = shards_[w.shard];
  // The caller is inside the defer zone already (a handler nested there):
  // a handler nested in this one defers too.
  if (!shard.lock.TryLock()) return NestedRemove::kBusy;
  NestedRemove result = NestedRemove::kAbsent;
  size_t ci;
  int ei;
  if (shard.old != nullptr || !w.fits) {
    result = NestedRemove::kBusy;
  } else if (Impl::View cur = Impl::Current(shard); Impl::Find(cur, w.hash, &ci, &ei)) {
    Impl::Unpack(cur.chunks[ci].w[2 * ei], cur.chunks[ci].w[2 * ei + 1], out);
    if (!out->internal &&
        (internal_only ||
         format::FamiliesMismatch(format::FamilyOf(out->api), format::FamilyOf(api)))) {
      shard.lock.Unlock();
      return NestedRemove::kBusy;  // left as it was
    }
    Impl::Erase(cur, ci, ei);
    --shard.count;
    if (std::atomic<uint8_t>* filter = filter_.load(std::memory_order_relaxed);
        filter != nullptr) {
      Impl::Unmark(filter, address);
    }
    shard.recent_id[shard.recent_pos % kRecent] = out->id;
    shard.recent[shard.recent_pos++ % kRecent] = address;
    result = NestedRemove::kRemoved;
  } else if (shard.wide_count != 0) {
    result = NestedRemove::kBusy;  // maybe in the side table
  }
  shard.lock.Unlock();
  return result;
}

bool LiveTable::RecentlyRemoved(uintptr_t address) {
  uint64_t id;
  return RecentlyRemoved(address, &id);
}

bool LiveTable::RecentlyRemoved(uintptr_t address, uint64_t* id) {
  if (!Touched(ShardIndex(address))) return false;  // never held a block
  Shard& shard = ShardOf(address);
  ShardLockHolder hold(&shard.lock);
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
  LiveTableImpl::Where w = LiveTableImpl::Locate(address);
  if (__builtin_expect(!Touched(w.shard), 0)) return false;
  Shard& shard = shards_[w.shard];
  ShardLockHolder hold(&shard.lock);
  return LiveTableImpl::Contains(shard, address, w);
}

size_t LiveTable::Size() {
  size_t n = 0;
  for (size_t i = 0; i < kShards; ++i) {
    if (!Touched(i)) continue;
    Shard& shard = shards_[i];
    ShardLockHolder hold(&shard.lock);
    n += shard.count + shard.old_count + shard.wide_count;
  }
  return n;
}

size_t LiveTable::MappedBytes() {
  using Impl = LiveTableImpl;
  constexpr size_t kPage = 4096;
  auto pages = [](size_t bytes) { return (bytes + kPage - 1) / kPage * kPage; };
  size_t n = sizeof(LiveTable) + FilterBytes();
  for (size_t i = 0; i < kShards; ++i) {
    if (!Touched(i)) continue;
    Shard& shard = shards_[i];
    ShardLockHolder hold(&shard.lock);
    n += pages(Impl::Bytes(shard.nchunks)) + pages(shard.wide_capacity * sizeof(WideSlot));
    if (shard.old != nullptr) n += pages(Impl::Bytes(shard.old_nchunks)) - shard.old_unmapped;
  }
  return n;
}

LiveTable::MemoryUse LiveTable::Memory() {
  using Impl = LiveTableImpl;
  MemoryUse m;
  for (size_t i = 0; i < kShards; ++i) {
    if (!Touched(i)) continue;
    Shard& shard = shards_[i];
    ShardLockHolder hold(&shard.lock);
    m.chunk_bytes += Impl::Bytes(shard.nchunks);
    m.side_bytes += (shard.wide_capacity * sizeof(WideSlot) + 4095) / 4096 * 4096;
    m.packed += shard.count + shard.old_count;
    m.side += shard.wide_count;
    if (shard.old != nullptr) {
      m.old_bytes += Impl::Bytes(shard.old_nchunks) - shard.old_unmapped;
      ++m.resizing;
    }
    m.grows += shard.grows;
    m.shrinks += shard.shrinks;
    m.unmaps += shard.unmaps;
  }
  m.release_calls = Impl::release_calls_.load(std::memory_order_relaxed);
  m.released_ranges = Impl::released_ranges_.load(std::memory_order_relaxed);
  // No queue lock: its lock is only ever taken under a shard lock (fork).
  m.retired_bytes = __atomic_load_n(&Impl::retired_.bytes, __ATOMIC_RELAXED);
  return m;
}

void LiveTable::ReleaseRetired() { LiveTableImpl::ReleaseRetired(); }

void LiveTable::ForEachUnlocked(void (*fn)(uintptr_t, const LiveEntry&, void*), void* ctx) {
  using Impl = LiveTableImpl;
  for (size_t i = 0; i < kShards; ++i) {
    if (!Touched(i)) continue;
    Shard& shard = shards_[i];
    Impl::ForEach(i, Impl::Current(shard), fn, ctx);
    if (shard.old != nullptr) Impl::ForEach(i, Impl::Old(shard), fn, ctx);
    for (size_t k = 0; k < shard.wide_capacity; ++k) {
      if (shard.wide[k].address != 0) fn(shard.wide[k].address, Impl::FromWide(shard.wide[k]), ctx);
    }
  }
}

bool LiveTable::EnableFilter() {
  using Impl = LiveTableImpl;
  if (filter_.load() != nullptr) return true;
  // Zero-filled and touched only where a slot is marked.
  auto* filter = static_cast<std::atomic<uint8_t>*>(PageAlloc(Impl::kFilterSlots));
  if (filter == nullptr) return false;
  // The usual case: tracing starts at the program's first allocation, and
  // nothing was ever inserted. Published without touching the shards; if
  // an insert started meanwhile (it read no filter), its shard is counted
  // below, under every lock, like a table that had entries (an entry
  // counted by both only makes its slot probe the table a little longer:
  // counts may be too high, never too low).
  if (!inserted_.load(std::memory_order_seq_cst)) {
    filter_.store(filter, std::memory_order_seq_cst);
    if (!inserted_.load(std::memory_order_seq_cst)) return true;
  }
  LockAll();
  for (size_t i = 0; i < kShards; ++i) {
    if (Touched(i)) Impl::FilterShard(&shards_[i], i, filter);
  }
  // Release: a lock-free reader (SurelyAbsent) that sees the filter sees
  // its counts. Inserts and removes read it under their shard lock.
  filter_.store(filter, std::memory_order_release);
  UnlockAll();
  return true;
}

bool LiveTable::StickFilterRange(uintptr_t begin, uintptr_t end) {
  std::atomic<uint8_t>* filter = filter_.load(std::memory_order_acquire);
  if (filter == nullptr) return false;
  // Relaxed stores: a stuck slot never changes again (Mark and Unmark
  // leave 255 alone), and the caller publishes what reads it afterwards.
  for (uintptr_t a = (begin + 7) & ~uintptr_t{7}; a < end; a += 8) {
    filter[FilterSlot(a)].store(LiveTableImpl::kStuck, std::memory_order_relaxed);
  }
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

// The marker spans LockAll..UnlockAll (fork's prepare..parent, exit's
// walks): a hook nested in between defers its table work (nested_hooks.h).
// Untouched shards are not locked: the touch lock, held throughout, keeps
// them untouched (and empty) until UnlockAll.
void LiveTable::LockAll() {
  EnterDeferZone();
  touch_lock_.Lock();
  for (size_t i = 0; i < kShards; ++i) {
    if (Touched(i)) shards_[i].lock.Lock();
  }
}
void LiveTable::UnlockAll() {
  for (size_t i = 0; i < kShards; ++i) {
    if (Touched(i)) shards_[i].lock.Unlock();
  }
  touch_lock_.Unlock();
  LeaveDeferZone();
}
void LiveTable::ResetLocksInChild() {
  // An untouched shard's lock was never taken (nor written).
  for (size_t i = 0; i < kShards; ++i) {
    if (Touched(i)) shards_[i].lock.ResetInChild();
  }
  touch_lock_.ResetInChild();
  // The child's one thread is the one that forked under LockAll, and it
  // holds no other shard lock: nothing is held any more.
  std::atomic_signal_fence(std::memory_order_seq_cst);
  t_defer_zone = 0;
}

#undef HS_HOT

}  // namespace heapsight::preload
