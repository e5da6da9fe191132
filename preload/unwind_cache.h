// preload/unwind_cache.h: unwinds only what changed since the thread's last
// stacks, and splices the unchanged outer frames.
//
// Unwinding is most of the cost of an event (libunwind: 5-10 ns a frame),
// and a program's stacks change at the top: a loop calls a function that
// allocates; an interpreter 60 frames deep runs one bytecode after another.
// This cache keeps, per thread, the last few stacks it walked ("memos"),
// outermost frame first, each frame with the registers the walk had there
// (ip, sp, rbp), the stack-table node of the stack from that frame down to
// the outermost one, and the stack words the walk read to step out of it.
//
// An event walks its stack from the program's entry into heapsight
// (UnwindKey) outwards with the frames' DWARF rules (unwinder_cfi.h, cached
// per return address). Before each step it asks whether the walk is at a
// frame a memo had: same ip, same sp, same rbp when the rest of that memo's
// walk read rbp (the memos that may have a frame at the walk's sp and ip
// are one load away: memo_frame_index.h; only their frames are compared).
// If so, and every stack word the memo's walk read from that frame
// outwards still holds what it held, then the rest of this walk
// would read the same words with the same rules from the same registers:
// it would give the memo's frames. They are spliced on (their node is
// already known), and only the frames stepped so far are new.
//
// Why this is exact (never a guess). A walk is a function of its starting
// registers (ip, sp, rbp: the rules use no other register, see
// unwinder_cfi.h), the rules of the return addresses it meets (fixed for
// the code loaded; every dlopen/dlclose drops the rules and memos), and the
// stack words it reads (each frame's return address slot and, where the
// rule says so, its rbp slot). The match compares the registers; the check
// compares every word the rest of the memo's walk read, down to the slot
// holding the return address into heapsight's main() wrapper that ends the
// stack. A frame that returned and was called again from elsewhere at the
// same depth and address (the case a check of one return address would
// miss) changed a checked word further out. longjmp, exceptions, stack
// switches and reused thread stacks change registers or words, so they
// miss, never hit wrongly.
//
// Cost: the frames stepped (a rule lookup and one or two loads each) plus
// the check of the spliced part's words: one 16-byte load and compare per
// frame-pointer frame (its saved rbp and return address are adjacent), one
// load and compare per word elsewhere; words shared with a memo already
// checked in the same event are not read again (common_). A memo's
// innermost words are read first (kInnerPairs): a memo that does not
// hold most often differs near its top, and is told apart there without
// reading (or, to find where it differs, reading twice) its outer words;
// a word found changed rules the memo out at that frame and inside it
// for the rest of the event, and every memo that shares the frame too
// (kFrameChanged). The stepped frames' nodes come from a small per-thread
// copy of the stack table's edges (node_edge_cache.h) before the table.
// Against libunwind's ~7 ns a frame and the stack table's hashing of every
// frame. The walk gives up (Capture returns false, the caller
// unwinds with libunwind, exactly as without this cache) on a frame whose
// rule it refuses (signal frames, realigned stacks, code without CFI), on
// a read outside the thread's own stack, and on stacks deeper than
// max_depth (cut stacks are left to CaptureStack).
//
// Reads are bounded: every load is in [entry sp, top of the thread's
// stack) (t_stack_low/high, unwinder.h), so it cannot fault whatever the
// stack holds; off the thread's own stack (a signal stack, a coroutine's
// stack) the cache stands aside.
//
// Constraints: owned by one thread (never used through the shared orphan
// state); no malloc (PageAlloc'ed by the caller, zero-filled = empty); no
// locks except the stack table's when a new node is made; no syscalls but
// the one-time stack-bounds lookup per thread (/proc/self/maps, raw) and, on
// the main thread, up to 16 more as its stack grows (unwinder.h).
// Must run under the reentry guard.
#ifndef HEAPSIGHT_PRELOAD_UNWIND_CACHE_H_
#define HEAPSIGHT_PRELOAD_UNWIND_CACHE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>

#include "format/options.h"
#include "preload/memo_frame_index.h"
#include "preload/node_edge_cache.h"
#include "preload/stack_word_checks.h"
#include "preload/unwinder.h"
#include "preload/unwinder_cfi.h"
#include "preload/written_pages.h"

namespace heapsight::preload {

class StackTable;

// Bumped by InvalidateUnwindCaches: a cache whose generation differs resets.
extern std::atomic<uint64_t> g_unwind_generation;
// Events of this thread so far, up to UnwindCache::kWarmupEvents (a
// recycled ThreadState's cache moves to a new thread, whose bounds are its
// own).
extern constinit thread_local uint32_t t_unwind_warmup __attribute__((tls_model("initial-exec")));

// Where the program called into heapsight.
struct UnwindKey {
  uintptr_t ip = 0;  // return address into the program (the first frame)
  uintptr_t sp = 0;  // the program's stack pointer at the call (our hook's CFA)
  uintptr_t bp = 0;  // the program's rbp at the call
};

// The key of the current call: reads the frame of the outermost
// libheapsight.so function on the call chain (our code keeps frame
// pointers). False if that frame is not found.
bool CurrentUnwindKey(UnwindKey* key);

// The same from `fp`, the frame of a function of ours on the call chain
// (its __builtin_frame_address(0)): for the hooks, which call it inline
// from their own frame (GetStack in recorder.cc): the out-of-line call
// and the step out of CurrentUnwindKey's own frame cost about 25
// instructions an allocation.
__attribute__((always_inline)) inline bool UnwindKeyFromOwnFrame(uintptr_t fp, UnwindKey* key) {
  // Only our own frames are read, up to the one the program called.
  for (int i = 0; i < 32 && fp != 0; ++i) {
    const auto* frame = reinterpret_cast<const uintptr_t*>(fp);
    if (!IsOwnCode(frame[1])) {
      key->bp = frame[0];
      key->ip = frame[1];
      key->sp = fp + 2 * sizeof(uintptr_t);  // our hook's CFA: the caller's sp
      return true;
    }
    fp = frame[0];
  }
  return false;
}

// Drops every thread's cached rules and memos (their next Capture sees it):
// code may change at an address. Called by the dlopen/dlclose hooks.
void InvalidateUnwindCaches();

// HEAPSIGHT_VERIFY_UNWIND's process-wide counters: a stack the cache gave,
// compared with libunwind's full unwind.
void CountUnwindVerification(bool match);
uint64_t UnwindVerifications(uint64_t* mismatches);

class UnwindCache {
 public:
  static constexpr size_t kMaxFrames = static_cast<size_t>(format::kMaxStackDepth);
  static constexpr size_t kMemos = 8;
  static_assert(kMemos <= MemoFrameIndex::kMaxMemos);
  static constexpr size_t kRuleSlots = 2048;  // direct-mapped, by return address
  // A thread that has looked up this many rules runs more distinct code
  // than the inline slots hold (cc1plus: 590,862 lookups with 2,048 slots,
  // 85,826 with 16,384): its rules move to a mapped table of
  // kBigRuleSlots (384 KiB). Threads that run little code never map it.
  static constexpr size_t kBigRuleSlots = 16384;
  static constexpr uint64_t kGrowRulesAfter = 4 * kRuleSlots;
  // Events a thread makes before the cache looks up its stack bounds and
  // starts: short-lived threads never pay for the /proc/self/maps read.
  static constexpr uint32_t kWarmupEvents = 8;
  static constexpr uint32_t kNoProbe = ~0u;
  // A memo unused for this many events may take a copy of another's outer
  // frames when a walk splices onto them (see Capture). 4,096: python3.11's
  // dict loop, callgrind, 2,040 M instructions against 2,046 M at 1,024,
  // 2,057 M at 256 and 2,054 M at 16,384.
  static constexpr uint32_t kStaleAfter = 4096;
  // FramesAtOrAbove steps this many frames from its hint before it
  // searches.
  static constexpr uint32_t kNearFrames = 8;
  // Verify reads a memo's innermost words first, this many pairs and
  // singles (the last 8 frames, most often), and the rest only if they
  // hold: a memo that differs from the stack differs near the top far
  // more often than out by main (recursive: 46,653 of 100,000 events
  // read all of a failing memo's 65 pairs, then again to find where).
  static constexpr uint32_t kInnerPairs = 8;
  static constexpr uint32_t kInnerSingles = 8;

  // Totals since the cache was created (HEAPSIGHT_STATS).
  struct Stats {
    uint64_t lookups = 0;  // Capture calls
    uint64_t hits = 0;     // stacks spliced onto a memo
    uint64_t learnt = 0;   // stacks walked to the end (new memos)
    uint64_t refused = 0;  // left to libunwind
    uint64_t stepped = 0;  // frames stepped
    uint64_t spliced = 0;  // frames taken from memos
    uint64_t rule_misses = 0;  // return addresses whose rule was looked up (FindFrameRule)
    // Stack words compared with a memo's (a probe word, the words of the
    // frames a check covers; not the re-reads that find where a changed
    // memo differs, nor words another memo's check covered in the event).
    uint64_t words_checked = 0;
    // Stepped frames whose stack-table node the thread's edge cache gave
    // (node_edge_cache.h); the others were looked up in the table.
    uint64_t edge_hits = 0;
  };
  const Stats& stats() const { return stats_; }

  // The stack entered at `key`, as a leaf node of `table`, when the cache
  // can give it exactly (see above): true, *leaf set and the new nodes'
  // ids in [*first_new, *last_new] (first > last when none). False: the
  // caller unwinds (nothing was recorded). Stacks of more than `max_depth`
  // frames are refused.
  bool Capture(const UnwindKey& key, size_t max_depth, StackTable* table, uint64_t* leaf,
               uint64_t* first_new, uint64_t* last_new);

  // In a fork child: the memos stay (the child's stack is the parent's),
  // the counters start over.
  void ResetCountersInChild();

  // For tests: every memo's entry record says what the memo says.
  bool EntriesInSyncForTest() const;

  // Writes the pages lookups read before they write them (a read first
  // would map the zero page, and the write after it flush every CPU's TLB:
  // written_pages.h); nothing changes. Called when a thread's warm-up ends
  // (the cache's first real use).
  void WriteFirstPages();

 private:
  struct RuleSlot {
    uintptr_t ip;  // 0 = empty
    FrameRule rule;
  };
  // A stack word a walk read: the word at `address` held `value`.
  struct Check {
    uintptr_t address;
    uintptr_t value;
  };
  // Two adjacent stack words a walk read: a frame-pointer frame's saved rbp
  // (at `address`) and return address (at `address` + 8), checked with one
  // 16-byte load and compare.
  struct alignas(16) PairCheck {
    uintptr_t address;
    uintptr_t unused;    // keeps `value` 16-byte aligned for the compare
    uintptr_t value[2];  // [0] the saved rbp, [1] the return address
  };
  // One frame of a memo. Its words (the return address slot the walk read
  // to step out of it and, when the caller's walk needs it, the caller's
  // saved rbp) are pairs [frames[f - 1].pair_end, pair_end) and singles
  // [frames[f - 1].single_end, single_end): a pair when the two are
  // adjacent (frame-pointer code), else singles.
  struct MemoFrame {
    uintptr_t ip, sp, bp;  // the walk's registers at the frame
    uint64_t node;         // the stack from this frame outwards
    uint32_t pair_end;     // pairs [0, pair_end) cover this frame and those out of it
    uint32_t single_end;   // singles likewise
    uint32_t bp_needed;    // 1: the walk out of this frame reads its rbp
  };
  // What Capture's entry test reads of memo m (entries_[m]), kept beside
  // the memos so that the test of a memo whose top frame is not the entry,
  // or whose probe word tells it apart, touches one small record and no
  // memo (SyncEntry writes it whenever the memo's top frame, count, probe
  // or high change). A memo with no frames has sp 0 (never an entry).
  // 128-byte aligned: entries_[mi] is one shift away (an 80-byte stride
  // cost three instructions more per memo tried).
  struct alignas(128) EntryView {
    uintptr_t sp, ip;  // the top frame's
    uintptr_t bp;      // the top frame's rbp, compared where bp_mask is ~0
    uintptr_t bp_mask;  // ~0 if the top frame's bp_needed, else 0
    uintptr_t high;     // the memo's high + 8: above the stack's top, it cannot hold
    // The probe word (Verify's first check) and its value; with no probe,
    // this record's own probe_value, which always holds (no branch).
    uintptr_t probe_address;
    uintptr_t probe_value;
    uint64_t node;        // the top frame's node: the stack on a hit
    uint32_t pair_end;    // the top frame's pair_end and single_end: every check
    uint32_t single_end;
    uint32_t probe_words;  // 1 with a probe, else 0 (words_checked)
    uint32_t top;          // count - 1
  };
  // One stack, outermost frame first (index 0).
  struct Memo {
    uint32_t count;   // frames; 0 = empty
    uint32_t stamp;   // last use (LRU)
    uintptr_t high;   // highest address a check reads
    uint32_t probe;   // the frame whose word Verify checks first (kNoProbe: none)
    uintptr_t probe_address;  // that word (its return address slot), if probe < count
    uintptr_t probe_value;
    // Frames first, then checks, each array outermost first: a shallow
    // stack touches the first page of each, so a thread's memos cost a few
    // pages of memory.
    MemoFrame frames[kMaxFrames];
    PairCheck pairs[kMaxFrames];
    Check singles[2 * kMaxFrames + 2];
  };
  // One frame of the current walk, innermost first.
  struct Step {
    uintptr_t ip, sp, bp;
    uintptr_t ra_slot;   // where its return address was read (0: none, the end)
    uintptr_t bp_slot;   // where the caller's rbp was read (0: not saved)
    uintptr_t next_bp;   // the caller's rbp
    bool uses_bp;        // its CFA is rbp-based
  };

  const FrameRule& RuleFor(uintptr_t ip);
  // A rule not in its slot: looked up (and the big table mapped when due).
  const FrameRule& RuleMiss(RuleSlot* slot, uintptr_t ip);
  // The memo to fill next: an empty one, else the least recently used.
  Memo* Victim();
  // Copies frames 0..i of `from` (and their checks) into `to`, unless
  // `shared` (`to` has them: common_). Sets both memos' probes.
  // `changed`: the first frame of `from` Verify found changed (kNoProbe).
  static void CopyTail(Memo& from, uint32_t i, uint32_t changed, bool shared, Memo* to);
  void Reset();
  // Memo mi now shares at most its frames [0, frames) with any other memo.
  void KeepShared(size_t mi, uint32_t frames);
  // Checks memo `m`'s words for frames 0..i against the stack now: returns
  // i if all hold. Else either the innermost frame (< i) up to which all
  // hold (-1 if none), *first_changed the one out of it; or kFrameChanged
  // when a word of frame *first_changed (<= i) changed, frames below it
  // not checked: the memo's probe word, or one of the innermost words,
  // read first (kInnerPairs, kInnerSingles).
  int64_t Verify(const Memo& m, uint32_t i, uint32_t* first_changed);
  // Verify when frames [0, known) are known to hold (another memo shares
  // them and was checked in this event): only the others are read.
  int64_t VerifyShared(const Memo& m, uint32_t i, uint32_t known, uint32_t* first_changed);
  int64_t VerifyFrom(const Memo& m, uint32_t i, uint32_t known, uint32_t* first_changed);
  // Verify's end when a word of frames 0..i changed: returns the frame out
  // of the outermost changed one (-1 if frame 0), *first_changed that one.
  // Checks before pairs[pair_begin] and singles[single_begin] hold.
  static int64_t FirstChanged(const Memo& m, uint32_t i, uint32_t pair_begin,
                              uint32_t single_begin, uint32_t* first_changed);
  // Makes frame f memo m's probe and names the word Verify checks for it
  // (the frame's return address slot; none while f is not a frame yet).
  static void SetProbe(Memo* m, uint32_t f);
  // The frame (<= i) that pair or single check j belongs to: `end` is
  // &MemoFrame::pair_end or &MemoFrame::single_end.
  static uint32_t FrameEndingPast(const Memo& m, uint32_t i, uint32_t j,
                                  uint32_t MemoFrame::*end);
  // How many of m's frames have an sp at or above `sp`, searched from `hint`.
  static uint32_t FramesAtOrAbove(const Memo& m, uint32_t hint, uintptr_t sp);
  // Adds memo mi's frames [from, to) to frame_index_.
  void IndexFrames(size_t mi, uint32_t from, uint32_t to);
  // frame_index_ anew from the memos' frames (drops its stale bits).
  void RebuildFrameIndex();
  static constexpr int64_t kFrameChanged = -3;
  // Writes the walk's frames [0, n) above memo frame `base` (-1: a new
  // memo from scratch) and fixes nodes, checks and bp_needed. The frames'
  // nodes are nodes_[0, n) if `nodes_known`, else read from `table` (the
  // leaf and its ancestors).
  void Record(Memo* m, int64_t base, size_t n, uint64_t leaf, bool nodes_known,
              const StackTable& table);
  // The node of the walk's frames ips_[0, n) on top of `base`, as
  // StackTable::Extend, through edge_cache_ first; sets nodes_[0, n).
  uint64_t Splice(StackTable* table, uint64_t base, size_t n, uint64_t* first_new,
                  uint64_t* last_new);
  // entries_[mi] anew from memos_[mi].
  void SyncEntry(size_t mi);
  // Everything but the entry test Capture inlines: the preamble's rare
  // cases (warm-up, a reset, an index rebuild, a stack not ours) when not
  // `entered`, else the entry memos the test left (those in
  // `probe_failed` were told apart by their probe word), and the walk.
  bool CaptureSlow(const UnwindKey& key, size_t max_depth, StackTable* table, uint64_t* leaf,
                   uint64_t* first_new, uint64_t* last_new, bool entered, uint32_t probe_failed);

  RuleSlot rules_[kRuleSlots];
  RuleSlot* big_rules_;  // kBigRuleSlots, PageAlloc'ed; nullptr: rules_ is used
  uint64_t rule_misses_at_reset_;  // stats_.rule_misses when big_rules_ was last returned
  EntryView entries_[kMemos];
  Memo memos_[kMemos];
  uint32_t hint_[kMemos];  // FramesAtOrAbove's last answer per memo
  // Which memos may have a frame at a walk's (sp, ip): every frame of every
  // memo is in it (IndexFrames), with stale bits of overwritten frames.
  MemoFrameIndex frame_index_;
  // common_[a][b]: memos a and b have the same words (same addresses, same
  // values) in their frames [0, common_[a][b]): one's check is the other's.
  uint16_t common_[kMemos][kMemos];
  uint16_t shared_bound_[kMemos];  // at least the largest of common_[mi][*]
  Step walk_[kMaxFrames + 1];
  uintptr_t ips_[kMaxFrames + 1];
  uint64_t nodes_[kMaxFrames + 1];  // Splice's: the node of each walked frame
  NodeEdgeCache edge_cache_;
  const StackTable* edge_table_;  // the table edge_cache_'s edges are from
  uint32_t clock_;
  uint32_t warmup_;
  uint64_t generation_;  // of InvalidateUnwindCaches, when last reset
  Stats stats_;
  uint32_t memos_written_;  // memos whose header Victim has written (written_pages.h)
  WrittenPages<sizeof(RuleSlot) * kRuleSlots> rule_pages_;  // rules_'s written pages
};

// Inline: the entry test is most events' whole unwind (the call, its seven
// arguments and the prologue its general path needs cost ~40 instructions).
__attribute__((always_inline)) inline bool UnwindCache::Capture(const UnwindKey& key,
                                                                 size_t max_depth,
                                                                 StackTable* table,
                                                                 uint64_t* leaf,
                                                                 uint64_t* first_new,
                                                                 uint64_t* last_new) {
  ++stats_.lookups;
  *first_new = 1;
  *last_new = 0;
  const uintptr_t high = t_stack_high;
  // The rare cases first, in one test (CaptureSlow takes them one by one).
  // Only on this thread's own stack, whose live part [sp, high) is mapped.
  if (__builtin_expect(t_unwind_warmup < kWarmupEvents ||
                           g_unwind_generation.load(std::memory_order_relaxed) != generation_ ||
                           frame_index_.NeedsRebuild() || key.sp < t_stack_low ||
                           key.sp >= high || max_depth > kMaxFrames,
                       0)) {
    return CaptureSlow(key, max_depth, table, leaf, first_new, last_new, false, 0);
  }
  ++clock_;
  // The entry test, the common hit (a loop calling an allocating function,
  // an interpreter back at an allocation site): the memos frame_index_
  // names for the entry, in memo order, each compared through its entry
  // record; the first whose top frame is the entry, whose probe word holds
  // and all of whose words hold is the stack. What CaptureSlow's entry
  // loop would do for these memos, without its per-memo bookkeeping for
  // the walk (python3.11, perl and alloc_bench hit here for 80-99% of
  // their stacks, where the general loop cost 50-110 instructions a memo
  // tried). Anything else (a memo above the stack's top, a changed word
  // past the probe, a cut stack, no memo) goes on in CaptureSlow, which
  // skips the memos told apart by their probe word here.
  uint32_t probe_failed = 0;
  for (uint32_t cand = frame_index_.Candidates(key.sp, key.ip); cand != 0; cand &= cand - 1) {
    const auto mi = static_cast<size_t>(__builtin_ctz(cand));
    const EntryView& e = entries_[mi];
    if (e.sp != key.sp || e.ip != key.ip || ((e.bp ^ key.bp) & e.bp_mask) != 0) continue;
    if (e.high > high) break;  // a word above the stack's top: CaptureSlow's
    // The probe word first (Verify's order): it tells apart the memos
    // that share this top frame.
    if (LoadStackWord(e.probe_address) != e.probe_value) {
      probe_failed |= 1u << mi;
      ++stats_.words_checked;  // a failed probe is a real one
      continue;
    }
    Memo& m = memos_[mi];
    if ((e.pair_end != 0 && PairsDiffer(m.pairs, 0, e.pair_end)) ||
        (e.single_end != 0 && SinglesDiffer(m.singles, 0, e.single_end)) ||
        e.top + 1 > max_depth) {
      break;  // CaptureSlow checks it again and finds where it changed
    }
    stats_.words_checked += e.probe_words + 2 * e.pair_end + e.single_end;
    // What the general path does for a hit without new frames (Record
    // with n = 0). The entry record needs no update: rbp is compared only
    // where needed (and then equal), and the probe stays none.
    const uint32_t i = e.top;
    *leaf = e.node;
    m.frames[i].bp = key.bp;
    if (m.probe > i) SetProbe(&m, i + 1);
    m.stamp = clock_;
    ++stats_.hits;
    stats_.spliced += i + 1;
    return true;
  }
  return CaptureSlow(key, max_depth, table, leaf, first_new, last_new, true, probe_failed);
}

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_UNWIND_CACHE_H_
