// preload/real_functions.cc: see real_functions.h.
//
// Constraints: no allocation except what dlsym does, which lands in the
// bootstrap arena through our calloc/malloc hooks (they check
// EnsureRealFunctions() first). Lock-free: the first thread resolves, others
// that race with it wait on an atomic.
#include "preload/real_functions.h"

#include <dlfcn.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

namespace heapsight::preload {

RealFunctions g_real;

namespace {

constexpr size_t kBootstrapBytes = 256 * 1024;
alignas(64) char g_bootstrap[kBootstrapBytes];
std::atomic<size_t> g_bootstrap_used{0};

// 0 = not resolved, 1 = resolving, 2 = resolved.
std::atomic<int> g_state{0};
thread_local bool t_resolving __attribute__((tls_model("initial-exec"))) = false;

template <typename T>
void Resolve(T* slot, const char* name) {
  *slot = reinterpret_cast<T>(dlsym(RTLD_NEXT, name));
}

}  // namespace

void* BootstrapAlloc(size_t size, size_t alignment) {
  if (alignment < 16) alignment = 16;
  size_t header = 16;
  for (;;) {
    size_t used = g_bootstrap_used.load(std::memory_order_relaxed);
    uintptr_t base = reinterpret_cast<uintptr_t>(g_bootstrap);
    uintptr_t start = (base + used + header + alignment - 1) & ~(uintptr_t{alignment} - 1);
    size_t end = start - base + size;
    if (end > kBootstrapBytes || size > kBootstrapBytes) return nullptr;
    if (g_bootstrap_used.compare_exchange_weak(used, end)) {
      size_t* size_slot = reinterpret_cast<size_t*>(start - sizeof(size_t));
      *size_slot = size;
      std::memset(reinterpret_cast<void*>(start), 0, size);
      return reinterpret_cast<void*>(start);
    }
  }
}

bool IsBootstrapPointer(const void* p) {
  auto a = reinterpret_cast<uintptr_t>(p);
  auto base = reinterpret_cast<uintptr_t>(g_bootstrap);
  return a >= base && a < base + kBootstrapBytes;
}

size_t BootstrapSize(const void* p) {
  return *reinterpret_cast<const size_t*>(reinterpret_cast<uintptr_t>(p) - sizeof(size_t));
}

bool EnsureRealFunctions() {
  int state = g_state.load(std::memory_order_acquire);
  if (__builtin_expect(state == 2, 1)) return true;
  if (t_resolving) return false;
  int expected = 0;
  if (g_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    t_resolving = true;
    Resolve(&g_real.malloc, "malloc");
    Resolve(&g_real.free, "free");
    Resolve(&g_real.calloc, "calloc");
    Resolve(&g_real.realloc, "realloc");
    Resolve(&g_real.posix_memalign, "posix_memalign");
    Resolve(&g_real.aligned_alloc, "aligned_alloc");
    Resolve(&g_real.memalign, "memalign");
    Resolve(&g_real.valloc, "valloc");
    Resolve(&g_real.pvalloc, "pvalloc");
    Resolve(&g_real.dlopen, "dlopen");
    Resolve(&g_real.dlclose, "dlclose");
    Resolve(&g_real.fork, "fork");
    Resolve(&g_real.execve, "execve");
    Resolve(&g_real.execvpe, "execvpe");
    Resolve(&g_real.fexecve, "fexecve");
    Resolve(&g_real.exit, "exit");
    Resolve(&g_real._exit, "_exit");
    Resolve(&g_real._Exit, "_Exit");
    Resolve(&g_real.quick_exit, "quick_exit");
    Resolve(&g_real.libc_start_main, "__libc_start_main");
    t_resolving = false;
    g_state.store(2, std::memory_order_release);
    return true;
  }
  // Another thread is resolving: wait for it (only at process start).
  while (g_state.load(std::memory_order_acquire) != 2) sched_yield();
  return true;
}

}  // namespace heapsight::preload
