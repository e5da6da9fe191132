// analyzer/model/address_state_table.cc: see address_state_table.h.
#include "analyzer/model/address_state_table.h"

#include <sys/mman.h>

#include <new>

#include "analyzer/model/huge_page_allocator.h"
#include "analyzer/model/mapped_vector.h"

namespace heapsight::analyzer {
namespace {

// A zeroed region of `bytes`: huge-page aligned and advised from one huge
// page up (the slots are read at random: a TLB miss per lookup otherwise).
uint64_t* MapSlots(size_t bytes) {
  void* region = nullptr;
  if (bytes >= kHugePageBytes) region = mapped_vector_internal::MapAligned(bytes);
  if (region == nullptr) {
    region = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) throw std::bad_alloc();
  }
  return static_cast<uint64_t*>(region);
}

}  // namespace

AddressStateTable::~AddressStateTable() {
  mapped_vector_internal::Unmap(slots_, capacity_ * 2 * sizeof(uint64_t));
}

uint32_t AddressStateTable::FarStream(uint64_t address) const {
  auto it = far_streams_.find(address);
  return it != far_streams_.end() ? it->second : AddressState::kNoStream;
}

uint64_t AddressStateTable::SetFarStream(uint64_t address, uint32_t stream) {
  if (stream != AddressState::kNoStream && stream >= kFarStream - 1) {
    far_streams_[address] = stream;
    return kFarStream;
  }
  far_streams_.erase(address);
  return stream == AddressState::kNoStream ? 0 : uint64_t{stream} + 1;
}

AddressStateTable::Ref AddressStateTable::InsertSlow(uint64_t address, const AddressState& fresh,
                                                     bool* inserted) {
  Ref ref;
  if (!Packable(address)) [[unlikely]] {
    auto [it, first] = far_.try_emplace(address, fresh);
    *inserted = first;
    ref.far = &it->second;
    return ref;
  }
  const uint64_t key = address >> kGranuleBits;
  for (;;) {
    if (capacity_ != 0) {
      const size_t mask = capacity_ - 1;
      for (size_t i = Home(address);; i = (i + 1) & mask) {
        uint64_t* slot = &slots_[2 * i];
        if (slot[0] == 0) {
          // Not here: room for it, unless the table is at its load limit.
          if ((size_ + 1) * 4 > capacity_ * 3) break;
          Pack(slot, address, fresh);
          ++size_;
          *inserted = true;
          ref.slot = slot;
          return ref;
        }
        if ((slot[0] & kKeyMask) == key) {
          *inserted = false;
          ref.slot = slot;
          return ref;
        }
      }
    }
    Grow();
  }
}

bool AddressStateTable::Find(uint64_t address, AddressState* state) const {
  if (!Packable(address)) [[unlikely]] {
    auto it = far_.find(address);
    if (it == far_.end()) return false;
    *state = it->second;
    return true;
  }
  if (capacity_ == 0) return false;
  const uint64_t key = address >> kGranuleBits;
  const size_t mask = capacity_ - 1;
  for (size_t i = Home(address);; i = (i + 1) & mask) {
    const uint64_t* slot = &slots_[2 * i];
    if (slot[0] == 0) return false;
    if ((slot[0] & kKeyMask) == key) {
      *state = Unpack(slot, address);
      return true;
    }
  }
}

void AddressStateTable::Grow() {
  const size_t old_capacity = capacity_;
  uint64_t* const old = slots_;
  const size_t capacity = old_capacity == 0 ? kMinCapacity : 2 * old_capacity;
  slots_ = MapSlots(capacity * 2 * sizeof(uint64_t));
  capacity_ = capacity;
  shift_ = 64 - __builtin_ctzll(capacity);
  const size_t mask = capacity - 1;
  // The old slots in order are in the order of their home slots (but for
  // the run that wrapped past the end to the front), and a slot's new home
  // is twice its old one or one more: the writes sweep the new table as
  // the reads sweep the old one, whose pages go back behind the reads.
  constexpr size_t kReleaseSlots = kHugePageBytes / (2 * sizeof(uint64_t));
  for (size_t i = 0; i < old_capacity; ++i) {
    const uint64_t* from = &old[2 * i];
    if (from[0] != 0) {
      const uint64_t address = (from[0] & kKeyMask) << kGranuleBits;
      size_t j = Home(address);
      while (slots_[2 * j] != 0) j = (j + 1) & mask;
      slots_[2 * j] = from[0];
      slots_[2 * j + 1] = from[1];
    }
    if ((i + 1) % kReleaseSlots == 0) {
      madvise(&old[2 * (i + 1 - kReleaseSlots)], kHugePageBytes, MADV_DONTNEED);
    }
  }
  mapped_vector_internal::Unmap(old, old_capacity * 2 * sizeof(uint64_t));
}

}  // namespace heapsight::analyzer
