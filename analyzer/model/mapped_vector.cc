// analyzer/model/mapped_vector.cc: see mapped_vector.h.
#include "analyzer/model/mapped_vector.h"

#include <sys/mman.h>

#include <cstdint>

namespace heapsight::analyzer::mapped_vector_internal {

void* MapAligned(size_t bytes) {
  // Over-map by one huge page and cut the unaligned ends off.
  const size_t span = bytes + kHugePageBytes;
  void* raw = mmap(nullptr, span, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  const auto start = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t aligned = (start + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
  if (aligned > start) munmap(raw, aligned - start);
  const uintptr_t tail = aligned + bytes;
  if (start + span > tail) munmap(reinterpret_cast<void*>(tail), start + span - tail);
  void* region = reinterpret_cast<void*>(aligned);
  madvise(region, bytes, MADV_HUGEPAGE);  // best effort, as AdviseHugePages
  return region;
}

bool MovePages(void* old_base, size_t old_bytes, void* new_base) {
  // MREMAP_FIXED replaces the (untouched) start of the new region.
  void* moved = mremap(old_base, old_bytes, old_bytes, MREMAP_MAYMOVE | MREMAP_FIXED, new_base);
  return moved == new_base;
}

void Unmap(void* base, size_t bytes) {
  if (base != nullptr) munmap(base, bytes);
}

}  // namespace heapsight::analyzer::mapped_vector_internal
