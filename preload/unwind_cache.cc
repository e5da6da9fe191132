// preload/unwind_cache.cc: see unwind_cache.h.
//
// Constraints: no malloc; Find/ShouldLearn/CurrentUnwindKey take no locks
// and make no syscalls; Learn calls libunwind (its own mmap'ed pools, maybe
// the loader lock through dl_iterate_phdr), under the reentry guard.
#define UNW_LOCAL_ONLY
#include "preload/unwind_cache.h"

#include <libunwind.h>

#include "preload/unwinder.h"

namespace heapsight::preload {

namespace {

uintptr_t Load(uintptr_t address) { return *reinterpret_cast<const uintptr_t*>(address); }

}  // namespace

__attribute__((noinline)) bool CurrentUnwindKey(UnwindKey* key) {
  // Only our own frames are read (every function of ours keeps a frame
  // pointer, preload/meson.build), up to the one the program called. The
  // same walk as OutermostOwnFrame (unwinder.h), done here rather than
  // through it: the extra call costs about 2 ns per event (alloc_bench).
  auto fp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
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

uint64_t UnwindCache::Hash(const UnwindKey& key) {
  uint64_t h = (key.ip * 0x9e3779b97f4a7c15ULL) ^ (key.sp * 0xc2b2ae3d27d4eb4fULL);
  return h ^ (h >> 29);
}

size_t UnwindCache::SetOf(const UnwindKey& key) {
  return static_cast<size_t>(Hash(key) >> 40) & (kSets - 1);
}

uint64_t UnwindCache::Find(const UnwindKey& key, uintptr_t stack_low, uintptr_t stack_high) {
  if (++lookups_ == kWindow) {
    // Fewer than one lookup in eight hit, or the hits did not pay for the
    // learns: this thread's stacks do not repeat at their entry points.
    EndWindow(hits_ * 8 < kWindow || hits_ < learns_ * kHitsPerLearn);
  }
  ++clock_;
  ++stats_.lookups;
  if (key.sp < stack_low) return 0;
  Entry* set = &entries_[SetOf(key) * kWays];
  for (size_t way = 0; way < kWays; ++way) {
    Entry& e = set[way];
    if (e.leaf == 0 || e.ip != key.ip || e.sp != key.sp) continue;
    if (e.check_bp != 0 && e.bp != key.bp) continue;
    // Every checked word is in [key.sp, key.sp + max_offset]: inside this
    // thread's stack, so mapped (the part above the caller's sp is live).
    if (key.sp + e.max_offset + sizeof(uintptr_t) > stack_high) continue;
    // First the check that tells this stack from the others learnt at the
    // same key (one load instead of a run of them per wrong way), then all.
    if (e.count != 0 && Load(key.sp + e.offsets[e.probe]) != e.values[e.probe]) continue;
    uint32_t i = 0;
    while (i < e.count && Load(key.sp + e.offsets[i]) == e.values[i]) ++i;
    if (i != e.count) continue;  // another way may hold this key's other stack
    e.stamp = clock_;
    ++hits_;
    ++stats_.hits;
    return e.leaf;
  }
  return 0;
}

void UnwindCache::EndWindow(bool poor) {
  if (poor) {
    if (next_bypass_ == 0) next_bypass_ = kMinBypass;
    bypass_ = next_bypass_;
    if (next_bypass_ < kMaxBypass) next_bypass_ *= 2;
  } else {
    next_bypass_ = 0;
  }
  lookups_ = 0;
  hits_ = 0;
  learns_ = 0;
}

bool UnwindCache::ShouldLearn(const UnwindKey& key) {
  // Learning faster than hits repay it: stop now, not at the window's end
  // (a window of learns would cost milliseconds).
  if (learns_ >= kHitsPerLearn && hits_ < learns_ * kHitsPerLearn) {
    EndWindow(true);
    return false;
  }
  uint64_t h = Hash(key) | 1;  // odd; h + 1 marks a key Learn refused
  uint64_t& slot = seen_[h % kSeen];
  if (slot == h) return true;
  if (slot == h + 1) return false;
  slot = h;
  return false;
}

void UnwindCache::Learn(const UnwindKey& key, const uintptr_t* frames, size_t n,
                        uint64_t leaf) {
  ++learns_;
  // A cut stack ends with the cut marker: its frames are the ones before
  // it, and the frame above the last of them must stay a program frame.
  const bool cut = n != 0 && format::IsStackCutMarker(frames[n - 1]);
  if (cut) --n;
  uint64_t h = Hash(key) | 1;
  seen_[h % kSeen] = h + 1;  // refused unless we get to the end
  if (leaf == 0 || n == 0 || frames[0] != key.ip) return;

  unw_context_t context;
  unw_cursor_t cursor;
  if (unw_getcontext(&context) != 0 || unw_init_local(&cursor, &context) != 0) return;
  unw_word_t ip = 0, sp = 0, bp = 0;
  // Our own frames: this one, the recorder's, the hook.
  for (int i = 0;; ++i) {
    if (unw_get_reg(&cursor, UNW_REG_IP, &ip) != 0) return;
    if (!IsOwnCode(ip)) break;
    if (i == 32 || unw_step(&cursor) <= 0) return;
  }
  if (unw_get_reg(&cursor, UNW_REG_SP, &sp) != 0 ||
      unw_get_reg(&cursor, UNW_X86_64_RBP, &bp) != 0) {
    return;
  }
  // libunwind must see the entry exactly as CurrentUnwindKey did.
  if (ip != key.ip || sp != key.sp || bp != key.bp) return;
  unw_save_loc_t loc;
  if (unw_get_save_loc(&cursor, UNW_X86_64_RBP, &loc) != 0) return;
  // Where the current frame's rbp came from: the entry register, or a slot.
  uintptr_t bp_slot = 0;   // 0: the entry value (BP0)
  bool bp_slot_checked = false;
  uintptr_t bp_loc = loc.type == UNW_SLT_MEMORY ? loc.u.addr : 0;  // in our hook's frame

  // Fill the victim way in place (an empty one, else the least recently
  // used); it stays empty (leaf 0) until complete.
  Entry* set = &entries_[SetOf(key) * kWays];
  Entry* victim = &set[0];
  for (size_t way = 0; way < kWays && victim->leaf != 0; ++way) {
    if (set[way].leaf == 0 || clock_ - set[way].stamp > clock_ - victim->stamp) {
      victim = &set[way];
    }
  }
  Entry& e = *victim;
  e.leaf = 0;
  e.count = 0;
  e.check_bp = 0;
  e.max_offset = 0;
  auto add_check = [&e, &key](uintptr_t address, uintptr_t value) {
    // Callers keep address >= key.sp; frames lie within 4 GiB of it.
    uintptr_t offset = address - key.sp;
    if (e.count == kMaxChecks || offset > UINT32_MAX - 16) return false;
    e.offsets[e.count] = static_cast<uint32_t>(offset);
    e.values[e.count] = value;
    ++e.count;
    if (offset > e.max_offset) e.max_offset = static_cast<uint32_t>(offset);
    return true;
  };

  for (size_t j = 0;; ++j) {
    // Frame j: ip, sp, bp are its registers.
    if (ip != frames[j] || unw_is_signal_frame(&cursor) > 0) return;
    int stepped = unw_step(&cursor);
    if (stepped < 0) return;
    if (stepped == 0) {
      if (j + 1 != n || cut) return;  // unw_backtrace saw more frames
      break;                   // the outermost frame (its CFI ends the stack)
    }
    unw_word_t caller_ip, cfa, caller_bp;
    if (unw_get_reg(&cursor, UNW_REG_IP, &caller_ip) != 0 ||
        unw_get_reg(&cursor, UNW_REG_SP, &cfa) != 0 ||
        unw_get_reg(&cursor, UNW_X86_64_RBP, &caller_bp) != 0 ||
        unw_get_save_loc(&cursor, UNW_X86_64_RBP, &loc) != 0) {
      return;
    }
    // Every checked word must lie above the entry sp (see Find).
    if (cfa < key.sp + sizeof(uintptr_t)) return;
    // The return address must be where the ABI puts it: the check below
    // reads it there.
    if (Load(cfa - sizeof(uintptr_t)) != caller_ip) return;
    // Did frame j save rbp (the caller's rbp comes from a new slot)?
    bool saved_here = loc.type == UNW_SLT_MEMORY && loc.u.addr != bp_loc;
    if (cfa == bp + 2 * sizeof(uintptr_t)) {
      // Consistent with the frame-pointer rule CFA = rbp + 16: rbp is an
      // input of this frame's unwind, so pin where it came from.
      if (bp_slot == 0) {
        e.check_bp = 1;
      } else if (!bp_slot_checked) {
        if (!add_check(bp_slot, bp)) return;
        bp_slot_checked = true;
      }
    } else if (saved_here && loc.u.addr == bp) {
      // A frame-pointer frame (rbp points at its saved rbp) whose CFA is
      // not rbp + 16: a realigned stack, whose CFA is loaded from memory
      // we would not check.
      return;
    }
    if (saved_here) {
      if (loc.u.addr < key.sp || Load(loc.u.addr) != caller_bp) return;
      bp_slot = loc.u.addr;
      bp_loc = loc.u.addr;
      bp_slot_checked = false;
    } else if (caller_bp != bp) {
      return;  // rbp changed, but not from a slot we know
    }
    if (!add_check(cfa - sizeof(uintptr_t), caller_ip)) return;
    if (j + 1 == n) {
      // unw_backtrace's stack ended here because the next frame is ours
      // (the main() wrapper), or, for a cut stack, because the cap was
      // reached with a program frame above; the check just added pins that
      // frame (what lies above it does not change the recorded stack).
      if (IsOwnCode(caller_ip) == cut) return;
      break;
    }
    ip = caller_ip;
    sp = cfa;
    bp = caller_bp;
  }
  e.ip = key.ip;
  e.sp = key.sp;
  e.bp = key.bp;
  e.probe = 0;
  // Stacks learnt at the same key differ somewhere above it; Find tries
  // each entry's first difference from another first. Keep every entry's
  // probe telling it from the new one where it can.
  for (size_t way = 0; way < kWays; ++way) {
    Entry& o = set[way];
    if (&o == &e || o.leaf == 0 || o.ip != e.ip || o.sp != e.sp) continue;
    uint32_t common = o.count < e.count ? o.count : e.count;
    uint32_t i = 0;
    while (i < common && o.offsets[i] == e.offsets[i] && o.values[i] == e.values[i]) ++i;
    if (i == common) continue;  // one is a prefix of the other: no cheap tell
    e.probe = static_cast<uint16_t>(i);
    bool o_tells = o.probe < common && (o.offsets[o.probe] != e.offsets[o.probe] ||
                                        o.values[o.probe] != e.values[o.probe]);
    if (!o_tells) o.probe = static_cast<uint16_t>(i);
  }
  e.leaf = leaf;
  e.stamp = clock_;
  seen_[h % kSeen] = 0;
  ++stats_.learnt;
}

}  // namespace heapsight::preload
