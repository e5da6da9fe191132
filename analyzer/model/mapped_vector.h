// analyzer/model/mapped_vector.h: a vector for the analysis's large
// per-site arrays that grows by moving its pages, not by copying them.
//
// The arrays indexed by site (ProcessProfile::sites, 128 bytes a site; the
// site timeline's state, 40) grow while the pass runs, one site at a time.
// A std::vector doubles into fresh memory and copies: on the cc1plus trace
// (130 k sites) the sites array went through 4, 8 and 16 MiB blocks, 28
// MiB of fresh pages for 16.6 MiB of sites, the copies on the analysing
// thread, and each fresh page a fault that the kernel must zero (in this
// VM, whose freed memory goes back to the host, a 2 MiB page took 0.2 to
// 3 ms to fault in: perf, 2026-12-06, cc20). Here a large array lives in
// its own mapping, aligned to a huge page and advised MADV_HUGEPAGE
// (huge_page_allocator.h says why); growing maps a larger region and moves
// the old pages into its start with mremap(MREMAP_FIXED), which moves page
// table entries (whole huge pages when both ends are aligned) and touches
// no data. Only the new part's pages are ever faulted in.
//
// Small arrays (every small trace's) stay on the heap, copied as they grow
// (below kMapBytes the copies are cheap); an array that reaches kMapBytes
// is copied once into its first mapping.
//
// T must be trivially copyable (the pages move as bytes) and is never
// destroyed (trivially destructible). The interface is the subset of
// std::vector's that the analyzer uses; iterators are pointers.
//
// Memory: resident as a std::vector's of the same capacity (untouched
// capacity costs no page), plus at most one huge page at the end; address
// space the capacity rounded up to a huge page (during a growth, old and
// new region both, as for a std::vector).
#ifndef HEAPSIGHT_ANALYZER_MODEL_MAPPED_VECTOR_H_
#define HEAPSIGHT_ANALYZER_MODEL_MAPPED_VECTOR_H_

#include <sys/mman.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <limits>
#include <new>
#include <type_traits>
#include <utility>

#include "analyzer/model/huge_page_allocator.h"

namespace heapsight::analyzer {

namespace mapped_vector_internal {

// A region of `bytes` (a multiple of kHugePageBytes) aligned to a huge page,
// advised MADV_HUGEPAGE; nullptr if the kernel gives none.
void* MapAligned(size_t bytes);
// Moves the pages of [old_base, old_base + old_bytes) to the start of
// new_base's region (both aligned, old_bytes a multiple of the page size)
// and unmaps the old range; false (and nothing moved) on failure.
bool MovePages(void* old_base, size_t old_bytes, void* new_base);
void Unmap(void* base, size_t bytes);

}  // namespace mapped_vector_internal

template <typename T>
class MappedVector {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>);

 public:
  using value_type = T;
  using size_type = size_t;
  using iterator = T*;
  using const_iterator = const T*;
  using reference = T&;
  using const_reference = const T&;

  // Arrays of at least this many bytes live in a mapping of their own.
  static constexpr size_t kMapBytes = HugePageAllocator<T>::kMinBytes;

  MappedVector() = default;
  MappedVector(std::initializer_list<T> values) { *this = values; }
  MappedVector& operator=(std::initializer_list<T> values) {
    clear();
    reserve(values.size());
    for (const T& v : values) push_back(v);
    return *this;
  }
  MappedVector(const MappedVector& other) { *this = other; }
  MappedVector(MappedVector&& other) noexcept { Steal(other); }
  MappedVector& operator=(const MappedVector& other) {
    if (this == &other) return *this;
    clear();
    reserve(other.size_);
    if (other.size_ != 0) {
      std::memcpy(static_cast<void*>(data_), other.data_, other.size_ * sizeof(T));
    }
    size_ = other.size_;
    return *this;
  }
  MappedVector& operator=(MappedVector&& other) noexcept {
    if (this != &other) {
      Release();
      Steal(other);
    }
    return *this;
  }
  ~MappedVector() { Release(); }

  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }
  size_t capacity() const { return capacity_; }
  T* data() { return data_; }
  const T* data() const { return data_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T& front() { return data_[0]; }
  const T& front() const { return data_[0]; }
  T& back() { return data_[size_ - 1]; }
  const T& back() const { return data_[size_ - 1]; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }

  void push_back(const T& value) {
    if (size_ == capacity_) [[unlikely]] Grow(size_ + 1);
    ::new (static_cast<void*>(data_ + size_)) T(value);
    ++size_;
  }
  void reserve(size_t n) {
    if (n > capacity_) SetCapacity(n);
  }
  // New elements are value-initialized (T()).
  void resize(size_t n) {
    if (n > capacity_) Grow(n);
    for (size_t i = size_; i < n; ++i) ::new (static_cast<void*>(data_ + i)) T();
    size_ = n;
  }
  // Keeps the memory, as std::vector's clear does.
  void clear() { size_ = 0; }

 private:
  static constexpr size_t kMaxSize = std::numeric_limits<size_t>::max() / sizeof(T) / 2;

  // Geometric growth, as std::vector's (amortized O(1) push_back).
  void Grow(size_t at_least) {
    if (at_least > kMaxSize) throw std::bad_alloc();
    SetCapacity(std::max(at_least, capacity_ + std::max<size_t>(capacity_, 1)));
  }

  void SetCapacity(size_t n) {
    if (n > kMaxSize) throw std::bad_alloc();
    size_t bytes = n * sizeof(T);
    if (bytes < kMapBytes) {
      // On the heap (mapped_ is false: an array never shrinks its capacity).
      void* grown = std::realloc(data_, bytes);
      if (grown == nullptr) throw std::bad_alloc();
      data_ = static_cast<T*>(grown);
      capacity_ = n;
      return;
    }
    bytes = (bytes + kHugePageBytes - 1) & ~(kHugePageBytes - 1);
    void* region = mapped_vector_internal::MapAligned(bytes);
    if (region == nullptr) throw std::bad_alloc();
    if (mapped_) {
      if (!mapped_vector_internal::MovePages(data_, mapped_bytes_, region)) {
        std::memcpy(region, static_cast<const void*>(data_), size_ * sizeof(T));
        mapped_vector_internal::Unmap(data_, mapped_bytes_);
      }
    } else {
      if (size_ != 0) std::memcpy(region, static_cast<const void*>(data_), size_ * sizeof(T));
      std::free(data_);
    }
    data_ = static_cast<T*>(region);
    mapped_ = true;
    mapped_bytes_ = bytes;
    capacity_ = bytes / sizeof(T);
  }

  void Release() {
    if (mapped_) {
      mapped_vector_internal::Unmap(data_, mapped_bytes_);
    } else {
      std::free(data_);
    }
    data_ = nullptr;
    size_ = capacity_ = mapped_bytes_ = 0;
    mapped_ = false;
  }

  void Steal(MappedVector& other) {
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    capacity_ = std::exchange(other.capacity_, 0);
    mapped_bytes_ = std::exchange(other.mapped_bytes_, 0);
    mapped_ = std::exchange(other.mapped_, false);
  }

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
  size_t mapped_bytes_ = 0;  // the mapping's length when mapped_
  bool mapped_ = false;
};

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_MAPPED_VECTOR_H_
