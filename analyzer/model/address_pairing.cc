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

AddressPairer::AddressPairer(bool fork_child, uint64_t hold_slack_us, size_t max_held)
    : hold_slack_us_(hold_slack_us), max_held_(max_held), counts_unknown_(fork_child) {}

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

bool AddressPairer::Release(AddressState& s, uint32_t stream, uint64_t order, uint64_t* id) {
  const bool live = s.live;
  if (!live) {
    // Forced: no block was live here, the preload would have written no
    // such record; what the address saw is not known any more.
    ++stats_.unknown_frees;
    s.stream = kNoStream;
    s.count_known = false;
    return false;
  }
  *id = s.id;
  s.live = false;  // s.id stays: a double free's block
  Advance(s, stream, order);
  return true;
}

void AddressPairer::Allocate(AddressState& s, uint64_t id, uint32_t stream, uint64_t order,
                             uint64_t time_us, EventArray* out) {
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

bool AddressPairer::Apply(const Event& e, bool force, EventArray* out) {
  const uint32_t stream = e.stream;
  switch (e.tag) {
    case RecordTag::kAlloc: {
      AddressState s;
      const AddressStateTable::Ref ref = State(e.address, &s);
      if (!force && !Fits(s, Side::kAllocation, stream, e.code)) return false;
      Allocate(s, e.id, stream, e.code, e.time_us, out);
      states_.Store(ref, e.address, s);
      out->Append() = Paired(e);
      return true;
    }
    case RecordTag::kFree: {
      AddressState s;
      const AddressStateTable::Ref ref = State(e.address, &s);
      if (!force && !Fits(s, Side::kRelease, stream, e.code)) return false;
      uint64_t id = 0;
      const bool live = Release(s, stream, e.code, &id);
      states_.Store(ref, e.address, s);
      if (live) {
        Event& f = out->Append();
        f = Paired(e);
        f.id = id;
      }
      return true;
    }
    case RecordTag::kRealloc: {
      const uint64_t old = e.old_id;
      const uint64_t old_order = e.paired;
      AddressState o;
      const AddressStateTable::Ref old_ref = State(old, &o);
      if (!force && !Fits(o, Side::kRelease, stream, old_order)) return false;
      // Would the new block fit once the old one is released? (Looked up
      // without inserting: an insert could move `old_ref`.)
      bool new_fits = force;
      if (!force) {
        AddressState after;
        if (e.address == old) {
          after = o;
          after.live = false;
          Advance(after, stream, old_order);
        } else if (!states_.Find(e.address, &after)) {
          after.count_known = !counts_unknown_;
        }
        new_fits = Fits(after, Side::kAllocation, stream, e.code);
      }
      uint64_t old_id = 0;
      const bool old_live = Release(o, stream, old_order, &old_id);
      states_.Store(old_ref, old, o);  // before State below, which may move it
      if (new_fits) {
        AddressState n;
        const AddressStateTable::Ref new_ref = State(e.address, &n);
        Allocate(n, e.id, stream, e.code, e.value, out);
        states_.Store(new_ref, e.address, n);
        Event& r = out->Append();
        r = Paired(e);
        if (old_live) {
          r.old_id = old_id;
        } else {  // an unknown old block: the new one alone
          r.tag = RecordTag::kAlloc;
          r.time_us = e.value;
          r.old_id = 0;
          r.value = 0;
        }
        return true;
      }
      // The old block now, the new one when its address is free: held
      // first in its stream (the caller unholds `e`, which came before it).
      if (old_live) {
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
      Enqueue(a, applying_seq_, /*front=*/true);  // before the rest of its stream
      ++stats_.held;
      return true;
    }
    default:
      PassOther(e, out);
      return true;
  }
}

void AddressPairer::PassOther(const Event& e, EventArray* out) {
  switch (e.tag) {
    case RecordTag::kInherited: {
      // A block live when the fork child began: its address in `id`, an
      // id of its own here; the address's count and last thread are the
      // parent's, not known.
      const uint64_t address = e.id;
      const uint64_t id = format::MakeAllocId(kInheritedThread, next_inherited_++);
      // Blocks live before the trace began (a fork child's, a rotated
      // segment's): so were the addresses' histories. Read first (time 0
      // in a segment's preamble, the child's first records), this covers
      // every address of the trace.
      counts_unknown_ = true;
      AddressState s;
      const AddressStateTable::Ref ref = State(address, &s);
      Allocate(s, id, e.stream, format::kAddressOrderNone, e.time_us, out);
      s.stream = kNoStream;
      s.count_known = false;
      states_.Store(ref, address, s);
      Event& i = out->Append();
      i = e;
      i.id = id;
      // The parent's block: its stack, api and the size asked for, where
      // the record has the usable size and no stack.
      if (inheritance_ != nullptr) {
        if (auto it = inheritance_->find(address); it != inheritance_->end()) {
          i.stack = it->second.stack;
          i.api = it->second.api;
          i.size = it->second.size;
          ++stats_.inherited_from_parent;
          break;
        }
      }
      // (A block the child's live table held, not a cell, has its own.)
      if (e.stack == 0) ++stats_.inherited_unresolved;
      break;
    }
    case RecordTag::kBlockClasses: {
      // Addresses to the ids of the blocks live there.
      format::Record r = *e.full;
      std::vector<uint64_t>& ids = r.block_classes.ids;
      size_t kept = 0;
      for (uint64_t address : ids) {
        AddressState s;
        if (!states_.Find(address, &s) || !s.live) {
          ++stats_.unknown_classes;
          continue;
        }
        ids[kept++] = s.id;
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
      if (AddressState s; states_.Find(r.address, &s)) {
        if (s.live || r.free_error.error == format::FreeError::kDoubleFree) r.id = s.id;
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
}

uint64_t AddressPairer::BlockingAddress(const Event& e) {
  switch (e.tag) {
    case RecordTag::kAlloc:
    case RecordTag::kFree:
      return e.address;
    case RecordTag::kRealloc:
      return e.old_id;
    default:
      return kNoAddress;
  }
}

AddressPairer::StreamQueue& AddressPairer::Queue(uint32_t stream) {
  if (stream >= queues_.size()) queues_.resize(stream + 1);
  std::unique_ptr<StreamQueue>& q = queues_[stream];
  if (q == nullptr) q = std::make_unique<StreamQueue>();
  return *q;
}

void AddressPairer::Enqueue(const Event& e, uint64_t seq, bool front) {
  Held h{e, seq};
  if (e.full != nullptr && e.tag != RecordTag::kAlloc && e.tag != RecordTag::kFree &&
      e.tag != RecordTag::kRealloc) {
    // The chunk's record may be gone by the time this is applied.
    std::unique_ptr<FullRecord> copy = CopyRecord(*e.full);
    h.event.full = &copy->record;
    held_records_[h.event.full] = std::move(copy);
  }
  StreamQueue& q = Queue(e.stream);
  if (q.events.empty()) held_streams_.push_back(e.stream);
  if (front) {
    // A new head: the one it displaces no longer decides the stream.
    Unwait(e.stream, q);
    q.events.push_front(h);
  } else {
    q.events.push_back(h);
  }
  ++held_count_;
}

void AddressPairer::Unwait(uint32_t stream, StreamQueue& q) {
  if (!q.waiting) return;
  auto it = waiting_.find(BlockingAddress(q.events.front().event));
  if (it != waiting_.end()) {
    std::erase(it->second, stream);
    if (it->second.empty()) waiting_.erase(it);
  }
  q.waiting = false;
}

AddressPairer::Held AddressPairer::PopHead(uint32_t stream, StreamQueue& q) {
  Unwait(stream, q);
  Held h = q.events.front();
  q.events.pop_front();
  --held_count_;
  if (q.events.empty()) std::erase(held_streams_, stream);
  return h;
}

void AddressPairer::Wait(uint32_t stream, StreamQueue& q) {
  if (q.waiting || q.events.empty()) return;
  const uint64_t address = BlockingAddress(q.events.front().event);
  if (address == kNoAddress) {  // applies at once
    ready_.push_back(stream);
    return;
  }
  waiting_[address].push_back(stream);
  q.waiting = true;
}

void AddressPairer::WakeAt(uint64_t address) {
  auto it = waiting_.find(address);
  if (it == waiting_.end()) return;
  for (uint32_t stream : it->second) {
    queues_[stream]->waiting = false;
    ready_.push_back(stream);
  }
  waiting_.erase(it);
}

void AddressPairer::Wake(const Event& e) {
  if (waiting_.empty()) return;
  switch (e.tag) {
    case RecordTag::kAlloc:
    case RecordTag::kFree:
      WakeAt(e.address);
      break;
    case RecordTag::kRealloc:
      WakeAt(e.old_id);
      if (e.address != e.old_id) WakeAt(e.address);
      break;
    case RecordTag::kInherited:
      WakeAt(e.id);  // its address
      break;
    default:
      break;
  }
}

// Applies `e`, taken out of the held events, and keeps its record's copy
// alive for the analysis (until the next BeginRun).
bool AddressPairer::ApplyHeld(const Event& e, bool force, EventArray* out) {
  if (!Apply(e, force, out)) return false;
  if (e.full != nullptr && e.tag != RecordTag::kAlloc && e.tag != RecordTag::kFree &&
      e.tag != RecordTag::kRealloc) {
    auto it = held_records_.find(e.full);
    if (it != held_records_.end()) {
      owned_.push_back(std::move(it->second));
      held_records_.erase(it);
    }
  }
  return true;
}

void AddressPairer::Pump(EventArray* out) {
  // Each applied head may wake others (its addresses) and exposes its
  // stream's next event, which may apply too (it was held only behind).
  while (!ready_.empty()) {
    const uint32_t stream = ready_.back();
    ready_.pop_back();
    if (!StreamHeld(stream)) continue;
    StreamQueue& q = *queues_[stream];
    if (q.waiting) continue;  // listed twice; already tried and waiting
    while (!q.events.empty()) {
      // Out of the queue first: a realloc whose new block must wait puts
      // that at the front.
      const Held h = PopHead(stream, q);
      applying_seq_ = h.seq;
      if (!ApplyHeld(h.event, /*force=*/false, out)) {
        if (q.events.empty()) held_streams_.push_back(stream);
        q.events.push_front(h);
        ++held_count_;
        Wait(stream, q);
        break;
      }
      Wake(h.event);
    }
  }
}

uint32_t AddressPairer::OldestStream() const {
  uint32_t oldest = held_streams_.front();
  uint64_t seq = queues_[oldest]->events.front().seq;
  for (uint32_t stream : held_streams_) {
    const uint64_t s = queues_[stream]->events.front().seq;
    if (s < seq) {
      seq = s;
      oldest = stream;
    }
  }
  return oldest;
}

void AddressPairer::ForceOldest(EventArray* out) {
  const uint32_t stream = OldestStream();
  const Held h = PopHead(stream, *queues_[stream]);
  const Event& e = h.event;
  const bool address_event = e.tag == RecordTag::kAlloc || e.tag == RecordTag::kFree ||
                             e.tag == RecordTag::kRealloc;
  applying_seq_ = h.seq;
  // Forced only if it was not consistent by now.
  if (!ApplyHeld(e, /*force=*/false, out)) {
    ApplyHeld(e, /*force=*/true, out);
    if (address_event) ++stats_.forced;
  }
  Wake(e);
  ready_.push_back(stream);
  Pump(out);
}

const format::Record* AddressPairer::Own(const format::Record& r) {
  owned_.push_back(CopyRecord(r));
  return &owned_.back()->record;
}

void AddressPairer::Add(const Event& e, EventArray* out) {
  if (e.time_us > now_) now_ = e.time_us;
  // Held events this event is far past go first, as they arrived before it.
  while (held_count_ != 0 &&
         (held_count_ > max_held_ ||
          (hold_slack_us_ != 0 &&
           now_ - std::min(now_, queues_[OldestStream()]->events.front().event.time_us) >
               hold_slack_us_))) {
    ForceOldest(out);
  }
  const bool address_event = e.tag == RecordTag::kAlloc || e.tag == RecordTag::kFree ||
                             e.tag == RecordTag::kRealloc;
  if (address_event) {
    ++stats_.events;
    if (e.tag == RecordTag::kRealloc && e.value > now_) now_ = e.value;
  }
  const uint64_t seq = next_seq_++;
  if (StreamHeld(e.stream)) {
    Enqueue(e, seq, /*front=*/false);  // behind its stream's held event, not out of order itself
    return;
  }
  applying_seq_ = seq;
  if (!Apply(e, /*force=*/false, out)) {
    ++stats_.held;
    Enqueue(e, seq, /*front=*/false);
    Wait(e.stream, *queues_[e.stream]);
    return;
  }
  if (waiting_.empty() && held_count_ == 0) return;  // the common case
  Wake(e);
  // A realloc whose new block must wait left it held at its stream's front.
  if (StreamHeld(e.stream)) Wait(e.stream, *queues_[e.stream]);
  Pump(out);
}

void AddressPairer::Finish(EventArray* out) {
  while (held_count_ != 0) ForceOldest(out);
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
