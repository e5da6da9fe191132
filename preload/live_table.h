// preload/live_table.h: the preload's map of live blocks, address -> entry.
//
// Sharded by address region (1024 shards), each shard under its own spin
// lock, so two threads touching different shards never contend and there is
// no global lock per event.
//
// The shard is picked by the block's 64 KiB region (address >> 16), not by a
// hash of the whole address: allocators hand each thread blocks from its own
// arena or span (glibc arenas, tcmalloc/jemalloc thread caches), so a thread
// keeps working in a few shards of its own, and their locks and slots stay
// in its core's cache instead of moving between cores on every event (with
// per-address hashing, two threads touched every shard: +15% CPU per event
// with 2 threads, bench/alloc_bench). Blocks freed by another thread, or
// threads sharing an arena, still work: they just share a shard lock.
//
// Memory (issue 15, target 2): a live block costs 16 bytes of entry, at a
// load kept between 2/3 and 7/8 (18-24 bytes per live block, at the peak
// of a growth too). An entry holds no address: the address is rebuilt from
// where the entry sits (quotienting). The shard is picked by 10 bits of a
// bijective mix of the block's 64 KiB region, so the other 21 bits of the
// mixed region and the 13 bits of 8-byte offset in the region form a 34-bit
// key; a second bijective mix of the key gives the hash h, whose home chunk
// (64 bytes, four entries) is h * homes >> 34 (multiply-shift, so the order
// of chunks is the order of hashes at every table size), and the entry
// keeps only h's low 29 bits and its distance from its home chunk (0-30):
// home chunk and low bits give h back exactly, and h the address. The rest
// of the entry is the allocation id (thread index 14 bits, counter 36),
// size (14 bits), stack id (25 bits) and api (5 bits, or internal): nothing
// is dropped, see the packed entry in live_table.cc. An entry whose home
// chunk is full goes to the next chunk with room (at most 30 chunks on; a
// table has 30 spare chunks past its last home so probes never wrap), and
// each chunk counts the entries that passed it (4 bits, spread over its
// slots), so a lookup stops at the first chunk nobody passed and a removal
// moves nothing. A shard grows by 5/4 when it reaches a load of 7/8. Once
// its load falls below 2/3 it shrinks to a load of 4/5 at its next insert;
// a remove shrinks it (again straight to a load of 4/5) only once its
// count falls below a quarter of that threshold, a load of 1/6 (it never
// maps less than 8 KiB; a shrink must save an eighth of the table). So a
// burst of frees (a program dropping its heap, at exit too) does not
// migrate a shard at each 4/5 -> 2/3 step, and a shard that never sees
// another insert keeps at most 96 bytes per live block (up to 111 bytes
// in tables of 36-140 KiB). Tables up to
// 32 KiB (a program of up to about a million live blocks) double instead,
// and shrink straight to the smallest table (8 KiB) only once that would
// be at most half full (171 entries: at the next insert; at a remove,
// below 42), so a program whose blocks swing up and down does not resize
// at each swing, and one that frees them all migrates once (a small table
// may map up to 32 KiB for a few entries: 32 MiB over all shards, which
// is the bound below 40 KiB; the 24-byte bound holds, at inserts, from
// 40 KiB tables on).
// Resizing is incremental: the shard maps the new table and every insert
// or remove moves the next 8 chunks of the old table over, in order
// (a shrink of a table of up to 64 KiB moves its few entries at once:
// shards shrink together as a program frees its heap, and a fifth of them
// holding two tables raised the peak RSS above the allocation peak),
// handing the old table's pages back in 64 KiB pieces (a small old table
// whole at the end). Pieces are returned to the system in batches of
// 512 KiB or 64 pieces, one process_madvise and one TLB flush each
// (live_table.cc, Retire: a munmap of a few pages flushed them one by
// one, the costliest part of a resize); meanwhile an entry whose old home
// is not yet moved is inserted
// into the old table, so the new table's pages are touched in order, by
// migration only, and a resizing shard never holds two full tables. The
// new table's pages are made resident 64 KiB ahead of the migration in
// one madvise(MADV_POPULATE_WRITE) each, not by a fault per page.
//
// Entries that do not fit the packed form (an address that is not 8-aligned
// or above 2^47, a size of 16 KiB or more, a thread index of 16,384 or more
// (indexes are not reused), an allocation counter of 2^36 or more, a stack
// id of 2^25 or more, an api of 31 or more, an internal entry with an api,
// or the rare entry more than 30 chunks from its home) go to a small
// per-shard side table of full 32-byte slots, searched only when it is not
// empty. A block of 16 KiB or more costs its program far more than the 64
// bytes its side slot costs.
//
// Entries marked `internal` are blocks allocated while heapsight itself was
// running (the reentry guard was set) or before tracing started: their free is
// not recorded, and it is not a bad free either.
//
// Sampled mode (HEAPSIGHT_SAMPLE_BYTES, issue 15 target 4): most frees are
// of blocks the table does not hold, and a probe (hash, shard lock, chunk
// walk: about 90 instructions) would be their whole cost. EnableFilter
// turns on a counting filter: one byte per slot, 2^20 slots (1 MiB, mapped
// once and touched only where marked), each counting the table's entries
// whose address hashes to it. SurelyAbsent reads one byte: 0 means the
// address is not in the table, exactly (a count only drops when an entry
// counted in it leaves, so a live entry's slot is never 0); any other count
// sends the caller to the table, which decides (another address may share
// the slot: at 512 KiB per sample, a 1 GiB heap holds about 2,000 sampled
// blocks, so 0.2% of frees probe for nothing). A count reaching 255 sticks
// (never decremented again), so a crowded slot only costs probes, never a
// missed entry. The slot is the address's 16-byte granule modulo 2^20
// (bits 4-23; every block of glibc's is 16-aligned): neighbouring blocks
// share the filter's cache lines and pages, so the frees of a program
// touch the filter in proportion to its heap, in the heap's own order
// (with a multiply-shift hash, each free read a random one of 256 pages:
// a minor fault for each page first read, about 250 of them in a
// 0.1-second perl run, and a likely cache miss per free on a large heap).
// Addresses 16 MiB apart share a slot (glibc's thread arenas are 64 MiB
// aligned; page-aligned large blocks use one slot in 256): sharing only
// sends frees to the table, which answers exactly. With the filter on, the table keeps no internal
// entries (EnableFilter drops those it held): in sampled mode a block the
// table does not know is never a bad free, so internal blocks need no
// entry, and their frees stay on the one-byte path.
//
// Constraints: never calls malloc (memory from PageAlloc); no syscalls on the
// common path (mmap, munmap, madvise and process_madvise only while a
// shard grows or shrinks; the last two as raw syscalls, errno untouched).
// One process-wide spin lock besides the shards', taken only by a shard
// returning an old table, under its shard lock; and each table's touch
// lock (touched_), taken by a shard's first insert before its shard lock
// and held by LockAll..UnlockAll. Not async-signal-safe, except
// TryRemoveNested with respect to its own thread (one try-lock, no
// syscall, no wait).
// LockAll/UnlockAll exist for fork.
#ifndef HEAPSIGHT_PRELOAD_LIVE_TABLE_H_
#define HEAPSIGHT_PRELOAD_LIVE_TABLE_H_

#include <atomic>
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

  // The shard of `address`: 10 bits of a bijective mix of its region
  // (live_table.cc), so blocks of one region share a shard. For tests.
  static size_t ShardIndex(uintptr_t address);
  // The home chunk of `address` (8-aligned, below 2^47) in a shard table
  // of `homes` home chunks (live_table.cc), so tests can aim entries at
  // one chunk.
  static size_t HomeForTest(uintptr_t address, size_t homes);

  constexpr LiveTable() = default;

  // Inserts or overwrites the entry of `address`. Returns false only if
  // memory for growing the shard could not be mapped (the entry is lost).
  bool Insert(uintptr_t address, const LiveEntry& entry) {
    return Insert(address, entry.id, entry.size, entry.stack, entry.api, entry.internal);
  }
  // The same with the entry's fields as arguments (in registers: the
  // allocation hook's entry went through memory, ~10 instructions an
  // insert, and a copy of it stalled on store forwarding).
  bool Insert(uintptr_t address, uint64_t id, uint64_t size, uint64_t stack, format::Api api,
              bool internal);
  // Removes the entry of `address` into *out. False if absent.
  bool Remove(uintptr_t address, LiveEntry* out);
  // Remove for a hook nested in this thread's defer zone (a signal
  // handler's free, nested_hooks.h), which must never wait: kBusy, with
  // nothing changed, whenever the plain Remove could wait or do more than
  // clear one entry: the shard lock is taken (maybe by the interrupted
  // frame itself), the shard is migrating (Migrate takes the process-wide
  // retire lock), or the entry may be in the side table (erasing there may
  // unmap it). Never shrinks the shard (the next Remove does). kAbsent: the
  // address has no entry, for sure. kBusy too for a program block allocated
  // by another family than `api`'s (a mismatched free: the caller's normal
  // path reports it, with a stack), and with `internal_only` for any entry
  // that is not internal.
  enum class NestedRemove : uint8_t { kRemoved, kAbsent, kBusy };
  NestedRemove TryRemoveNested(uintptr_t address, format::Api api, bool internal_only,
                               LiveEntry* out);
  bool Contains(uintptr_t address);
  // True if `address` is among the last kRecent addresses removed from its
  // shard (and not live): a cheap double-free hint for a pointer Remove
  // did not find.
  bool RecentlyRemoved(uintptr_t address);
  // Same, and *id receives the removed block's allocation id (leak_check's
  // double-free report names the block's allocation).
  bool RecentlyRemoved(uintptr_t address, uint64_t* id);

  size_t Size();  // sum over shards; for tests
  // Bytes of memory mapped for the table (shards, chunks, side tables);
  // HEAPSIGHT_STATS and tests. Locks each shard in turn.
  size_t MappedBytes();
  // Where the table's memory and entries are (HEAPSIGHT_STATS and tests).
  // Locks each shard in turn.
  struct MemoryUse {
    size_t chunk_bytes = 0;   // the shards' current chunk tables
    size_t old_bytes = 0;     // tables being migrated, as far as still mapped
    size_t side_bytes = 0;    // side tables
    size_t packed = 0;        // entries in chunk tables (current and old)
    size_t side = 0;          // entries in side tables
    size_t resizing = 0;      // shards migrating now
    // Since the start: resizes up and down, and old tables or pieces of
    // them returned (each was a munmap; now most are queued and returned
    // in batches).
    size_t grows = 0;
    size_t shrinks = 0;
    size_t unmaps = 0;
    // Process-wide, over every LiveTable: system calls that returned old
    // tables (each one TLB flush), ranges they returned, and bytes queued
    // for the next batch (still resident).
    size_t release_calls = 0;
    size_t released_ranges = 0;
    size_t retired_bytes = 0;
  };
  MemoryUse Memory();
  // Returns the old-table ranges queued for the next batch now (tests).
  // Not under a shard lock, so never while another thread may fork.
  static void ReleaseRetired();
  // Calls fn(address, entry, ctx) for every entry. Caller must hold LockAll
  // or otherwise know no thread mutates the table (fork child).
  void ForEachUnlocked(void (*fn)(uintptr_t, const LiveEntry&, void*), void* ctx);

  void LockAll();
  void UnlockAll();
  void ResetLocksInChild();

  // Turns the counting filter on (see above): maps it, drops the internal
  // entries, counts the rest, then publishes it, all under every shard
  // lock, so no insert or remove is missed. Once, before tracing starts;
  // false (filter stays off, every free probes) if it cannot be mapped.
  bool EnableFilter();
  // True if `address` is surely not in the table: the filter is on and its
  // slot counts 0. Lock-free: one load of the filter pointer, one of the
  // slot. A caller that gets false probes the table.
  bool SurelyAbsent(uintptr_t address) const {
    // Acquire: a filter seen here was fully counted before it was
    // published. Each entry's own count was added before its block went
    // back to the program, so the thread freeing it sees it.
    const std::atomic<uint8_t>* filter = filter_.load(std::memory_order_acquire);
    return filter != nullptr && filter[FilterSlot(address)].load(std::memory_order_relaxed) == 0;
  }
  bool FilterOn() const { return filter_.load(std::memory_order_relaxed) != nullptr; }
  // The filter itself (nullptr while off), for hooks that test it inline
  // (recorder.h's fast paths): SurelyAbsent is filter[FilterSlot(a)] == 0.
  const std::atomic<uint8_t>* Filter() const { return filter_.load(std::memory_order_acquire); }
  // Makes the slot of every 8-aligned address in [begin, end) stuck (as a
  // count of 255): the filter never says such an address is absent, so a
  // hook's inline filter test sends it to the generic path. For the
  // bootstrap arena's blocks (recorder.h's fast paths). After
  // EnableFilter; false if the filter is off.
  bool StickFilterRange(uintptr_t begin, uintptr_t end);
  // Bytes of the filter's mapping (0 while off), and how many of its slots
  // are non-zero now (for HEAPSIGHT_STATS and tests).
  size_t FilterBytes() const;
  size_t FilterMarkedSlots() const;

  static constexpr int kFilterBits = 20;
  static size_t FilterSlot(uintptr_t address) {
    return static_cast<size_t>((address >> 4) & ((uintptr_t{1} << kFilterBits) - 1));
  }

 private:
  static constexpr int kRecent = 16;
  struct Chunk;
  struct WideSlot {
    uint64_t address;  // 0 = empty
    uint64_t id;
    uint64_t size;
    uint64_t meta;  // stack << 9 | internal << 8 | api
  };
  // 384 bytes, six cache lines (live_table.cc asserts it); what every
  // insert and remove reads is in the first: lock, table, counts,
  // thresholds and the `old` test. 32-bit fields where a shard can never
  // need more (4 G entries, a 4 GiB table).
  struct alignas(64) Shard {
    SpinLock lock;
    uint32_t recent_pos = 0;
    // The table inserts go to: `nchunks` chunks (whole pages), the first
    // `nhome` of them homes (nchunks - 30; 0 while nothing is mapped).
    Chunk* chunks = nullptr;
    size_t nchunks = 0;
    size_t nhome = 0;
    size_t count = 0;
    uint32_t room = 0;          // entries the table takes before it grows
    // Below this count the next insert shrinks the table; a remove, below
    // a quarter of it (live_table.cc, kRemoveShrinkDivisor).
    uint32_t shrink_below = 0;
    // While growing or shrinking: the previous table; its chunks below
    // `cursor` have been moved and its first `old_unmapped` bytes returned.
    Chunk* old = nullptr;
    uint32_t old_unmapped = 0;
    uint32_t populated = 0;  // bytes of `chunks` made resident (PagePopulate)
    size_t old_nchunks = 0;
    size_t old_nhome = 0;
    size_t old_count = 0;
    size_t cursor = 0;
    // Side table for entries the packed form cannot hold (linear probing,
    // load at most 1/2, backward-shift deletion).
    WideSlot* wide = nullptr;
    uint32_t wide_capacity = 0;
    uint32_t wide_count = 0;
    // Times the side table emptied and was returned; from kWideKeepAfter
    // on, an empty one-page side table stays mapped (see WideErase).
    uint32_t wide_empties = 0;
    // Counts for Memory() (wrap at 2^32: statistics only).
    uint32_t grows = 0;
    uint32_t shrinks = 0;
    uint32_t unmaps = 0;
    uint64_t recent[kRecent] = {};  // last removed addresses (ring)
    uint64_t recent_id[kRecent] = {};  // their allocation ids
  };

  friend struct LiveTableImpl;  // live_table.cc
  Shard& ShardOf(uintptr_t address);

  Shard shards_[kShards];
  // The counting filter (kFilterBits slots), or nullptr while off. Written
  // under every shard lock, or with no lock while nothing was ever
  // inserted (EnableFilter); counts change under the owning entry's shard
  // lock, atomically (two shards may share a slot).
  std::atomic<std::atomic<uint8_t>*> filter_{nullptr};
  // Set by the first Insert, before it reads filter_. Until then every
  // shard is empty, and EnableFilter need not lock or walk the 1024 shard
  // headers (384 KiB: 96 pages a sampled run would touch for nothing).
  std::atomic<bool> inserted_{false};
  // proc24 (2026-12-07): the shards an insert ever reached, one bit each.
  // A shard whose bit is clear is empty and its header was never written,
  // so the whole-table walks (LockAll/UnlockAll, ForEachUnlocked, Size,
  // Memory, MappedBytes, EnableFilter) skip it: a short-lived process's
  // exit walk touched all 96 pages of shard headers (1024 x 384 bytes) for
  // the few shards it used. A bit is set once, by the first insert into
  // its shard, under `touch_lock_`; LockAll holds that lock until
  // UnlockAll, so no shard becomes used while the table is held whole.
  // Bits are never cleared (an emptied shard keeps its bit).
  std::atomic<uint64_t> touched_[kShards / 64] = {};
  SpinLock touch_lock_;
  bool Touched(size_t shard) const {
    return (touched_[shard / 64].load(std::memory_order_acquire) >> (shard % 64) & 1) != 0;
  }
  void Touch(size_t shard);
};

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_LIVE_TABLE_H_
