// preload/new_delete_hooks.cc: every replaceable operator new/delete.
//
// Implemented on top of the real malloc/aligned_alloc (not libstdc++'s
// operator new, which would call our malloc hook and record twice). The
// throwing forms loop on std::get_new_handler() and throw std::bad_alloc
// exactly like libstdc++; the failure is recorded (kAllocFailed) before the
// handler runs out and we throw.
//
// Constraints: the only preload file compiled with exceptions. No malloc of
// our own; the new-handler runs outside the reentry guard (it is program
// code and may allocate).
#include <cstddef>
#include <cstdlib>
#include <new>

#include "format/trace_format.h"
#include "preload/heap_limit.h"
#include "preload/real_functions.h"
#include "preload/recorder.h"

#define HEAPSIGHT_EXPORT __attribute__((visibility("default")))

namespace hp = heapsight::preload;
using heapsight::format::Api;

namespace {

void* RawAllocate(size_t size, size_t alignment) {
  if (!hp::EnsureRealFunctions()) return hp::BootstrapAlloc(size, alignment);
  if (hp::HeapLimitDenies(size)) return nullptr;  // as if out of memory
  void* p;
  if (alignment == 0) {
    p = hp::g_real.malloc(size);
  } else {
    if (alignment < sizeof(void*)) alignment = sizeof(void*);
    p = hp::g_real.aligned_alloc(alignment, size);
  }
  hp::HeapLimitAdd(p);
  return p;
}

// The nothrow forms: one try (plus the new-handler loop, as libstdc++).
void* NewNothrow(size_t size, size_t alignment, Api api) noexcept {
  size_t n = size == 0 ? 1 : size;
  for (;;) {
    void* p = RawAllocate(n, alignment);
    if (p != nullptr) {
      hp::RecordAlloc(p, size, alignment, api);
      return p;
    }
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      hp::RecordAlloc(nullptr, size, alignment, api);
      return nullptr;
    }
    try {
      handler();
    } catch (...) {
      hp::RecordAlloc(nullptr, size, alignment, api);
      return nullptr;
    }
  }
}

void* NewThrowing(size_t size, size_t alignment, Api api) {
  size_t n = size == 0 ? 1 : size;
  for (;;) {
    void* p = RawAllocate(n, alignment);
    if (p != nullptr) {
      hp::RecordAlloc(p, size, alignment, api);
      return p;
    }
    std::new_handler handler = std::get_new_handler();
    if (handler == nullptr) {
      hp::RecordAlloc(nullptr, size, alignment, api);  // before throwing
      throw std::bad_alloc();
    }
    handler();  // may throw bad_alloc itself; then it was the program's call
  }
}

void Delete(void* p, Api api) noexcept {
  if (!hp::EnsureRealFunctions()) return;
  hp::HeapLimitSub(p);
  hp::TracedFree(p, api);
}

size_t Align(std::align_val_t a) { return static_cast<size_t>(a); }

}  // namespace

HEAPSIGHT_EXPORT void* operator new(size_t n) { return NewThrowing(n, 0, Api::kNew); }
HEAPSIGHT_EXPORT void* operator new[](size_t n) { return NewThrowing(n, 0, Api::kNewArray); }
HEAPSIGHT_EXPORT void* operator new(size_t n, const std::nothrow_t&) noexcept {
  return NewNothrow(n, 0, Api::kNewNothrow);
}
HEAPSIGHT_EXPORT void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  return NewNothrow(n, 0, Api::kNewArrayNothrow);
}
HEAPSIGHT_EXPORT void* operator new(size_t n, std::align_val_t a) {
  return NewThrowing(n, Align(a), Api::kNewAligned);
}
HEAPSIGHT_EXPORT void* operator new[](size_t n, std::align_val_t a) {
  return NewThrowing(n, Align(a), Api::kNewArrayAligned);
}
HEAPSIGHT_EXPORT void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return NewNothrow(n, Align(a), Api::kNewAlignedNothrow);
}
HEAPSIGHT_EXPORT void* operator new[](size_t n, std::align_val_t a,
                                      const std::nothrow_t&) noexcept {
  return NewNothrow(n, Align(a), Api::kNewArrayAlignedNothrow);
}

HEAPSIGHT_EXPORT void operator delete(void* p) noexcept { Delete(p, Api::kDelete); }
HEAPSIGHT_EXPORT void operator delete[](void* p) noexcept { Delete(p, Api::kDeleteArray); }
HEAPSIGHT_EXPORT void operator delete(void* p, size_t) noexcept { Delete(p, Api::kDeleteSized); }
HEAPSIGHT_EXPORT void operator delete[](void* p, size_t) noexcept {
  Delete(p, Api::kDeleteArraySized);
}
HEAPSIGHT_EXPORT void operator delete(void* p, std::align_val_t) noexcept {
  Delete(p, Api::kDeleteAligned);
}
HEAPSIGHT_EXPORT void operator delete[](void* p, std::align_val_t) noexcept {
  Delete(p, Api::kDeleteArrayAligned);
}
HEAPSIGHT_EXPORT void operator delete(void* p, size_t, std::align_val_t) noexcept {
  Delete(p, Api::kDeleteSizedAligned);
}
HEAPSIGHT_EXPORT void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  Delete(p, Api::kDeleteArraySizedAligned);
}
HEAPSIGHT_EXPORT void operator delete(void* p, const std::nothrow_t&) noexcept {
  Delete(p, Api::kDeleteNothrow);
}
HEAPSIGHT_EXPORT void operator delete[](void* p, const std::nothrow_t&) noexcept {
  Delete(p, Api::kDeleteArrayNothrow);
}
HEAPSIGHT_EXPORT void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  Delete(p, Api::kDeleteAlignedNothrow);
}
HEAPSIGHT_EXPORT void operator delete[](void* p, std::align_val_t,
                                        const std::nothrow_t&) noexcept {
  Delete(p, Api::kDeleteArrayAlignedNothrow);
}
