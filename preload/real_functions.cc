// preload/real_functions.cc: see real_functions.h.
//
// Constraints: no allocation except what dlsym does, which lands in the
// bootstrap arena through our calloc/malloc hooks (they check
// EnsureRealFunctions() first). Lock-free: the first thread resolves, others
// that race with it wait on an atomic.
#include "preload/real_functions.h"

#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace heapsight::preload {

RealFunctions g_real;
alignas(64) char g_bootstrap[kBootstrapBytes];
// 0 = not resolved, 1 = resolving, 2 = resolved.
std::atomic<int> g_real_state{0};

namespace {

std::atomic<size_t> g_bootstrap_used{0};
thread_local bool t_resolving __attribute__((tls_model("initial-exec"))) = false;

template <typename T>
void Resolve(T* slot, const char* name) {
  *slot = reinterpret_cast<T>(dlsym(RTLD_NEXT, name));
}

char g_foreign_allocator[256];

// True if `p` is a symbol's definition, not a non-PIE executable's
// canonical PLT entry for a function defined elsewhere (an undefined
// symbol with the PLT slot's address as value, which dlsym returns when the
// executable takes the function's address: python3 does).
bool IsDefinition(void* p) {
  Dl_info info;
  void* entry = nullptr;
  if (dladdr1(p, &info, &entry, RTLD_DL_SYMENT) == 0 || entry == nullptr) return false;
  return static_cast<const ElfW(Sym)*>(entry)->st_shndx != SHN_UNDEF;
}

// True if `p` is code of libheapsight.so itself.
bool IsOurs(void* p) {
  Dl_info ours, theirs;
  return dladdr(reinterpret_cast<void*>(&EnsureRealFunctions), &ours) != 0 &&
         dladdr(p, &theirs) != 0 && theirs.dli_fbase == ours.dli_fbase;
}

// Another allocator in front of us (LD_PRELOAD="libjemalloc.so.2
// libheapsight.so", or an executable with its own malloc): the program's
// malloc/free never reach our hooks, but the functions it lacks (pvalloc,
// reallocarray, operator new...) and our own calls would, and RTLD_NEXT
// would hand its blocks to glibc: a crash. Detected before any real
// allocation, so every block ever handed out comes from the front allocator:
// each function is then the program's own definition (RTLD_DEFAULT) where
// it has one, else the next one as before. Tracing is disabled
// (ForeignAllocator()) with one warning.
void DetectForeignAllocator() {
  void* front = dlsym(RTLD_DEFAULT, "malloc");
  if (front == nullptr || IsOurs(front) || !IsDefinition(front)) return;
  Dl_info info;
  const char* name = dladdr(front, &info) != 0 && info.dli_fname != nullptr && *info.dli_fname
                         ? info.dli_fname
                         : "the program";
  const char* base = std::strrchr(name, '/');
  std::strncpy(g_foreign_allocator, base != nullptr ? base + 1 : name,
               sizeof g_foreign_allocator - 1);
  auto front_of = [](auto* slot, const char* fn) {
    void* p = dlsym(RTLD_DEFAULT, fn);
    if (p != nullptr && !IsOurs(p) && IsDefinition(p)) *slot = reinterpret_cast<std::remove_reference_t<decltype(*slot)>>(p);
  };
  front_of(&g_real.malloc, "malloc");
  front_of(&g_real.free, "free");
  front_of(&g_real.calloc, "calloc");
  front_of(&g_real.realloc, "realloc");
  front_of(&g_real.posix_memalign, "posix_memalign");
  front_of(&g_real.aligned_alloc, "aligned_alloc");
  front_of(&g_real.memalign, "memalign");
  front_of(&g_real.valloc, "valloc");
  front_of(&g_real.pvalloc, "pvalloc");
}

}  // namespace

const char* ForeignAllocator() {
  return g_foreign_allocator[0] != '\0' ? g_foreign_allocator : nullptr;
}

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

bool IsBootstrapPointer(const void* p) { return InBootstrapArena(p); }

size_t BootstrapBytesUsed() { return g_bootstrap_used.load(std::memory_order_acquire); }

size_t BootstrapSize(const void* p) {
  return *reinterpret_cast<const size_t*>(reinterpret_cast<uintptr_t>(p) - sizeof(size_t));
}

bool EnsureRealFunctionsSlow() {
  int state = g_real_state.load(std::memory_order_acquire);
  if (state == 2) return true;
  if (t_resolving) return false;
  int expected = 0;
  if (g_real_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) {
    t_resolving = true;
    int saved_errno = errno;  // dlsym may change errno; the hook's caller must not see it
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
    DetectForeignAllocator();
    errno = saved_errno;
    t_resolving = false;
    g_real_state.store(2, std::memory_order_release);
    return true;
  }
  // Another thread is resolving: wait for it (only at process start).
  while (g_real_state.load(std::memory_order_acquire) != 2) sched_yield();
  return true;
}

}  // namespace heapsight::preload
