// preload/cxx_runtime.cc: see cxx_runtime.h.
//
// Constraints: failure paths only; no allocation of ours (the loader may
// allocate inside dlopen/dlsym, through our hooks, which record it as the
// program's failing call's neighbours would be); the loader lock while
// resolving; lock-free afterwards.
#include "preload/cxx_runtime.h"

#include <dlfcn.h>
#include <link.h>
#include <stdlib.h>

#include <atomic>
#include <cstring>

#include "preload/fork_gate.h"
#include "preload/raw_log.h"
#include "preload/real_functions.h"

namespace heapsight::preload {
namespace {

struct Runtime {
  std::new_handler (*get_new_handler)() = nullptr;
  void (*throw_bad_alloc)() = nullptr;
  NothrowNew nothrow_new = nullptr;
  NothrowNewAligned nothrow_new_aligned = nullptr;
};

// Written once, by the thread that wins g_state's 0 -> 1; published by
// g_state == 2. Threads that lose the race resolve for themselves.
Runtime g_runtime;
std::atomic<int> g_state{0};

bool IsRuntimeName(const char* path) {
  const char* base = std::strrchr(path, '/');
  base = base != nullptr ? base + 1 : path;
  return std::strncmp(base, "libstdc++.so", 12) == 0 || std::strncmp(base, "libc++.so", 9) == 0;
}

int FindRuntimePath(dl_phdr_info* info, size_t, void* arg) {
  if (info->dlpi_name == nullptr || !IsRuntimeName(info->dlpi_name)) return 0;
  *static_cast<const char**>(arg) = info->dlpi_name;
  return 1;
}

template <typename T>
void Lookup(void* handle, const char* name, T* slot) {
  *slot = reinterpret_cast<T>(dlsym(handle, name));
}

// The loaded C++ runtime's pieces (all nullptr if none is loaded yet).
Runtime Resolve() {
  if (g_state.load(std::memory_order_acquire) == 2) return g_runtime;
  Runtime r;
  if (!EnsureRealFunctions() || g_real.dlopen == nullptr) return r;
  const char* path = nullptr;
  GatedIteratePhdr(FindRuntimePath, &path);  // fork_gate.h
  if (path == nullptr) return r;  // not loaded (yet): asked again next time
  // RTLD_NOLOAD: a handle to the library already loaded (even RTLD_LOCAL),
  // never a load. It holds a reference for good, so the pointers below stay
  // valid. Through g_real: our dlopen hook would mark the modules dirty.
  void* handle = g_real.dlopen(path, RTLD_LAZY | RTLD_NOLOAD);
  if (handle == nullptr) return r;
  Lookup(handle, "_ZSt15get_new_handlerv", &r.get_new_handler);
  Lookup(handle, "_ZSt17__throw_bad_allocv", &r.throw_bad_alloc);
  Lookup(handle, "_ZnwmRKSt9nothrow_t", &r.nothrow_new);
  Lookup(handle, "_ZnwmSt11align_val_tRKSt9nothrow_t", &r.nothrow_new_aligned);
  int expected = 0;
  if (g_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    g_runtime = r;
    g_state.store(2, std::memory_order_release);
  }
  return r;
}

}  // namespace

std::new_handler HostNewHandler() {
  Runtime r = Resolve();
  return r.get_new_handler != nullptr ? r.get_new_handler() : nullptr;
}

void ThrowBadAlloc() {
  Runtime r = Resolve();
  if (r.throw_bad_alloc != nullptr) r.throw_bad_alloc();
  RawBuffer b;
  b.Str("operator new failed and no C++ runtime is loaded to throw std::bad_alloc; aborting");
  RawLog(b);
  abort();
}

NothrowNew HostNothrowNew() {
  return Resolve().nothrow_new;
}

NothrowNewAligned HostNothrowNewAligned() {
  return Resolve().nothrow_new_aligned;
}

}  // namespace heapsight::preload
