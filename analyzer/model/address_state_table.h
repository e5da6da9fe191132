// analyzer/model/address_state_table.h: the address pairing's per-address
// state (address_pairing.h), packed into 16-byte slots of one open-addressing
// table.
//
// The pairing keeps a state for every address a version-6 trace used: the
// live block's id (or the last one freed there), the preload's count mod 16,
// the stream of the address's last event. An abseil map of address to that
// state cost 33 bytes a slot (8-byte key, 24-byte value, a control byte) in
// two places a lookup (control byte, then slot): python's 1 M-entry dict
// trace has 6.0 M addresses, nearly all live at once, which took 8 M slots,
// 277 MB, and 4 M more while the table doubled. Here a slot is two words:
//  - word 0: the address / 16 (bits 0-43) and the state (bits 44-63: the
//    count, live, count known, and the stream + 1 in 14 bits, 0 for none);
//  - word 1: the id.
// An empty slot is word 0 == 0 (the table holds no address 0). A lookup
// reads one slot (most of the time one cache line: linear probing from the
// home slot, load at most 3/4).
//
// What does not pack goes elsewhere, so any trace works: an address that is
// 0, not a multiple of 16 or at or above 2^48 (glibc's blocks are 16-byte
// aligned below 2^47; hand-made and corrupt traces are not) keeps its whole
// state in `far_` (an abseil map); a stream at or above kFarStream is
// written as kFarStream and kept in `far_streams_` by address.
//
// The home slot is the top bits of a multiplicative hash, so the table is
// ordered by home slot: a growth reads the old table front to back and
// writes the new one (twice the slots) nearly front to back too, and hands
// each 2 MiB of the old table back to the kernel as soon as it is read. The
// growth then costs about the new table's pages, not old + new (python: 128
// MB at the end, where a doubling in fresh memory peaks at 192).
//
// No erase: a freed address keeps its state (address_pairing.h says why).
// Not thread-safe.
#ifndef HEAPSIGHT_ANALYZER_MODEL_ADDRESS_STATE_TABLE_H_
#define HEAPSIGHT_ANALYZER_MODEL_ADDRESS_STATE_TABLE_H_

#include <cstddef>
#include <cstdint>

#include "absl/container/flat_hash_map.h"

namespace heapsight::analyzer {

// An address's state as the pairing reads and writes it.
struct AddressState {
  static constexpr uint32_t kNoStream = UINT32_MAX;
  uint64_t id = 0;              // live: the block's; else the last block freed here (0: none)
  uint32_t stream = kNoStream;  // of the address's last event (kNoStream: none known)
  uint8_t count = 0;            // the preload's count after that event, mod 16
  bool live = false;
  bool count_known = true;

  bool operator==(const AddressState&) const = default;
};

class AddressStateTable {
 public:
  // Streams at or above this are kept apart (far_streams_).
  static constexpr uint32_t kFarStream = (1u << 14) - 1;

  // Where an address's state is: a slot of the table or an entry of far_.
  // Valid until the next Insert (which may grow the table).
  struct Ref {
    uint64_t* slot = nullptr;
    AddressState* far = nullptr;
  };

  AddressStateTable() = default;
  AddressStateTable(const AddressStateTable&) = delete;
  AddressStateTable& operator=(const AddressStateTable&) = delete;
  ~AddressStateTable();

  // The address's state, or `fresh` stored there first if it had none
  // (*inserted then true). Inlined: the pairing calls it for every event,
  // and a call's prologue cost as much as the probe.
  [[gnu::always_inline]] Ref Insert(uint64_t address, const AddressState& fresh, bool* inserted) {
    if (Packable(address) && capacity_ != 0) [[likely]] {
      const uint64_t key = address >> kGranuleBits;
      const size_t mask = capacity_ - 1;
      for (size_t i = Home(address);; i = (i + 1) & mask) {
        uint64_t* slot = &slots_[2 * i];
        const uint64_t word = slot[0];
        if ((word & kKeyMask) == key) {  // never an empty slot's: no key is 0
          *inserted = false;
          return Ref{slot, nullptr};
        }
        if (word == 0) {
          if ((size_ + 1) * 4 > capacity_ * 3) break;  // at the load limit: grow first
          Pack(slot, address, fresh);
          ++size_;
          *inserted = true;
          return Ref{slot, nullptr};
        }
      }
    }
    return InsertSlow(address, fresh, inserted);
  }
  // The address's state if it has one (else found false).
  bool Find(uint64_t address, AddressState* state) const;
  AddressState Load(Ref ref, uint64_t address) const {
    if (ref.far != nullptr) return *ref.far;
    return Unpack(ref.slot, address);
  }
  void Store(Ref ref, uint64_t address, const AddressState& state) {
    if (ref.far != nullptr) {
      *ref.far = state;
    } else {
      Pack(ref.slot, address, state);
    }
  }
  // Loads the address's home slot ahead of its lookup. Unconditional (a
  // prefetch never faults: before the first slot, or for an address that
  // does not pack, it loads a line nobody reads). An asm statement, not
  // __builtin_prefetch: in trace_model.cc's loop GCC 12 dropped the
  // builtin (no prefetch instruction in ProcessAddressRun), and the first
  // look at the slot took 42% of python's report.
  void Prefetch(uint64_t address) const {
    const auto* line = reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(slots_) +
                                                     2 * sizeof(uint64_t) * Home(address));
#if defined(__x86_64__)
    asm volatile("prefetcht0 %0" : : "m"(*line));
#else
    __builtin_prefetch(line);
#endif
  }

  // Calls fn(address, state) for every address with a state.
  template <typename Fn>
  void ForEach(Fn fn) const {
    for (size_t i = 0; i < capacity_; ++i) {
      const uint64_t* slot = &slots_[2 * i];
      if (slot[0] == 0) continue;
      const uint64_t address = (slot[0] & kKeyMask) << kGranuleBits;
      fn(address, Unpack(slot, address));
    }
    for (const auto& [address, state] : far_) fn(address, state);
  }

  // Addresses with a state.
  size_t size() const { return size_ + far_.size(); }
  // Slots of the table (for tests).
  size_t capacity() const { return capacity_; }

 private:
  static constexpr int kGranuleBits = 4;
  static constexpr int kKeyBits = 44;  // addresses below 2^48
  static constexpr uint64_t kKeyMask = (uint64_t{1} << kKeyBits) - 1;
  static constexpr int kCountShift = kKeyBits;       // 4 bits
  static constexpr int kLiveShift = kKeyBits + 4;    // 1 bit
  static constexpr int kKnownShift = kKeyBits + 5;   // 1 bit
  static constexpr int kStreamShift = kKeyBits + 6;  // 14 bits: 0 none, else stream + 1
  static constexpr size_t kMinCapacity = 1024;

  static bool Packable(uint64_t address) {
    return address != 0 && (address & ((uint64_t{1} << kGranuleBits) - 1)) == 0 &&
           (address >> (kKeyBits + kGranuleBits)) == 0;
  }
  size_t Home(uint64_t address) const {
    return static_cast<size_t>(((address >> kGranuleBits) * 0x9E3779B97F4A7C15ull) >> shift_);
  }
  AddressState Unpack(const uint64_t* slot, uint64_t address) const {
    const uint64_t word = slot[0];
    AddressState s;
    s.id = slot[1];
    s.count = static_cast<uint8_t>((word >> kCountShift) & 15);
    s.live = ((word >> kLiveShift) & 1) != 0;
    s.count_known = ((word >> kKnownShift) & 1) != 0;
    const uint32_t field = static_cast<uint32_t>(word >> kStreamShift);
    s.stream = field == 0 ? AddressState::kNoStream : field - 1;
    if (field == kFarStream) [[unlikely]] s.stream = FarStream(address);
    return s;
  }
  // `slot` may be empty (word 0 is 0) or hold `address`.
  void Pack(uint64_t* slot, uint64_t address, const AddressState& s) {
    uint64_t field = s.stream == AddressState::kNoStream ? 0 : uint64_t{s.stream} + 1;
    if (field >= kFarStream || (slot[0] >> kStreamShift) == kFarStream) [[unlikely]] {
      field = SetFarStream(address, s.stream);
    }
    slot[0] = (address >> kGranuleBits) | uint64_t{s.count & 15u} << kCountShift |
              uint64_t{s.live} << kLiveShift | uint64_t{s.count_known} << kKnownShift |
              field << kStreamShift;
    slot[1] = s.id;
  }
  // The stream of a slot whose field is kFarStream.
  uint32_t FarStream(uint64_t address) const;
  // Records `stream` in far_streams_ (kFarStream) or drops the address's
  // entry there (the field for `stream`).
  uint64_t SetFarStream(uint64_t address, uint32_t stream);
  Ref InsertSlow(uint64_t address, const AddressState& fresh, bool* inserted);
  // Twice the slots (or the first kMinCapacity).
  void Grow();

  uint64_t* slots_ = nullptr;  // 2 words a slot, capacity_ slots (mmap)
  size_t capacity_ = 0;
  size_t size_ = 0;  // occupied slots
  int shift_ = 63;   // 64 - log2(capacity_) (63 before the first slot: a shift by 64 is undefined)
  absl::flat_hash_map<uint64_t, AddressState> far_;
  absl::flat_hash_map<uint64_t, uint32_t> far_streams_;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_ADDRESS_STATE_TABLE_H_
