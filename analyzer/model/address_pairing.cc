// analyzer/model/address_pairing.cc: see address_pairing.h.
#include "analyzer/model/address_pairing.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace heapsight::analyzer {
namespace {

using format::RecordTag;

// An event as the analysis reads it: the pairing's fields cleared.
Event Paired(const Event& e) {
  Event out = e;
  out.code = 0;
  out.paired = 0;
  out.full = nullptr;
  return out;
}

}  // namespace

AddressPairer::AddressPairer(bool fork_child, uint64_t hold_slack_us)
    : hold_slack_us_(hold_slack_us), fork_child_(fork_child) {}

AddressPairer::AddressState& AddressPairer::State(uint64_t address) {
  auto [it, inserted] = states_.try_emplace(address);
  // A fork child's cells came from its parent, whose events there it
  // never saw: the count of an address is not known until a hand-off
  // says it.
  if (inserted && fork_child_) it->second.count_known = false;
  return it->second;
}

bool AddressPairer::Fits(const AddressState& s, Side side, uint32_t stream, uint64_t order) {
  if (s.live != (side == Side::kRelease)) return false;
  if (order == format::kAddressOrderNone) return s.stream == kNoStream || s.stream == stream;
  if (!s.count_known) return true;
  return (s.count + 1u) % format::kAddressCountModulo == (order - 1) % format::kAddressCountModulo;
}

void AddressPairer::Advance(AddressState& s, uint32_t stream, uint64_t order) {
  if (order != format::kAddressOrderNone) {
    s.count = static_cast<uint8_t>((order - 1) % format::kAddressCountModulo);
    s.count_known = true;
  } else {
    s.count = static_cast<uint8_t>((s.count + 1u) % format::kAddressCountModulo);
  }
  s.stream = stream;
}

bool AddressPairer::HeldBefore(uint32_t stream, uint64_t address, size_t before) const {
  if (!AnyHeldAt(address)) return false;
  for (size_t i = 0; i < before && i < held_.size(); ++i) {
    const Event& h = held_[i];
    if (h.stream != stream) continue;
    if (h.address == address || (h.tag == RecordTag::kRealloc && h.old_id == address)) {
      return true;
    }
  }
  return false;
}

uint64_t AddressPairer::Release(uint64_t address, uint32_t stream, uint64_t order,
                                uint64_t /*time_us*/, EventArray* /*out*/) {
  AddressState& s = State(address);
  uint64_t id = 0;
  if (s.live) {
    id = s.id;
    s.live = false;  // s.id stays: a double free's block
  } else {
    ++stats_.unknown_frees;
  }
  Advance(s, stream, order);
  return id;
}

void AddressPairer::Allocate(uint64_t address, uint64_t id, uint32_t stream, uint64_t order,
                             uint64_t time_us, EventArray* out) {
  AddressState& s = State(address);
  if (s.live) {
    // Forced: the block there was freed without a record (events lost).
    // Released as a realloc's old block is (no temporary is ended by it).
    ++stats_.phantom_frees;
    Event& f = out->Append();
    f = Event{};
    f.tag = RecordTag::kFree;
    f.api = format::Api::kUnknown;
    f.code = kReallocOldFree;
    f.stream = stream;
    f.time_us = time_us;
    f.id = s.id;
  }
  s.live = true;
  s.id = id;
  Advance(s, stream, order);
}

bool AddressPairer::Apply(const Event& e, bool force, size_t held_index, EventArray* out) {
  const uint32_t stream = e.stream;
  switch (e.tag) {
    case RecordTag::kAlloc: {
      if (!force && (HeldBefore(stream, e.address, held_index) ||
                     !Fits(State(e.address), Side::kAllocation, stream, e.code))) {
        return false;
      }
      Allocate(e.address, e.id, stream, e.code, e.time_us, out);
      out->Append() = Paired(e);
      return true;
    }
    case RecordTag::kFree: {
      if (!force && (HeldBefore(stream, e.address, held_index) ||
                     !Fits(State(e.address), Side::kRelease, stream, e.code))) {
        return false;
      }
      const uint64_t id = Release(e.address, stream, e.code, e.time_us, out);
      if (id != 0) {
        Event& f = out->Append();
        f = Paired(e);
        f.id = id;
      }
      return true;
    }
    case RecordTag::kRealloc: {
      const uint64_t old = e.old_id;
      const uint64_t old_order = e.paired;
      if (!force && (HeldBefore(stream, old, held_index) ||
                     !Fits(State(old), Side::kRelease, stream, old_order))) {
        return false;
      }
      // Would the new block fit once the old one is released?
      bool new_fits = force;
      if (!force) {
        AddressState after = State(e.address);
        if (e.address == old) {
          after.live = false;
          Advance(after, stream, old_order);
        }
        new_fits = !HeldBefore(stream, e.address, held_index) &&
                   Fits(after, Side::kAllocation, stream, e.code);
      }
      const uint64_t old_id = Release(old, stream, old_order, e.time_us, out);
      if (new_fits) {
        Allocate(e.address, e.id, stream, e.code, e.value, out);
        Event& r = out->Append();
        r = Paired(e);
        if (old_id != 0) {
          r.old_id = old_id;
        } else {  // an unknown old block: the new one alone
          r.tag = RecordTag::kAlloc;
          r.time_us = e.value;
          r.old_id = 0;
          r.value = 0;
        }
        return true;
      }
      // The old block now, the new one when its address is free.
      if (old_id != 0) {
        Event& f = out->Append();
        f = Paired(e);
        f.tag = RecordTag::kFree;
        f.code = kReallocOldFree;
        f.id = old_id;
        f.old_id = 0;
        f.size = 0;
        f.stack = 0;
        f.value = 0;
      }
      Event a = e;
      a.tag = RecordTag::kAlloc;
      a.time_us = e.value;
      a.old_id = 0;
      a.paired = 0;
      a.value = 0;
      Hold(a);
      return true;
    }
    default:
      out->Append() = e;
      return true;
  }
}

void AddressPairer::Hold(const Event& e) {
  ++stats_.held;
  held_.push_back(e);
  ++held_addresses_[e.address];
  if (e.tag == RecordTag::kRealloc && e.old_id != e.address) ++held_addresses_[e.old_id];
}

void AddressPairer::Unhold(size_t i) {
  const Event& e = held_[i];
  auto drop = [this](uint64_t address) {
    auto it = held_addresses_.find(address);
    if (it != held_addresses_.end() && --it->second == 0) held_addresses_.erase(it);
  };
  drop(e.address);
  if (e.tag == RecordTag::kRealloc && e.old_id != e.address) drop(e.old_id);
  held_.erase(held_.begin() + static_cast<ptrdiff_t>(i));
}

void AddressPairer::Retry(EventArray* out) {
  // Each applied event may make others consistent: again from the oldest
  // until none applies (held events are few: inversions are rare).
  for (bool progress = true; progress && !held_.empty();) {
    progress = false;
    for (size_t i = 0; i < held_.size(); ++i) {
      const Event e = held_[i];  // a copy: Apply may hold a realloc's new block
      // Taken out first so that its own held-ness does not block it.
      if (Apply(e, /*force=*/false, i, out)) {
        // Apply appended its new block's kAlloc at the end: index i is still e.
        Unhold(i);
        progress = true;
        break;
      }
    }
  }
}

void AddressPairer::ForceOldest(EventArray* out) {
  const Event e = held_.front();
  Unhold(0);
  ++stats_.forced;
  Apply(e, /*force=*/true, 0, out);
  Retry(out);
}

const format::Record* AddressPairer::Own(const format::Record& r) {
  owned_.push_back(std::make_unique<format::Record>(r));
  return owned_.back().get();
}

void AddressPairer::Add(const Event& e, EventArray* out) {
  if (e.time_us > now_) now_ = e.time_us;
  switch (e.tag) {
    case RecordTag::kAlloc:
    case RecordTag::kFree:
    case RecordTag::kRealloc: {
      ++stats_.events;
      if (e.tag == RecordTag::kRealloc && e.value > now_) now_ = e.value;
      const bool touches_held = AnyHeldAt(e.address) ||
                                (e.tag == RecordTag::kRealloc && AnyHeldAt(e.old_id));
      if (!Apply(e, /*force=*/false, held_.size(), out)) {
        Hold(e);
      } else if (touches_held) {
        Retry(out);
      }
      break;
    }
    case RecordTag::kInherited: {
      // A block live when the fork child began: its address in `id`.
      const uint64_t address = e.id;
      const uint64_t id = format::MakeAllocId(kInheritedThread, next_inherited_++);
      Allocate(address, id, e.stream, format::kAddressOrderNone, e.time_us, out);
      AddressState& s = State(address);
      s.stream = kNoStream;
      s.count_known = false;
      Event& i = out->Append();
      i = e;
      i.id = id;
      break;
    }
    case RecordTag::kBlockClasses: {
      // Addresses to the ids of the blocks live there.
      format::Record r = *e.full;
      std::vector<uint64_t>& ids = r.block_classes.ids;
      size_t kept = 0;
      for (uint64_t address : ids) {
        auto it = states_.find(address);
        if (it == states_.end() || !it->second.live) {
          ++stats_.unknown_classes;
          continue;
        }
        ids[kept++] = it->second.id;
      }
      ids.resize(kept);
      Event& c = out->Append();
      c = e;
      c.full = Own(r);
      break;
    }
    case RecordTag::kFreeError: {
      // The block at the address: the live one (a mismatched free), or
      // for a double free the one last freed there.
      format::Record r = *e.full;
      r.id = 0;
      if (auto it = states_.find(r.address); it != states_.end()) {
        if (it->second.live || r.free_error.error == format::FreeError::kDoubleFree) {
          r.id = it->second.id;
        }
      }
      Event& f = out->Append();
      f = e;
      f.full = Own(r);
      break;
    }
    default:
      out->Append() = e;
      break;
  }
  while (!held_.empty() &&
         (held_.size() > kMaxHeld ||
          (hold_slack_us_ != 0 && now_ - std::min(now_, held_.front().time_us) > hold_slack_us_))) {
    ForceOldest(out);
  }
}

void AddressPairer::Finish(EventArray* out) {
  while (!held_.empty()) ForceOldest(out);
}

std::vector<std::string> AddressPairingWarnings(const AddressPairingStats& stats) {
  std::vector<std::string> warnings;
  if (stats.forced != 0) {
    warnings.push_back(absl::StrCat(
        stats.forced, " address events stayed out of order (applied in arrival order)"));
  }
  if (stats.phantom_frees != 0) {
    warnings.push_back(absl::StrCat(stats.phantom_frees,
                                    " blocks were released without a free record (their address "
                                    "was allocated again)"));
  }
  if (stats.unknown_classes != 0) {
    warnings.push_back(absl::StrCat(stats.unknown_classes,
                                    " blocks of leak scans were at addresses with no live block"));
  }
  return warnings;
}

}  // namespace heapsight::analyzer
