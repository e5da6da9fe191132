// preload/malloc_hooks.cc: the C allocation functions we interpose.
//
// Each hook calls the real function (the next definition, found with
// dlsym(RTLD_NEXT)) and hands the outcome to the recorder. Until the real
// functions are known (dlsym itself allocates while we look them up), the
// bootstrap arena serves requests. malloc_usable_size is not hooked: every
// block the program sees comes from the real allocator, so libc's version
// keeps working. The generic paths call the real function inside the
// defer zone (CallReal, defer_zone.h): a signal handler's hook nested in
// it, where glibc may hold an arena lock, waits for no heapsight lock.
//
// Constraints: no malloc of our own, no locks here (see recorder.cc). Hooks
// are the only symbols with default visibility.
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "format/trace_format.h"
#include "preload/defer_zone.h"
#include "preload/heap_limit.h"
#include "preload/lifecycle.h"
#include "preload/real_functions.h"
#include "preload/recorder.h"

#define HEAPSIGHT_EXPORT extern "C" __attribute__((visibility("default")))

namespace hp = heapsight::preload;
using heapsight::format::Api;

namespace {

size_t SaturatingMul(size_t a, size_t b) {
  size_t r;
  return __builtin_mul_overflow(a, b, &r) ? SIZE_MAX : r;
}

// `err`: errno at the hook's entry, then as the real call left it; the
// hook returns with it (the recorder's work around the call may change
// errno; host_guards.h).
struct ReallocArgs {
  size_t n;
  size_t m;
  int err;
};
void* CallRealloc(void* p, void* ctx) {
  auto* a = static_cast<ReallocArgs*>(ctx);
  errno = a->err;
  void* q = hp::CallReal(hp::g_real.realloc, p, a->n);
  a->err = errno;
  return q;
}
// reallocarray is realloc with an overflow check. glibc's own reallocarray
// calls realloc through the PLT, i.e. our realloc hook, which would record
// the call twice; so we do the check and call the real realloc ourselves.
void* CallReallocArray(void* p, void* ctx) {
  auto* a = static_cast<ReallocArgs*>(ctx);
  size_t total;
  if (__builtin_mul_overflow(a->n, a->m, &total)) {
    a->err = ENOMEM;
    return nullptr;
  }
  errno = a->err;
  void* q = hp::CallReal(hp::g_real.realloc, p, total);
  a->err = errno;
  return q;
}

// realloc of a bootstrap-arena block (only dlsym's own data could be one).
void* ReallocFromBootstrap(void* p, size_t size, Api api) {
  void* q = hp::CallReal(hp::g_real.malloc, size);
  if (q != nullptr) {
    size_t old = hp::BootstrapSize(p);
    memcpy(q, p, old < size ? old : size);
  }
  hp::RecordAlloc(q, size, 0, api);
  return q;
}

// The generic paths: each hook below (the interposed symbol) first tries
// sampled mode's fast path and else tail-calls one of these. Out of line,
// so the fast paths keep a small frame (the generic ones save five
// registers); each keeps its frame pointer (preload/meson.build), so our
// frame-pointer walks (unwinder.h) see it wherever it is called from.

__attribute__((noinline)) void* MallocGeneric(size_t size) {
  if (!hp::EnsureRealFunctions()) return hp::BootstrapAlloc(size, 16);
  hp::StartTracingIfUninit();  // before the event: it is recorded (lifecycle.h)
  if (hp::HeapLimitDenies(size)) return hp::HeapLimitFail(size, 0, Api::kMalloc);
  void* p = hp::CallReal(hp::g_real.malloc, size);
  hp::HeapLimitAdd(p);
  hp::RecordAllocInline(p, size, 0, Api::kMalloc);
  return p;
}

__attribute__((noinline)) void FreeGeneric(void* p) {
  if (!hp::EnsureRealFunctions()) return;  // only bootstrap blocks exist yet
  hp::HeapLimitSub(p);
  hp::TracedFreeInline(p, Api::kFree);
}

__attribute__((noinline)) void* CallocGeneric(size_t n, size_t size) {
  if (!hp::EnsureRealFunctions()) return hp::BootstrapAlloc(SaturatingMul(n, size), 16);
  hp::StartTracingIfUninit();  // before the event: it is recorded (lifecycle.h)
  if (hp::HeapLimitDenies(SaturatingMul(n, size))) {
    return hp::HeapLimitFail(SaturatingMul(n, size), 0, Api::kCalloc);
  }
  void* p = hp::CallReal(hp::g_real.calloc, n, size);
  hp::HeapLimitAdd(p);
  hp::RecordAllocInline(p, SaturatingMul(n, size), 0, Api::kCalloc);
  return p;
}

__attribute__((noinline)) void* ReallocGeneric(void* p, size_t size) {
  if (!hp::EnsureRealFunctions()) {
    void* q = hp::BootstrapAlloc(size, 16);
    if (q != nullptr && p != nullptr) {
      size_t old = hp::BootstrapSize(p);
      memcpy(q, p, old < size ? old : size);
    }
    return q;
  }
  hp::StartTracingIfUninit();
  if (hp::IsBootstrapPointer(p)) return ReallocFromBootstrap(p, size, Api::kRealloc);
  size_t old_usable;
  if (!hp::HeapLimitReallocBegin(p, size, &old_usable)) {
    return hp::HeapLimitFail(size, 0, Api::kRealloc);
  }
  ReallocArgs args{size, 0, errno};
  void* q = hp::TracedRealloc(p, size, Api::kRealloc, CallRealloc, &args);
  hp::HeapLimitReallocEnd(old_usable, q, size);
  errno = args.err;
  return q;
}

__attribute__((noinline)) void* ReallocarrayGeneric(void* p, size_t n, size_t size) {
  if (!hp::EnsureRealFunctions()) return nullptr;
  hp::StartTracingIfUninit();
  size_t total = SaturatingMul(n, size);
  if (hp::IsBootstrapPointer(p)) {
    if (total == SIZE_MAX) {
      errno = ENOMEM;
      return nullptr;
    }
    return ReallocFromBootstrap(p, total, Api::kReallocArray);
  }
  size_t old_usable;
  if (!hp::HeapLimitReallocBegin(p, total, &old_usable)) {
    return hp::HeapLimitFail(total, 0, Api::kReallocArray);
  }
  ReallocArgs args{n, size, errno};
  void* q = hp::TracedRealloc(p, total, Api::kReallocArray, CallReallocArray, &args);
  hp::HeapLimitReallocEnd(old_usable, q, total);
  errno = args.err;
  return q;
}

__attribute__((noinline)) int PosixMemalignGeneric(void** out, size_t alignment, size_t size) {
  if (!hp::EnsureRealFunctions()) {
    *out = hp::BootstrapAlloc(size, alignment);
    return *out != nullptr ? 0 : ENOMEM;
  }
  hp::StartTracingIfUninit();
  if (hp::HeapLimitDenies(size)) {
    int saved = errno;  // posix_memalign reports through its result, not errno
    hp::HeapLimitFail(size, alignment, Api::kPosixMemalign);
    errno = saved;
    return ENOMEM;
  }
  int rc = hp::CallReal(hp::g_real.posix_memalign, out, alignment, size);
  if (rc == 0) hp::HeapLimitAdd(*out);
  hp::RecordAlloc(rc == 0 ? *out : nullptr, size, alignment, Api::kPosixMemalign);
  return rc;
}

__attribute__((noinline)) void* AlignedAllocGeneric(size_t alignment, size_t size) {
  if (!hp::EnsureRealFunctions()) return hp::BootstrapAlloc(size, alignment);
  hp::StartTracingIfUninit();  // before the event: it is recorded (lifecycle.h)
  if (hp::HeapLimitDenies(size)) return hp::HeapLimitFail(size, alignment, Api::kAlignedAlloc);
  void* p = hp::CallReal(hp::g_real.aligned_alloc, alignment, size);
  hp::HeapLimitAdd(p);
  hp::RecordAlloc(p, size, alignment, Api::kAlignedAlloc);
  return p;
}

__attribute__((noinline)) void* MemalignGeneric(size_t alignment, size_t size) {
  if (!hp::EnsureRealFunctions()) return hp::BootstrapAlloc(size, alignment);
  hp::StartTracingIfUninit();  // before the event: it is recorded (lifecycle.h)
  if (hp::HeapLimitDenies(size)) return hp::HeapLimitFail(size, alignment, Api::kMemalign);
  void* p = hp::CallReal(hp::g_real.memalign, alignment, size);
  hp::HeapLimitAdd(p);
  hp::RecordAlloc(p, size, alignment, Api::kMemalign);
  return p;
}

__attribute__((noinline)) void* VallocGeneric(size_t size) {
  if (!hp::EnsureRealFunctions()) return hp::BootstrapAlloc(size, 4096);
  hp::StartTracingIfUninit();  // before the event: it is recorded (lifecycle.h)
  if (hp::HeapLimitDenies(size)) {
    return hp::HeapLimitFail(size, static_cast<size_t>(getpagesize()), Api::kValloc);
  }
  void* p = hp::CallReal(hp::g_real.valloc, size);
  hp::HeapLimitAdd(p);
  hp::RecordAlloc(p, size, static_cast<size_t>(getpagesize()), Api::kValloc);
  return p;
}

__attribute__((noinline)) void* PvallocGeneric(size_t size) {
  if (!hp::EnsureRealFunctions()) return hp::BootstrapAlloc(size, 4096);
  hp::StartTracingIfUninit();  // before the event: it is recorded (lifecycle.h)
  if (hp::HeapLimitDenies(size)) {
    return hp::HeapLimitFail(size, static_cast<size_t>(getpagesize()), Api::kPvalloc);
  }
  void* p = hp::CallReal(hp::g_real.pvalloc, size);
  hp::HeapLimitAdd(p);
  hp::RecordAlloc(p, size, static_cast<size_t>(getpagesize()), Api::kPvalloc);
  return p;
}

// C23's sized frees. glibc 2.36 has no real ones, so they are plain frees
// of the real allocator (the size is not checked yet).
__attribute__((noinline)) void FreeSizedGeneric(void* p, size_t) {
  if (!hp::EnsureRealFunctions()) return;
  hp::HeapLimitSub(p);
  hp::TracedFree(p, Api::kFreeSized);
}

__attribute__((noinline)) void FreeAlignedSizedGeneric(void* p, size_t, size_t) {
  if (!hp::EnsureRealFunctions()) return;
  hp::HeapLimitSub(p);
  hp::TracedFree(p, Api::kFreeAlignedSized);
}

}  // namespace

// --- The hooks ----------------------------------------------------------------
//
// Sampled mode (issue 15 target 4): each hook starts with the fast path of
// recorder.h, so an unsampled allocation, or the free of an unsampled
// block, costs the real call and a few instructions and runs nothing of
// the generic path (which would only find nothing to do). A fast path
// that finds work to do has changed nothing, and the generic path runs as
// it would alone. Outside sampled mode the fast path is one load and a
// branch.

HEAPSIGHT_EXPORT HEAPSIGHT_FAST_HOOK void* malloc(size_t size) {
  if (hp::UnsampledFast(size)) {
    void* p = hp::g_real.malloc(size);
    if (__builtin_expect(p != nullptr, 1)) return p;
    return hp::FastAllocFailed(size, 0, Api::kMalloc);
  }
  return MallocGeneric(size);
}

HEAPSIGHT_EXPORT HEAPSIGHT_FAST_HOOK void free(void* p) {
  if (hp::UnsampledFreeFast(p)) return hp::g_real.free(p);
  FreeGeneric(p);
}

HEAPSIGHT_EXPORT HEAPSIGHT_FAST_HOOK void* calloc(size_t n, size_t size) {
  if (hp::UnsampledFast(SaturatingMul(n, size))) {
    void* p = hp::g_real.calloc(n, size);
    if (__builtin_expect(p != nullptr, 1)) return p;
    return hp::FastAllocFailed(SaturatingMul(n, size), 0, Api::kCalloc);
  }
  return CallocGeneric(n, size);
}

HEAPSIGHT_EXPORT HEAPSIGHT_FAST_HOOK void* realloc(void* p, size_t size) {
  // An unsampled block (or NULL) becomes an unsampled one. The filter test
  // first: a sampled old block must reach the generic path uncounted.
  if (hp::UnsampledFreeFast(p) && hp::UnsampledFast(size)) {
    void* q = hp::g_real.realloc(p, size);
    // NULL for size 0: glibc freed the block, as the generic path finds.
    if (__builtin_expect(q != nullptr || size == 0, 1)) return q;
    // Failed, the old block untouched.
    return hp::FastReallocFailed(size, Api::kRealloc);
  }
  return ReallocGeneric(p, size);
}

HEAPSIGHT_EXPORT void* reallocarray(void* p, size_t n, size_t size) {
  // As realloc; an overflow (ENOMEM) takes the generic path.
  size_t total;
  if (!__builtin_mul_overflow(n, size, &total) && hp::UnsampledFreeFast(p) &&
      hp::UnsampledFast(total)) {
    void* q = hp::g_real.realloc(p, total);
    if (__builtin_expect(q != nullptr || total == 0, 1)) return q;
    return hp::FastReallocFailed(total, Api::kReallocArray);
  }
  return ReallocarrayGeneric(p, n, size);
}

HEAPSIGHT_EXPORT int posix_memalign(void** out, size_t alignment, size_t size) {
  if (hp::UnsampledFast(size)) {
    int rc = hp::g_real.posix_memalign(out, alignment, size);
    if (__builtin_expect(rc == 0, 1)) return rc;
    hp::FastAllocFailed(size, alignment, Api::kPosixMemalign);
    return rc;
  }
  return PosixMemalignGeneric(out, alignment, size);
}

HEAPSIGHT_EXPORT void* aligned_alloc(size_t alignment, size_t size) {
  if (hp::UnsampledFast(size)) {
    void* p = hp::g_real.aligned_alloc(alignment, size);
    if (__builtin_expect(p != nullptr, 1)) return p;
    return hp::FastAllocFailed(size, alignment, Api::kAlignedAlloc);
  }
  return AlignedAllocGeneric(alignment, size);
}

HEAPSIGHT_EXPORT void* memalign(size_t alignment, size_t size) {
  if (hp::UnsampledFast(size)) {
    void* p = hp::g_real.memalign(alignment, size);
    if (__builtin_expect(p != nullptr, 1)) return p;
    return hp::FastAllocFailed(size, alignment, Api::kMemalign);
  }
  return MemalignGeneric(alignment, size);
}

HEAPSIGHT_EXPORT void* valloc(size_t size) {
  if (hp::UnsampledFast(size)) {
    void* p = hp::g_real.valloc(size);
    if (__builtin_expect(p != nullptr, 1)) return p;
    return hp::FastAllocFailed(size, static_cast<size_t>(getpagesize()), Api::kValloc);
  }
  return VallocGeneric(size);
}

HEAPSIGHT_EXPORT void* pvalloc(size_t size) {
  if (hp::UnsampledFast(size)) {
    void* p = hp::g_real.pvalloc(size);
    if (__builtin_expect(p != nullptr, 1)) return p;
    return hp::FastAllocFailed(size, static_cast<size_t>(getpagesize()), Api::kPvalloc);
  }
  return PvallocGeneric(size);
}

HEAPSIGHT_EXPORT void free_sized(void* p, size_t size) {
  if (hp::UnsampledFreeFast(p)) return hp::g_real.free(p);
  FreeSizedGeneric(p, size);
}

HEAPSIGHT_EXPORT void free_aligned_sized(void* p, size_t alignment, size_t size) {
  if (hp::UnsampledFreeFast(p)) return hp::g_real.free(p);
  FreeAlignedSizedGeneric(p, alignment, size);
}
