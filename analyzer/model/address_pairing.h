// analyzer/model/address_pairing.h: the pairing stage of address-frees
// traces (format version 6): gives every free the id of the block it
// releases, so that the analysis reads a version-6 trace as it reads a
// version-4 one.
//
// In a version-6 trace a free names its block by its address, not its id
// (trace_format.h, "Address frees"): the preload keeps no table of live
// blocks. Allocation ids stay implicit (the n-th allocation of a thread
// has counter n), so this stage only has to say, for each free, which
// allocation was live at its address, and it does so in the merged (time)
// order of the events, keeping per address the live block's id.
//
// Order. Two threads' events at one address can reach the merge in the
// wrong order (the same microsecond, or a thread preempted between its
// cell update and its timestamp). Every address event carries an order
// value (format::AddressOrder): 0 if the address's previous event was the
// same thread's (or the address was never used), else 1 + the address's
// event count after the event (mod 16), which the preload's cell counts.
// An event is *consistent* when
//  - a free (or a realloc's old block) finds a live block at its address,
//    an allocation (or a realloc's new block) finds none;
//  - an order-0 event comes from the stream that made the address's last
//    event (or the address has no known last event);
//  - a hand-off's count is the address's count + 1 (if the count is
//    known: not for a fork child's inherited or first-seen addresses);
// A consistent event is applied at once; any other is *held* (copied
// here) and applied as soon as it becomes consistent (an applied event at
// the address of a held one retries them). While a stream has an event
// held, its later events (of every kind) are held behind it: the output
// is the events in an order that keeps each thread's own, so what depends
// on a thread's sequence (temporaries: trace_model.h) is as in version 4. A held event is *forced* (applied as it is,
// and counted) once the merge has moved `hold_slack_us` past it, or when
// too many are held, or at Finish: a free that finds no block is then a
// free of an unknown address (dropped), an allocation at a live address
// first releases that block by a *phantom free* (its free was never
// recorded: lost events).
//
// A realloc whose old block is consistent but whose new block is not (its
// address still holds another thread's block) is applied in two halves:
// the old block's release at once (a kFree with code kReallocOldFree,
// which the analysis releases as a realloc's), the new block as a held
// kAlloc (api realloc, at the realloc's allocation time).
//
// Other records: kInherited gets an id of its own (thread
// kInheritedThread) and, when the parent's block at its address is known
// (SetInheritance, fork_inheritance.h), that block's stack, api and size;
// kBlockClasses' addresses become the ids of the
// blocks live there (addresses with none are left out), kFreeError gets
// the id of the block live at its address (a double free: the block last
// freed there). Everything else passes through unchanged.
//
// Memory: one state per address ever used (a freed address keeps its
// count, last stream and last id: the order checks need them), 16 bytes
// each in address_state_table.h's slots. Not thread-safe; one per analysis.
//
// Why a freed address's state is never dropped: an event at an address
// is checked against the address's last applied event, however old. Take a
// block freed by thread A long ago (count c); thread C allocates there
// (count c+1) but its clock read comes late, and thread D's allocation
// after C's free (count c+3) reaches the merge first. With the state, D's
// hand-off is seen to skip two events and is held until C's arrive. A
// state dropped after some slack would have to take D's allocation at its
// word, and C's events, arriving later, would then be forced (or phantom
// frees). The wait between the free and the reuse is not bounded, so no
// slack makes dropping exact; and the program where the memory matters
// (python's dict) has 6.0 M addresses of which 6.0 M are live at its peak,
// so dropping the freed ones would not have saved memory there.
#ifndef HEAPSIGHT_ANALYZER_MODEL_ADDRESS_PAIRING_H_
#define HEAPSIGHT_ANALYZER_MODEL_ADDRESS_PAIRING_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "analyzer/model/address_state_table.h"
#include "analyzer/model/chunk_events.h"
#include "analyzer/model/fork_inheritance.h"
#include "format/chunk_decoder.h"

namespace heapsight::analyzer {

// Event::code of an exact kFree that releases a realloc's old block, made
// by the pairing when the realloc's new block had to wait (above). Not
// IsRelease (the analysis releases it without look-ahead).
inline constexpr uint8_t kReallocOldFree = 3;

// The thread part of the ids AddressPairer gives inherited blocks
// (format::MakeAllocId): above any real thread index.
inline constexpr uint32_t kInheritedThread = (1u << (64 - format::kAllocIdThreadShift)) - 1;

struct AddressPairingStats {
  uint64_t events = 0;        // address events seen (a realloc counts once)
  uint64_t held = 0;          // events held at least once (out of order in the merge)
  uint64_t forced = 0;        // held events applied without becoming consistent
  uint64_t unknown_frees = 0; // frees (or realloc old blocks) of no live block, dropped
  uint64_t phantom_frees = 0; // live blocks released because an allocation reused the address
  uint64_t unknown_classes = 0;  // kBlockClasses addresses with no live block
  // kInherited records (a fork child's): given the parent's block's stack,
  // api and size (SetInheritance), or left as written (stack 0, usable size).
  uint64_t inherited_from_parent = 0;
  uint64_t inherited_unresolved = 0;
};

class AddressPairer {
 public:
  // `fork_child`: the trace has format::kFileFlagForkChild (its cells
  // came from the parent: the count of an address first seen is not
  // known). The same holds from a kInherited record on, for any trace:
  // a rotated segment after the first (cli/record/trace_rotator.h) begins
  // with the blocks live at its cut, and its addresses have a history it
  // did not see. `hold_slack_us`: a held event is forced once an event this
  // much later has been seen (0: only by count or at Finish).
  // `max_held`: beyond this many held events the oldest is forced.
  explicit AddressPairer(bool fork_child, uint64_t hold_slack_us = kDefaultHoldSlackUs,
                         size_t max_held = kDefaultMaxHeld);
  AddressPairer(const AddressPairer&) = delete;
  AddressPairer& operator=(const AddressPairer&) = delete;

  // Takes the next event of the merge (as decoded, chunk_events.h) and
  // appends to `out` what is ready (0, 1 or more events, as the analysis
  // reads a version-4 trace's). The `full` records of translated events
  // are owned here and valid until the next BeginRun.
  void Add(const Event& e, EventArray* out);

  // How many events ahead of its Add an event's address state is loaded
  // (Prefetch): the addresses of a heap come in no order, and each state
  // is a cache miss otherwise (62% of a conversion's time, python).
  static constexpr size_t kPrefetchAhead = 12;

  // Adds [begin, end) one event at a time, each after BeginRun and with
  // its states loaded kPrefetchAhead events ahead, and calls take(*out)
  // with what the event gave out before the next is added (so `out`'s
  // records need not outlive take). Stops at take's first error.
  template <typename Take>
  absl::Status AddEach(const Event* begin, const Event* end, EventArray* out, Take&& take) {
    for (const Event* e = begin; e != end; ++e) {
      if (end - e > static_cast<ptrdiff_t>(kPrefetchAhead)) Prefetch(e[kPrefetchAhead]);
      BeginRun();
      out->clear();
      Add(*e, out);
      if (absl::Status s = take(*out); !s.ok()) return s;
    }
    return absl::OkStatus();
  }
  // A fork child's inherited blocks by address (fork_inheritance.h): each
  // kInherited found there takes the parent's stack, api and size. Not
  // owned; outlives the pairer. Null (the default): records as written.
  void SetInheritance(const absl::flat_hash_map<uint64_t, ParentBlock>* blocks) {
    inheritance_ = blocks;
  }
  // Events appended by Add before this call will not be read again: the
  // records they point to may go.
  void BeginRun() { owned_.clear(); }
  // Loads the state of e's address(es) ahead of its Add (a cache miss per
  // address otherwise: the addresses of a heap come in no order).
  void Prefetch(const Event& e) const {
    if (e.tag == format::RecordTag::kAlloc || e.tag == format::RecordTag::kFree) {
      states_.Prefetch(e.address);
    } else if (e.tag == format::RecordTag::kRealloc) {
      states_.Prefetch(e.old_id);
      states_.Prefetch(e.address);
    } else if (e.tag == format::RecordTag::kInherited) {
      // A fork child's: its address (in `id`) and the parent's block there.
      states_.Prefetch(e.id);
      if (inheritance_ != nullptr) inheritance_->prefetch(e.id);
    }
  }
  // The end of the trace: every held event is forced, in arrival order.
  void Finish(EventArray* out);

  const AddressPairingStats& stats() const { return stats_; }
  // Calls fn(address, id) for every block live now.
  template <typename Fn>
  void ForEachLive(Fn fn) const {
    states_.ForEach([&](uint64_t address, const AddressState& state) {
      if (state.live) fn(address, state.id);
    });
  }
  // Calls fn(address, id, live) for every address seen: `id` is the live
  // block's, else the block last freed there (0: none).
  template <typename Fn>
  void ForEachAddress(Fn fn) const {
    states_.ForEach([&](uint64_t address, const AddressState& state) {
      fn(address, state.id, state.live);
    });
  }
  // Addresses with a state, and the table's slots (for tests).
  size_t address_count() const { return states_.size(); }
  size_t state_capacity() const { return states_.capacity(); }
  // Events held now.
  size_t held() const { return held_count_; }

  // A thread's events at one address are a few microseconds apart at the
  // most when two threads meet there; a held event that waits much longer
  // will not be put in order by the events still to come.
  static constexpr uint64_t kDefaultHoldSlackUs = 1000;
  // The merge's default: a stream held for longer than the slack is rare.
  static constexpr size_t kDefaultMaxHeld = 4096;

 private:
  static constexpr uint32_t kNoStream = AddressState::kNoStream;
  enum class Side : uint8_t { kAllocation, kRelease };

  // The address's state (inserted as never used if it had none), loaded
  // into *s; Store(ref, address, *s) writes it back. The ref is valid until
  // the next State.
  [[gnu::always_inline]] AddressStateTable::Ref State(uint64_t address, AddressState* s) {
    // A fork child's cells came from its parent, whose events there it
    // never saw (a rotated segment's from the segments before it): the
    // count of an address is not known until a hand-off says it.
    AddressState fresh;
    fresh.count_known = !counts_unknown_;
    bool inserted = false;
    const AddressStateTable::Ref ref = states_.Insert(address, fresh, &inserted);
    *s = inserted ? fresh : states_.Load(ref, address);
    return ref;
  }
  // Whether an event of `side` at `s` (from `stream`, order value
  // `order`) is consistent (the file comment), the held events aside.
  static bool Fits(const AddressState& s, Side side, uint32_t stream, uint64_t order);
  // Records the event in the address's state.
  static void Advance(AddressState& s, uint32_t stream, uint64_t order);
  // Applies `e` if consistent (or `force`; other than address events it
  // always is): appends its events to `out`.
  // False: nothing changed (hold it). A realloc may apply its old block
  // and leave its new block held (true).
  bool Apply(const Event& e, bool force, EventArray* out);
  // The old side of a realloc or a free, forced or consistent: false if
  // no block was live there (an unknown free), else its id in *id.
  bool Release(AddressState& s, uint32_t stream, uint64_t order, uint64_t* id);
  // The new side: `id` is live at `address` (forced: a live block there is
  // first released by a phantom free at `time_us`).
  void Allocate(AddressState& s, uint64_t id, uint32_t stream, uint64_t order, uint64_t time_us,
                EventArray* out);
  // Held events. Each stream's are a queue in arrival order (a thread's
  // own order: only its first, the head, may apply). A head that did not
  // apply waits at the one address whose state decides it (a realloc's old
  // block: its new block never holds it, it splits); an event applied at
  // that address wakes it. So an applied event costs one probe of
  // `waiting_`, not a scan of the held events (paired in file order, as
  // the conversion was before its time merge, a thread's whole chunk was
  // held behind another's: 100,000s of events, tried one by one).
  struct Held {
    Event event;
    uint64_t seq;  // arrival order: the oldest head is forced first
  };
  struct StreamQueue {
    std::deque<Held> events;
    bool waiting = false;  // its head is in waiting_
  };
  static constexpr uint64_t kNoAddress = ~uint64_t{0};
  // The address whose state decides whether `e` applies (kNoAddress:
  // it always does).
  static uint64_t BlockingAddress(const Event& e);
  StreamQueue& Queue(uint32_t stream);
  // Appends `e` to its stream's held events (at the front: a realloc's new
  // block, which comes before the rest of its stream).
  void Enqueue(const Event& e, uint64_t seq, bool front);
  // Takes the head of `q` (of `stream`) out of the held events.
  Held PopHead(uint32_t stream, StreamQueue& q);
  // The head of `stream` waits at its blocking address.
  void Wait(uint32_t stream, StreamQueue& q);
  // Its head no longer waits (it leaves, or another goes before it).
  void Unwait(uint32_t stream, StreamQueue& q);
  // The heads waiting at the addresses `e` changed may apply now.
  void Wake(const Event& e);
  void WakeAt(uint64_t address);
  // Applies the heads of the streams in ready_ while they are consistent.
  void Pump(EventArray* out);
  bool ApplyHeld(const Event& e, bool force, EventArray* out);
  bool StreamHeld(uint32_t stream) const {
    return stream < queues_.size() && queues_[stream] != nullptr &&
           !queues_[stream]->events.empty();
  }
  // The held stream whose head arrived first.
  uint32_t OldestStream() const;
  void ForceOldest(EventArray* out);
  // A copy of `r` that lives until the next BeginRun.
  const format::Record* Own(const format::Record& r);
  // Appends the translated (kInherited, kBlockClasses, kFreeError) or
  // unchanged record `e`.
  void PassOther(const Event& e, EventArray* out);

  AddressStateTable states_;
  // By stream (null: never held). A held event's `full` record is a copy in
  // held_records_ (the chunk's may be gone when it is applied).
  std::vector<std::unique_ptr<StreamQueue>> queues_;
  std::vector<uint32_t> held_streams_;  // streams with held events
  absl::flat_hash_map<uint64_t, std::vector<uint32_t>> waiting_;  // address -> streams
  std::vector<uint32_t> ready_;  // streams whose head may apply now
  absl::flat_hash_map<const format::Record*, std::unique_ptr<FullRecord>> held_records_;
  size_t held_count_ = 0;
  uint64_t next_seq_ = 0;
  uint64_t applying_seq_ = 0;  // the seq of the event Apply is given
  std::vector<std::unique_ptr<FullRecord>> owned_;
  AddressPairingStats stats_;
  const absl::flat_hash_map<uint64_t, ParentBlock>* inheritance_ = nullptr;
  uint64_t next_inherited_ = 1;
  uint64_t now_ = 0;
  const uint64_t hold_slack_us_;
  const size_t max_held_;
  // Addresses first seen have a history this trace did not see: a fork
  // child's, or any trace's from its first kInherited on.
  bool counts_unknown_;
};

// The notes `report` shows for a pairing's anomalies (none: empty).
std::vector<std::string> AddressPairingWarnings(const AddressPairingStats& stats);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_ADDRESS_PAIRING_H_
