// preload/new_delete_hooks.cc: every replaceable operator new/delete.
//
// Implemented on top of the real malloc/aligned_alloc (not libstdc++'s
// operator new, which would call our malloc hook and record twice). The
// throwing forms loop on the program's new-handler and throw std::bad_alloc
// exactly like libstdc++; the failure is recorded (kAllocFailed) before the
// handler runs out and we throw.
//
// Built without exceptions, like the rest of the preload, and linked
// without a C++ runtime (issue 14): the new-handler, the throw and the
// catch of the nothrow forms are the host's C++ runtime's
// (cxx_runtime.h), borrowed on the failure path only. Exceptions from the
// handler or the thrower pass through our frames, which hold nothing to
// clean up at those points (no guard, no lock).
//
// Constraints: no malloc of our own; the new-handler runs outside the
// reentry guard (it is program code and may allocate).
#include <cstddef>
#include <cstdlib>
#include <new>

#include "format/trace_format.h"
#include "preload/cxx_runtime.h"
#include "preload/defer_zone.h"
#include "preload/heap_limit.h"
#include "preload/lifecycle.h"
#include "preload/real_functions.h"
#include "preload/recorder.h"

#define HEAPSIGHT_EXPORT __attribute__((visibility("default")))

namespace hp = heapsight::preload;
using heapsight::format::Api;

namespace {

// A tag of our own: std::nothrow is an object in libstdc++.so.
constexpr std::nothrow_t kNothrow{};

// Set by NewNothrow just before it calls the runtime's nothrow operator
// new, which calls our throwing operator new inside its try block: that
// call only allocates (the nothrow hook records the outcome). Taken and
// cleared at the throwing hook's entry, so the new-handler's own
// allocations are recorded as usual.
thread_local bool t_nothrow_delegate __attribute__((tls_model("initial-exec"))) = false;

// The real allocation of `size` (already 1 for 0) bytes, in the defer zone
// (defer_zone.h: a signal handler's hook nested in it waits for no lock).
void* RealAllocate(size_t size, size_t alignment) {
  if (alignment == 0) return hp::CallReal(hp::g_real.malloc, size);
  return hp::CallReal(hp::g_real.aligned_alloc,
                      alignment < sizeof(void*) ? sizeof(void*) : alignment, size);
}

void* RawAllocate(size_t size, size_t alignment) {
  if (!hp::EnsureRealFunctions()) return hp::BootstrapAlloc(size, alignment);
  hp::StartTracingIfUninit();  // before the event: it is recorded (lifecycle.h)
  if (hp::HeapLimitDenies(size)) return nullptr;  // as if out of memory
  void* p = RealAllocate(size, alignment);
  hp::HeapLimitAdd(p);
  return p;
}

// The generic paths, out of line (the hooks' fast paths keep a small
// frame). `tried`: the fast path already called the real function, which
// failed; the generic path goes on as if its own first try had failed, so
// a failing allocation is tried once, as without the fast path.
__attribute__((noinline)) void* NewThrowing(size_t size, size_t alignment, Api api, bool tried) {
  const bool delegate = t_nothrow_delegate;
  t_nothrow_delegate = false;
  size_t n = size == 0 ? 1 : size;
  for (;;) {
    void* p = tried ? nullptr : RawAllocate(n, alignment);
    tried = false;
    if (p != nullptr) {
      if (!delegate) hp::RecordAllocInline(p, size, alignment, api);
      return p;
    }
    std::new_handler handler = hp::HostNewHandler();
    if (handler == nullptr) {
      if (!delegate) hp::RecordAlloc(nullptr, size, alignment, api);  // before throwing
      hp::ThrowBadAlloc();
    }
    handler();  // may throw bad_alloc itself; then it was the program's call
  }
}

// The nothrow forms: one try; if it fails and the program has a
// new-handler, the new-handler loop runs inside the runtime's own nothrow
// new (its try block calls our throwing hook, its catch block returns
// nullptr), as libstdc++'s nothrow new does. Either way the outcome is
// recorded here, once.
__attribute__((noinline)) void* NewNothrow(size_t size, size_t alignment, Api api,
                                           bool tried) noexcept {
  void* p = tried ? nullptr : RawAllocate(size == 0 ? 1 : size, alignment);
  if (p == nullptr && hp::HostNewHandler() != nullptr) {
    if (alignment == 0) {
      if (hp::NothrowNew fn = hp::HostNothrowNew(); fn != nullptr) {
        t_nothrow_delegate = true;
        p = fn(size, kNothrow);
      }
    } else if (hp::NothrowNewAligned fn = hp::HostNothrowNewAligned(); fn != nullptr) {
      t_nothrow_delegate = true;
      p = fn(size, static_cast<std::align_val_t>(alignment), kNothrow);
    }
    t_nothrow_delegate = false;  // if the runtime never called our hook
  }
  hp::RecordAlloc(p, size, alignment, api);
  return p;
}

__attribute__((noinline)) void DeleteGeneric(void* p, Api api) noexcept {
  if (!hp::EnsureRealFunctions()) return;
  hp::HeapLimitSub(p);
  hp::TracedFreeInline(p, api);
}

// Sampled mode's fast paths (recorder.h), inlined into each hook: an
// unsampled allocation only calls the real function (a failure takes its
// count back and goes on in the generic path: the handler loop); the
// delete of an unsampled block only frees it. Before the nothrow-delegate
// test: a delegated call (the runtime's nothrow new after a failure, with
// a new-handler) that succeeds here is counted once more by NewNothrow's
// record, which shifts a sampling point on an out-of-memory path and
// changes no record.
__attribute__((always_inline)) inline void* New(size_t size, size_t alignment, Api api) {
  if (hp::UnsampledFast(size)) {
    void* p = RealAllocate(size == 0 ? 1 : size, alignment);
    if (__builtin_expect(p != nullptr, 1)) return p;
    hp::t_sample_bytes_left += static_cast<int64_t>(size);
    return NewThrowing(size, alignment, api, true);
  }
  return NewThrowing(size, alignment, api, false);
}

__attribute__((always_inline)) inline void* NewNothrowFast(size_t size, size_t alignment,
                                                           Api api) noexcept {
  if (hp::UnsampledFast(size)) {
    void* p = RealAllocate(size == 0 ? 1 : size, alignment);
    if (__builtin_expect(p != nullptr, 1)) return p;
    hp::t_sample_bytes_left += static_cast<int64_t>(size);
    return NewNothrow(size, alignment, api, true);
  }
  return NewNothrow(size, alignment, api, false);
}

__attribute__((always_inline)) inline void Delete(void* p, Api api) noexcept {
  if (hp::UnsampledFreeFast(p)) return hp::g_real.free(p);
  DeleteGeneric(p, api);
}

size_t Align(std::align_val_t a) { return static_cast<size_t>(a); }

}  // namespace

HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void* operator new(size_t n) { return New(n, 0, Api::kNew); }
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void* operator new[](size_t n) { return New(n, 0, Api::kNewArray); }
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void* operator new(size_t n, const std::nothrow_t&) noexcept {
  return NewNothrowFast(n, 0, Api::kNewNothrow);
}
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  return NewNothrowFast(n, 0, Api::kNewArrayNothrow);
}
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void* operator new(size_t n, std::align_val_t a) {
  return New(n, Align(a), Api::kNewAligned);
}
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void* operator new[](size_t n, std::align_val_t a) {
  return New(n, Align(a), Api::kNewArrayAligned);
}
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  return NewNothrowFast(n, Align(a), Api::kNewAlignedNothrow);
}
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void* operator new[](size_t n, std::align_val_t a,
                                      const std::nothrow_t&) noexcept {
  return NewNothrowFast(n, Align(a), Api::kNewArrayAlignedNothrow);
}

HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void operator delete(void* p) noexcept { Delete(p, Api::kDelete); }
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void operator delete[](void* p) noexcept { Delete(p, Api::kDeleteArray); }
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void operator delete(void* p, size_t) noexcept { Delete(p, Api::kDeleteSized); }
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void operator delete[](void* p, size_t) noexcept {
  Delete(p, Api::kDeleteArraySized);
}
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void operator delete(void* p, std::align_val_t) noexcept {
  Delete(p, Api::kDeleteAligned);
}
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void operator delete[](void* p, std::align_val_t) noexcept {
  Delete(p, Api::kDeleteArrayAligned);
}
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void operator delete(void* p, size_t, std::align_val_t) noexcept {
  Delete(p, Api::kDeleteSizedAligned);
}
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  Delete(p, Api::kDeleteArraySizedAligned);
}
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void operator delete(void* p, const std::nothrow_t&) noexcept {
  Delete(p, Api::kDeleteNothrow);
}
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void operator delete[](void* p, const std::nothrow_t&) noexcept {
  Delete(p, Api::kDeleteArrayNothrow);
}
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  Delete(p, Api::kDeleteAlignedNothrow);
}
HEAPSIGHT_FAST_HOOK HEAPSIGHT_EXPORT void operator delete[](void* p, std::align_val_t,
                                        const std::nothrow_t&) noexcept {
  Delete(p, Api::kDeleteArrayAlignedNothrow);
}
