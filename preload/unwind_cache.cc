// preload/unwind_cache.cc: see unwind_cache.h.
//
// Constraints: no malloc; no locks except the stack table's on a new node;
// no syscalls but InitThreadStackBounds once per thread. Every load from
// the program's stack is bounds-checked against the thread's stack first.
#include "preload/unwind_cache.h"

#include <atomic>
#include <cstring>

#include "preload/internal_alloc.h"
#include "preload/stack_table.h"
#include "preload/stack_word_checks.h"
#include "preload/unwinder.h"

namespace heapsight::preload {

constinit std::atomic<uint64_t> g_unwind_generation{0};
constinit thread_local uint32_t t_unwind_warmup __attribute__((tls_model("initial-exec"))) = 0;

namespace {

uint32_t Min(uint32_t a, uint32_t b) { return a < b ? a : b; }

}  // namespace

void InvalidateUnwindCaches() { g_unwind_generation.fetch_add(1, std::memory_order_relaxed); }

namespace {
std::atomic<uint64_t> g_verified{0};
std::atomic<uint64_t> g_mismatches{0};
}  // namespace

void CountUnwindVerification(bool match) {
  g_verified.fetch_add(1, std::memory_order_relaxed);
  if (!match) g_mismatches.fetch_add(1, std::memory_order_relaxed);
}

uint64_t UnwindVerifications(uint64_t* mismatches) {
  *mismatches = g_mismatches.load(std::memory_order_relaxed);
  return g_verified.load(std::memory_order_relaxed);
}

__attribute__((noinline)) bool CurrentUnwindKey(UnwindKey* key) {
  // Only our own frames are read (every function of ours keeps a frame
  // pointer, preload/meson.build), up to the one the program called. The
  // hooks walk from their own frame instead (UnwindKeyFromOwnFrame,
  // inlined into GetStack); this out-of-line form is for other callers.
  return UnwindKeyFromOwnFrame(reinterpret_cast<uintptr_t>(__builtin_frame_address(0)), key);
}

void UnwindCache::Reset() {
  for (RuleSlot& slot : rules_) slot.ip = 0;  // (writes every page of it)
  if (big_rules_ != nullptr) {
    // Returned rather than cleared (clearing would touch all of it); the
    // thread maps it again after as many lookups as the first time.
    PageFree(big_rules_, kBigRuleSlots * sizeof(RuleSlot));
    big_rules_ = nullptr;
    rule_misses_at_reset_ = stats_.rule_misses;
  }
  for (Memo& m : memos_) m.count = 0;
  for (EntryView& e : entries_) e = EntryView{};
  frame_index_.Clear();
  std::memset(common_, 0, sizeof(common_));
  std::memset(shared_bound_, 0, sizeof(shared_bound_));
}

void UnwindCache::KeepShared(size_t mi, uint32_t frames) {
  if (shared_bound_[mi] <= frames) return;  // the common case: nothing to lower
  shared_bound_[mi] = static_cast<uint16_t>(frames);
  for (size_t x = 0; x < kMemos; ++x) {
    if (common_[mi][x] > frames) {
      common_[mi][x] = static_cast<uint16_t>(frames);
      common_[x][mi] = static_cast<uint16_t>(frames);
    }
  }
}

constexpr int Log2(size_t n) { return n <= 1 ? 0 : 1 + Log2(n / 2); }

const FrameRule& UnwindCache::RuleFor(uintptr_t ip) {
  // The top bits of a multiplicative hash index the table.
  const uint64_t h = ip * 0x9e3779b97f4a7c15ULL;
  RuleSlot* slot;
  if (big_rules_ != nullptr) {
    slot = &big_rules_[h >> (64 - Log2(kBigRuleSlots))];  // populated when mapped
  } else {
    slot = &rules_[h >> (64 - Log2(kRuleSlots))];
    rule_pages_.BeforeRead(rules_, slot);
  }
  if (__builtin_expect(slot->ip != ip, 0)) return RuleMiss(slot, ip);
  return slot->rule;
}

__attribute__((noinline)) const FrameRule& UnwindCache::RuleMiss(RuleSlot* slot, uintptr_t ip) {
  // Refusals are cached too: a frame without rules costs one lookup.
  if (++stats_.rule_misses - rule_misses_at_reset_ >= kGrowRulesAfter && big_rules_ == nullptr) {
    // Zero-filled: empty; its pages are touched only as rules land there.
    if (auto* big = static_cast<RuleSlot*>(PageAlloc(kBigRuleSlots * sizeof(RuleSlot)));
        big != nullptr) {
      // Written now, in one system call: its lookups read slots first
      // (written_pages.h), and a thread that needs it fills most of it.
      PagePopulate(big, kBigRuleSlots * sizeof(RuleSlot));
      big_rules_ = big;
      slot = &big[(ip * 0x9e3779b97f4a7c15ULL) >> (64 - Log2(kBigRuleSlots))];
    }
  }
  slot->rule = FindFrameRule(ip);
  slot->ip = ip;
  return slot->rule;
}

namespace {

// The first of `checks` [begin, end) that differs (end if none), found in
// blocks of 8 checks so that the loads of a block stay independent.
template <typename Differ, typename Checks>
uint32_t FirstDiffering(const Checks* checks, uint32_t begin, uint32_t end, Differ differ) {
  uint32_t j = begin;
  while (j < end) {
    const uint32_t block_end = end - j > 8 ? j + 8 : end;
    if (differ(checks, j, block_end)) {
      while (!differ(checks, j, j + 1)) ++j;
      return j;
    }
    j = block_end;
  }
  return end;
}

}  // namespace

void UnwindCache::SetProbe(Memo* m, uint32_t f) {
  m->probe = f;
  m->probe_address = 0;
  if (f >= m->count) return;  // named when frames are added (Record)
  // The frame's return address word: a pair's second, else its first single.
  const uint32_t pair = f == 0 ? 0 : m->frames[f - 1].pair_end;
  const uint32_t single = f == 0 ? 0 : m->frames[f - 1].single_end;
  if (pair < m->frames[f].pair_end) {
    m->probe_address = m->pairs[pair].address + sizeof(uintptr_t);
    m->probe_value = m->pairs[pair].value[1];
  } else if (single < m->frames[f].single_end) {
    m->probe_address = m->singles[single].address;
    m->probe_value = m->singles[single].value;
  } else {
    m->probe = kNoProbe;  // a frame without words (the outermost): nothing to tell
  }
}

uint32_t UnwindCache::FrameEndingPast(const Memo& m, uint32_t i, uint32_t j,
                                      uint32_t MemoFrame::*end) {
  // The first frame whose words (pairs or singles, as `end` says) reach
  // past word j (the ends rise with the frame index); i + 1 if none of
  // frames 0..i does.
  uint32_t lo = 0, hi = i + 1;
  while (lo < hi) {
    const uint32_t mid = (lo + hi) / 2;
    if (m.frames[mid].*end > j) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  return lo;
}

__attribute__((always_inline)) inline int64_t UnwindCache::VerifyFrom(const Memo& m, uint32_t i,
                                                                       uint32_t known,
                                                                       uint32_t* first_changed) {
  *first_changed = kNoProbe;
  // First the frame that tells this memo from the one it was split from
  // (several memos often share an entry point and differ further out).
  if (m.probe <= i && m.probe >= known) {
    ++stats_.words_checked;
    if (LoadStackWord(m.probe_address) != m.probe_value) {
      *first_changed = m.probe;
      return kFrameChanged;  // how far out it holds: checked only if asked later
    }
  }
  // Then every word: pairs (frame-pointer frames) 16 bytes at a time, and
  // single words; the innermost ones first (kInnerPairs).
  const uint32_t pair_begin = known == 0 ? 0 : m.frames[known - 1].pair_end;
  const uint32_t single_begin = known == 0 ? 0 : m.frames[known - 1].single_end;
  const uint32_t pair_end = m.frames[i].pair_end;
  const uint32_t single_end = m.frames[i].single_end;
  const uint32_t pair_mid = pair_end - pair_begin > kInnerPairs ? pair_end - kInnerPairs : pair_begin;
  const uint32_t single_mid =
      single_end - single_begin > kInnerSingles ? single_end - kInnerSingles : single_begin;
  // Most stacks are all frame-pointer frames (pairs) or all CFI frames
  // (singles, e.g. python3.11): an empty part costs a compare.
  stats_.words_checked += 2 * (pair_end - pair_mid) + (single_end - single_mid);
  if ((pair_mid != pair_end && PairsDiffer(m.pairs, pair_mid, pair_end)) ||
      (single_mid != single_end && SinglesDiffer(m.singles, single_mid, single_end))) {
    // The outermost changed frame of these: exact if they were all the
    // words, else the words out of them are not known.
    const int64_t holds = FirstChanged(m, i, pair_mid, single_mid, first_changed);
    return pair_mid == pair_begin && single_mid == single_begin ? holds : kFrameChanged;
  }
  stats_.words_checked += 2 * (pair_mid - pair_begin) + (single_mid - single_begin);
  if ((pair_begin == pair_mid || !PairsDiffer(m.pairs, pair_begin, pair_mid)) &&
      (single_begin == single_mid || !SinglesDiffer(m.singles, single_begin, single_mid))) {
    return i;
  }
  return FirstChanged(m, i, pair_begin, single_begin, first_changed);
}

__attribute__((always_inline)) inline int64_t UnwindCache::Verify(const Memo& m, uint32_t i,
                                                                   uint32_t* first_changed) {
  return VerifyFrom(m, i, 0, first_changed);
}

int64_t UnwindCache::VerifyShared(const Memo& m, uint32_t i, uint32_t known,
                                  uint32_t* first_changed) {
  return VerifyFrom(m, i, known, first_changed);
}

__attribute__((noinline)) int64_t UnwindCache::FirstChanged(const Memo& m, uint32_t i,
                                                             uint32_t pair_begin,
                                                             uint32_t single_begin,
                                                             uint32_t* first_changed) {
  // Some word changed: the outermost frame with a changed word tells how
  // far out the memo still holds.
  const uint32_t pair_end = m.frames[i].pair_end;
  const uint32_t single_end = m.frames[i].single_end;
  const uint32_t pair = FirstDiffering(m.pairs, pair_begin, pair_end, PairsDiffer<PairCheck>);
  const uint32_t single =
      FirstDiffering(m.singles, single_begin, single_end, SinglesDiffer<Check>);
  const uint32_t a = pair < pair_end ? FrameEndingPast(m, i, pair, &MemoFrame::pair_end) : i + 1;
  const uint32_t b = single < single_end ? FrameEndingPast(m, i, single, &MemoFrame::single_end) : i + 1;
  const uint32_t first = a < b ? a : b;
  *first_changed = first;
  return static_cast<int64_t>(first) - 1;
}

uint64_t UnwindCache::Splice(StackTable* table, uint64_t base, size_t n, uint64_t* first_new,
                             uint64_t* last_new) {
  *first_new = 1;
  *last_new = 0;
  if (edge_table_ != table) {
    // A zero-filled cache is empty already (no page touched).
    if (edge_table_ != nullptr) edge_cache_.Clear();
    edge_table_ = table;
  }
  // Outermost walked frame first, as Extend: each edge's parent is the
  // node the previous one gave.
  uint64_t node = base;
  size_t k = n;
  for (; k > 0; --k) {
    const uint64_t next = edge_cache_.Find(node, ips_[k - 1]);
    if (next == 0) break;
    nodes_[k - 1] = node = next;
  }
  stats_.edge_hits += n - k;
  if (k == 0) return node;
  const uint64_t leaf = table->Extend(node, ips_, k, first_new, last_new, nodes_);
  if (leaf == 0) return 0;  // out of memory: nodes_ is partial
  for (size_t j = k; j-- > 0;) {
    edge_cache_.Put(node, ips_[j], nodes_[j]);
    node = nodes_[j];
  }
  return leaf;
}

void UnwindCache::Record(Memo* m, int64_t base, size_t n, uint64_t leaf, bool nodes_known,
                         const StackTable& table) {
  // Frames above base change: m shares at most frames 0..base.
  KeepShared(static_cast<size_t>(m - memos_), static_cast<uint32_t>(base + 1));
  // Frame k of the walk (innermost first) becomes memo frame base + n - k.
  uint32_t pairs = base < 0 ? 0 : m->frames[base].pair_end;
  uint32_t singles = base < 0 ? 0 : m->frames[base].single_end;
  uintptr_t high = base < 0 ? 0 : m->high;
  for (size_t k = n; k-- > 0;) {
    const Step& s = walk_[k];
    auto i = static_cast<uint32_t>(base + static_cast<int64_t>(n - k));
    m->frames[i].ip = s.ip;
    m->frames[i].sp = s.sp;
    m->frames[i].bp = s.bp;
    // What the walk read at the return address slot: the caller's ip, or
    // the return address into our own code that ended the stack.
    const uintptr_t ra = s.ra_slot != 0 ? LoadStackWord(s.ra_slot) : 0;
    // The caller's rbp, read from its slot, matters only if the walk out
    // of the caller reads rbp (frame i - 1's bp_needed, set before).
    const bool bp_checked = s.bp_slot != 0 && i > 0 && m->frames[i - 1].bp_needed != 0;
    if (s.ra_slot != 0 && bp_checked && s.bp_slot + sizeof(uintptr_t) == s.ra_slot) {
      // A frame-pointer frame: saved rbp and return address side by side.
      PairCheck& p = m->pairs[pairs++];
      p.address = s.bp_slot;
      p.value[0] = s.next_bp;
      p.value[1] = ra;
      if (s.ra_slot > high) high = s.ra_slot;
    } else {
      if (s.ra_slot != 0) {
        m->singles[singles].address = s.ra_slot;
        m->singles[singles++].value = ra;
        if (s.ra_slot > high) high = s.ra_slot;
      }
      if (bp_checked) {
        m->singles[singles].address = s.bp_slot;
        m->singles[singles++].value = s.next_bp;
        if (s.bp_slot > high) high = s.bp_slot;
      }
    }
    m->frames[i].pair_end = pairs;
    m->frames[i].single_end = singles;
    // Its rbp matters if its own CFA is rbp-based, or if it hands rbp on
    // unsaved to a caller whose walk reads it.
    m->frames[i].bp_needed = s.uses_bp || (s.bp_slot == 0 && i > 0 && m->frames[i - 1].bp_needed != 0);
  }
  // Nodes: the new frames' are the leaf and its first n - 1 ancestors.
  auto top = static_cast<uint32_t>(base + static_cast<int64_t>(n));
  if (nodes_known) {
    for (size_t k = 0; k < n; ++k) m->frames[top - k].node = nodes_[k];
  } else {
    uint64_t node = leaf;
    for (size_t k = 0; k < n; ++k) {
      m->frames[top - k].node = node;
      uint64_t parent = 0, ip = 0;
      if (node != 0) table.Node(node, &parent, &ip);
      node = parent;
    }
  }
  m->count = top + 1;
  m->high = high;
  IndexFrames(static_cast<size_t>(m - memos_), static_cast<uint32_t>(base + 1), top + 1);
  // The probe (see Verify) stays while it names one of the memo's frames;
  // else the first frame added.
  if (base < 0) {
    m->probe = kNoProbe;
  } else if (m->probe > top) {
    SetProbe(m, static_cast<uint32_t>(base + 1));
  } else if (m->probe > base) {
    SetProbe(m, m->probe);  // its frame was rewritten: its word too
  }
  m->stamp = clock_;
  SyncEntry(static_cast<size_t>(m - memos_));
}

void UnwindCache::ResetCountersInChild() {
  stats_ = Stats{};
  // The process-wide verify counters too: the child reports its own.
  g_verified.store(0, std::memory_order_relaxed);
  g_mismatches.store(0, std::memory_order_relaxed);
}

void UnwindCache::WriteFirstPages() {
  // What lookups read before anything writes it (written_pages.h), where
  // every thread uses it: the rule table's pointer and the entry records;
  // the hints, the frame index and the sharing tables; the counters. About
  // 5 pages. The hashed rule table and edge cache are written page by page
  // (WrittenPages: a thread with a few call sites uses a few of their 18
  // pages), the first memo headers by Victim; the memos' frames and checks
  // and the walk's arrays are written before they are read.
  WriteTouchRange(&big_rules_,
                  reinterpret_cast<char*>(&memos_) - reinterpret_cast<char*>(&big_rules_));
  WriteTouchRange(hint_, reinterpret_cast<char*>(&walk_) - reinterpret_cast<char*>(hint_));
  WriteTouchRange(&edge_table_, sizeof(*this) - (reinterpret_cast<char*>(&edge_table_) -
                                                 reinterpret_cast<char*>(this)));
}

UnwindCache::Memo* UnwindCache::Victim() {
  Memo* victim = &memos_[0];
  for (size_t k = 0; k < kMemos; ++k) {
    Memo& m = memos_[k];
    // An unused memo's header is first read here, then written by Record:
    // written first instead (written_pages.h), once per memo.
    if (k >= memos_written_) {
      WriteTouch(&m.count);
      memos_written_ = static_cast<uint32_t>(k + 1);
    }
    if (m.count == 0) return &m;
    if (clock_ - m.stamp > clock_ - victim->stamp) victim = &m;
  }
  return victim;
}

void UnwindCache::CopyTail(Memo& from, uint32_t i, uint32_t changed, bool shared, Memo* to) {
  size_t frames = i + 1;
  if (!shared) {
    std::memcpy(to->frames, from.frames, frames * sizeof(MemoFrame));
    std::memcpy(to->pairs, from.pairs, from.frames[i].pair_end * sizeof(PairCheck));
    std::memcpy(to->singles, from.singles, from.frames[i].single_end * sizeof(Check));
  }
  to->high = from.high;
  to->count = static_cast<uint32_t>(frames);
  // The frame where the stack now differs from `from` (found by Verify; if
  // none, the first past the copied frames) tells the two memos apart.
  uint32_t probe = changed != kNoProbe ? changed : i + 1;
  SetProbe(to, probe);
  SetProbe(&from, probe);
}

__attribute__((always_inline)) inline uint32_t UnwindCache::FramesAtOrAbove(
    const Memo& m, uint32_t hint, uintptr_t sp) {
  // Successive events enter at about the same depth: from where the last
  // search ended, a few frames up or down; else a binary search (a memo's
  // sp fall with the index).
  uint32_t lo = hint < m.count ? hint : m.count;
  for (uint32_t budget = kNearFrames; budget > 0; --budget) {
    if (lo < m.count && m.frames[lo].sp >= sp) {
      ++lo;
    } else if (lo > 0 && m.frames[lo - 1].sp < sp) {
      --lo;
    } else {
      return lo;
    }
  }
  uint32_t hi = m.count;
  lo = 0;
  while (lo < hi) {
    uint32_t mid = (lo + hi) / 2;
    if (m.frames[mid].sp >= sp) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  return lo;
}

void UnwindCache::IndexFrames(size_t mi, uint32_t from, uint32_t to) {
  const Memo& m = memos_[mi];
  for (uint32_t f = from; f < to; ++f) {
    frame_index_.Add(m.frames[f].sp, m.frames[f].ip, static_cast<uint32_t>(mi));
  }
}

__attribute__((noinline)) void UnwindCache::RebuildFrameIndex() {
  frame_index_.Clear();
  for (size_t mi = 0; mi < kMemos; ++mi) IndexFrames(mi, 0, memos_[mi].count);
}

void UnwindCache::SyncEntry(size_t mi) {
  const Memo& m = memos_[mi];
  EntryView& e = entries_[mi];
  if (m.count == 0) {
    e = EntryView{};  // sp 0: never the entry
    return;
  }
  const uint32_t i = m.count - 1;
  const MemoFrame& top = m.frames[i];
  e.sp = top.sp;
  e.ip = top.ip;
  e.bp = top.bp;
  e.bp_mask = top.bp_needed != 0 ? ~uintptr_t{0} : 0;
  e.high = m.high + sizeof(uintptr_t);
  e.node = top.node;
  e.pair_end = top.pair_end;
  e.single_end = top.single_end;
  e.top = i;
  // Verify checks the probe first when it names one of the memo's frames.
  if (m.probe <= i) {
    e.probe_address = m.probe_address;
    e.probe_value = m.probe_value;
    e.probe_words = 1;
  } else {
    e.probe_address = reinterpret_cast<uintptr_t>(&e.probe_value);
    e.probe_value = 0;
    e.probe_words = 0;
  }
}

bool UnwindCache::EntriesInSyncForTest() const {
  for (size_t mi = 0; mi < kMemos; ++mi) {
    const Memo& m = memos_[mi];
    const EntryView& e = entries_[mi];
    if (m.count == 0) {
      if (e.sp != 0) return false;
      continue;
    }
    const uint32_t i = m.count - 1;
    const MemoFrame& top = m.frames[i];
    const bool probe = m.probe <= i;
    if (e.sp != top.sp || e.ip != top.ip || e.bp_mask != (top.bp_needed != 0 ? ~uintptr_t{0} : 0) ||
        (e.bp_mask != 0 && e.bp != top.bp) || e.high != m.high + sizeof(uintptr_t) ||
        e.node != top.node || e.pair_end != top.pair_end || e.single_end != top.single_end ||
        e.top != i || e.probe_words != (probe ? 1u : 0u) ||
        e.probe_address !=
            (probe ? m.probe_address : reinterpret_cast<uintptr_t>(&e.probe_value)) ||
        (probe && e.probe_value != m.probe_value)) {
      return false;
    }
  }
  return true;
}

__attribute__((noinline)) bool UnwindCache::CaptureSlow(const UnwindKey& key, size_t max_depth,
                                                         StackTable* table, uint64_t* leaf,
                                                         uint64_t* first_new, uint64_t* last_new,
                                                         bool entered, uint32_t probe_failed) {
  if (!entered) {
    if (__builtin_expect(t_unwind_warmup < kWarmupEvents, 0)) {
      // The stack bounds: looked up once the thread has made a few events.
      if (++t_unwind_warmup == kWarmupEvents) {
        InitThreadStackBounds();
        WriteFirstPages();
      }
      ++stats_.refused;
      return false;
    }
    if (uint64_t gen = g_unwind_generation.load(std::memory_order_relaxed); gen != generation_) {
      Reset();
      generation_ = gen;
    }
    if (__builtin_expect(frame_index_.NeedsRebuild(), 0)) RebuildFrameIndex();
    // Only on this thread's own stack, whose live part [sp, high) is mapped.
    if (__builtin_expect(key.sp < t_stack_low, 0)) GrowThreadStackBounds(key.sp);
    if (key.sp < t_stack_low || key.sp >= t_stack_high || max_depth > kMaxFrames) {
      ++stats_.refused;
      return false;
    }
    ++clock_;
  }
  const uintptr_t high = t_stack_high;
  // Per memo: frames [0, holds] have all their words unchanged (checked
  // when the walk first meets the memo); -2 not checked; kFrameChanged: a
  // word of frame changed[mi] changed (its probe word, or one near its
  // top), the frames out of it not checked yet.
  int64_t holds[kMemos];
  uint32_t changed[kMemos];  // the first changed frame Verify found, or kNoProbe
  // What this event's checks found, per memo: frames [0, sound[mi]) hold,
  // and frame sound[mi] changed if bit mi of `broken`. A memo sharing its
  // outer frames with a checked one (common_) starts from there: memos of
  // one deep stack with different tops check the shared part once.
  uint32_t sound[kMemos];
  uint32_t checked = 0, broken = 0;
  // The memos whose holds is kFrameChanged: a memo that shares their frame
  // changed[x] (common_) has the same changed word.
  uint32_t failed = 0;
  auto verify = [&](size_t mi, uint32_t i) {
    const Memo& m = memos_[mi];
    if (m.high + sizeof(uintptr_t) > high) {
      holds[mi] = -1;  // a word above the stack's top now: it cannot hold
      changed[mi] = kNoProbe;
      return;
    }
    for (uint32_t x = failed; x != 0; x &= x - 1) {
      const auto xi = static_cast<size_t>(__builtin_ctz(x));
      if (changed[xi] <= i && common_[mi][xi] > changed[xi]) {
        holds[mi] = kFrameChanged;
        changed[mi] = changed[xi];
        failed |= 1u << mi;
        return;
      }
    }
    uint32_t known = 0;
    bool known_bad = false;
    for (uint32_t x = checked; x != 0; x &= x - 1) {
      const auto xi = static_cast<size_t>(__builtin_ctz(x));
      const uint32_t shared = common_[mi][xi];
      if (sound[xi] < shared) {
        if (sound[xi] > known || (sound[xi] == known && (broken >> xi & 1) != 0)) {
          known = sound[xi];
          known_bad = (broken >> xi & 1) != 0;
        }
      } else if (shared > known) {
        known = shared;
        known_bad = false;
      }
    }
    if (known > i) {
      holds[mi] = i;  // every word checked already, through other memos
      changed[mi] = kNoProbe;
    } else if (known_bad) {
      holds[mi] = static_cast<int64_t>(known) - 1;
      changed[mi] = known;
    } else if (known == 0) {
      holds[mi] = Verify(m, i, &changed[mi]);
    } else {
      holds[mi] = VerifyShared(m, i, known, &changed[mi]);
    }
    if (holds[mi] == kFrameChanged) {
      failed |= 1u << mi;
    } else {
      failed &= ~(1u << mi);
      checked |= 1u << mi;
      sound[mi] = static_cast<uint32_t>(holds[mi] + 1);
      if (holds[mi] < static_cast<int64_t>(i)) {
        broken |= 1u << mi;
      } else {
        broken &= ~(1u << mi);
      }
    }
  };
  // First the memos whose top frame is the entry itself (a loop calling an
  // allocating function, an interpreter back at an allocation site it used
  // a few events ago): if one holds, the stack is that memo's, with no
  // step and no search of the other memos' frames.
  // The memos that may have a frame at the entry (frame_index_): only
  // those can have it as their top frame.
  uint32_t tried = 0;  // bit mi: memo mi's top frame was checked here
  for (int64_t& h : holds) h = -2;
  // The memos Capture's entry test told apart by their probe word: as
  // Verify's probe failure below.
  for (uint32_t x = probe_failed; x != 0; x &= x - 1) {
    const auto mi = static_cast<size_t>(__builtin_ctz(x));
    tried |= 1u << mi;
    holds[mi] = kFrameChanged;
    changed[mi] = memos_[mi].probe;
  }
  failed = probe_failed;
  for (uint32_t cand = frame_index_.Candidates(key.sp, key.ip) & ~probe_failed; cand != 0;
       cand &= cand - 1) {
    const auto mi = static_cast<size_t>(__builtin_ctz(cand));
    Memo& m = memos_[mi];
    if (m.count == 0) continue;
    const uint32_t i = m.count - 1;
    const MemoFrame& top = m.frames[i];
    if (top.sp != key.sp || top.ip != key.ip || (top.bp_needed != 0 && top.bp != key.bp)) {
      continue;
    }
    tried |= 1u << mi;
    // Without the other memos' checks (most often the first memo tried
    // holds, or its probe tells it apart), but for the frames another
    // entry memo found changed, which rule out the memos that share them.
    uint32_t ruled_out = kNoProbe;
    for (uint32_t x = failed; x != 0; x &= x - 1) {
      const auto xi = static_cast<size_t>(__builtin_ctz(x));
      if (changed[xi] <= i && common_[mi][xi] > changed[xi]) ruled_out = changed[xi];
    }
    if (ruled_out != kNoProbe) {
      holds[mi] = kFrameChanged;
      changed[mi] = ruled_out;
    } else if (m.high + sizeof(uintptr_t) > high) {
      holds[mi] = -1;
      changed[mi] = kNoProbe;
    } else {
      holds[mi] = Verify(m, i, &changed[mi]);
    }
    if (holds[mi] == static_cast<int64_t>(i)) {
      if (i + 1 > max_depth) {
        ++stats_.refused;
        return false;  // a cut stack: CaptureStack's
      }
      // What the general path below does for a hit without new frames
      // (Record with n = 0).
      *leaf = top.node;
      m.frames[i].bp = key.bp;
      if (m.probe > i) SetProbe(&m, i + 1);
      m.stamp = clock_;
      SyncEntry(mi);
      ++stats_.hits;
      stats_.spliced += i + 1;
      return true;
    }
    // Did not hold: what its check found is kept for the memos that share
    // frames with it (met in the walk below).
    if (holds[mi] == kFrameChanged) {
      failed |= 1u << mi;
    } else {
      checked |= 1u << mi;
      sound[mi] = static_cast<uint32_t>(holds[mi] + 1);
      if (changed[mi] != kNoProbe) broken |= 1u << mi;
    }
    // Its top frame is the entry but a word of frame changed[mi] is not:
    // that word becomes its probe, so that Capture's entry test tells it
    // apart with one load next time, not a check of all its words (a
    // stale memo with the same top as a live one, tried first, cost
    // alloc_bench --depth 200 one 200-pair check in four events).
    if (changed[mi] != kNoProbe && changed[mi] != m.probe) {
      SetProbe(&m, changed[mi]);
      SyncEntry(mi);
    }
  }
  uintptr_t ip = key.ip, sp = key.sp, bp = key.bp;
  size_t n = 0;
  for (;;) {
    // Is the walk at a frame one of the memos had? Only the memos
    // frame_index_ names for (sp, ip) can say; each one's frame at sp (a
    // memo's frames' sp fall with the index: one at most) is searched from
    // where its last search ended. Taken in memo order, as one loop over
    // all of them would.
    uint32_t cand = frame_index_.Candidates(sp, ip);
    // At the entry, a memo whose top frame was checked above did not hold.
    if (n == 0) cand &= ~tried;
    for (; cand != 0; cand &= cand - 1) {
      const auto mi = static_cast<size_t>(__builtin_ctz(cand));
      Memo& m = memos_[mi];
      if (const int64_t h = holds[mi]; h != -2) {
        // Checked in this event: only its frames [0, limit) may still hold,
        // those at or above frame limit - 1's sp; nearer the top it is no
        // use, and not searched (recursive: most of the memos the index
        // names at a step, 11 searches an event).
        const uint32_t limit = h == kFrameChanged ? changed[mi] : static_cast<uint32_t>(h + 1);
        if (limit == 0 || sp < m.frames[limit - 1].sp) continue;
      }
      const uint32_t p = FramesAtOrAbove(m, hint_[mi], sp);
      hint_[mi] = p;
      if (p == 0 || m.frames[p - 1].sp != sp || m.frames[p - 1].ip != ip) continue;
      const uint32_t i = p - 1;
      if (m.frames[i].bp_needed != 0 && m.frames[i].bp != bp) continue;
      if (holds[mi] == kFrameChanged && i >= changed[mi]) {
        // A word of frame changed[mi] (<= i) changed: frames 0..i cannot
        // all hold, whatever the others hold (no scan: recursive read all
        // 65 pairs of such a memo again, for 0.47 of its events).
        continue;
      }
      if (holds[mi] == -2 || holds[mi] == kFrameChanged) {
        // The first meeting, or one out of the changed frame: Verify
        // (cheap when the probe or the innermost words tell it apart).
        verify(mi, i);
      }
      if (static_cast<int64_t>(i) > holds[mi]) continue;
      // The rest of this walk is memo frames i..0.
      if (n + i + 1 > max_depth) {
        ++stats_.refused;
        return false;  // a cut stack: CaptureStack's
      }
      uint64_t node = m.frames[i].node;
      if (n > 0) node = Splice(table, node, n, first_new, last_new);
      *leaf = node;
      // The new stack replaces memo m's frames above i, unless they are
      // worth more than a copy of frames 0..i into another memo (a few
      // call paths alternating at a shallow fork under deep tops): a lost
      // top costs ~5 ns a frame to step again, a copied frame ~1 ns.
      // While a memo is empty the copy is always made: call sites that
      // alternate at one depth (an interpreter's) each get a memo, found
      // at the entry later with no step.
      //
      // Else it replaces the least recently used of m and the memos that
      // have m's frames 0..i already (common_: copies of them made
      // earlier), with no copy: the tops of call sites that alternate
      // above frame i stay, one per memo, and are found at the entry
      // later. Such sharers are made by copying into a memo unused for
      // kStaleAfter events (one outside the thread's working set), once.
      // python3.11's dict loop stepped 444 k frames in 683 k stacks when
      // m's top was always replaced, 271 k with this.
      Memo* into = &m;
      if ((m.count - 1 - i) * 4 > i + 4 || memos_[kMemos - 1].count == 0) {
        into = Victim();
      } else {
        if (shared_bound_[mi] > i) {
          for (size_t x = 0; x < kMemos; ++x) {
            if (x != mi && common_[mi][x] > i &&
                clock_ - memos_[x].stamp > clock_ - into->stamp) {
              into = &memos_[x];
            }
          }
        }
        if (into == &m) {
          Memo* v = Victim();
          if (clock_ - v->stamp > kStaleAfter) into = v;  // a copy, once
        }
      }
      if (into != &m) {
        const auto to = static_cast<size_t>(into - memos_);
        // No copy when `into` has m's frames 0..i already (common_ says so,
        // and frame i is the same frame on the same outer stack with the
        // same checks: the copy would change nothing).
        const MemoFrame& a = into->frames[i];
        const MemoFrame& b = m.frames[i];
        const bool has_tail = common_[mi][to] > i && into->count > i && a.sp == b.sp &&
                              a.ip == b.ip && a.node == b.node && a.pair_end == b.pair_end &&
                              a.single_end == b.single_end && a.bp_needed == b.bp_needed &&
                              (b.bp_needed == 0 || a.bp == b.bp);
        CopyTail(m, i, changed[mi], has_tail, into);
        SyncEntry(mi);  // its probe moved (`into`'s is synced below)
        if (!has_tail) IndexFrames(to, 0, i + 1);
        // `into` now shares frames 0..i with m, and what m shares with the
        // others up to there.
        for (size_t x = 0; x < kMemos; ++x) {
          if (x == to) continue;
          const uint32_t shared = x == mi ? i + 1 : Min(common_[mi][x], i + 1);
          common_[to][x] = static_cast<uint16_t>(shared);
          common_[x][to] = static_cast<uint16_t>(shared);
          if (shared > shared_bound_[x]) shared_bound_[x] = static_cast<uint16_t>(shared);
          if (shared > shared_bound_[to]) shared_bound_[to] = static_cast<uint16_t>(shared);
        }
      }
      into->frames[i].bp = bp;
      if (node != 0) {
        Record(into, i, n, node, true, *table);
      } else {
        into->count = 0;  // out of memory: no node to splice onto later
        KeepShared(static_cast<size_t>(into - memos_), 0);
        SyncEntry(static_cast<size_t>(into - memos_));
      }
      ++stats_.hits;
      stats_.stepped += n;
      stats_.spliced += i + 1;
      return true;
    }
    if (n == max_depth) {
      ++stats_.refused;  // at least one frame more: a cut stack
      return false;
    }
    const FrameRule& rule = RuleFor(ip);
    if (rule.kind == FrameRule::kRefused) {
      ++stats_.refused;
      return false;
    }
    Step& s = walk_[n];
    s.ip = ip;
    s.sp = sp;
    s.bp = bp;
    s.uses_bp = rule.kind == FrameRule::kRbp;
    s.ra_slot = 0;
    s.bp_slot = 0;
    s.next_bp = bp;
    ips_[n++] = ip;
    if (rule.end) break;  // the outermost frame (thread start)
    uintptr_t cfa = (rule.kind == FrameRule::kRsp ? sp : bp) +
                    static_cast<uintptr_t>(static_cast<intptr_t>(rule.cfa_offset));
    // The return address slot must lie in this frame's live part of the
    // stack: above its sp, below the top.
    if (cfa < sp + sizeof(uintptr_t) || cfa > high) {
      ++stats_.refused;
      return false;
    }
    s.ra_slot = cfa - sizeof(uintptr_t);
    uintptr_t ra = LoadStackWord(s.ra_slot);
    if (rule.rbp_saved) {
      uintptr_t slot = cfa + static_cast<uintptr_t>(static_cast<intptr_t>(rule.rbp_offset));
      if (slot < sp || slot + sizeof(uintptr_t) > high) {
        ++stats_.refused;
        return false;
      }
      s.bp_slot = slot;
      s.next_bp = LoadStackWord(slot);
    }
    // The stack ends at the next frame of ours (the main() wrapper), as
    // CaptureStack's does.
    if (IsOwnCode(ra)) break;
    if (ra == 0) {
      ++stats_.refused;
      return false;
    }
    ip = ra;
    sp = cfa;
    bp = s.next_bp;
  }
  // Walked to the end without meeting a memo: a new memo, in place of the
  // least recently used.
  *leaf = table->Intern(ips_, n, first_new, last_new);
  if (*leaf == 0) return true;  // out of memory: the stack is recorded empty, as Intern's
  Record(Victim(), -1, n, *leaf, false, *table);
  ++stats_.learnt;
  stats_.stepped += n;
  return true;
}

}  // namespace heapsight::preload
