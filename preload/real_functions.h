// preload/real_functions.h: the next definitions of every function we hook,
// found with dlsym(RTLD_NEXT), and the bootstrap arena serving dlsym itself.
//
// Constraints: EnsureRealFunctions() may run on any thread at the first hook
// call, possibly before constructors; dlsym allocates (calloc) while it runs,
// and those calls are served from a static bootstrap arena that is never
// freed (free() of an arena pointer is ignored). No other allocation.
#ifndef HEAPSIGHT_PRELOAD_REAL_FUNCTIONS_H_
#define HEAPSIGHT_PRELOAD_REAL_FUNCTIONS_H_

#include <sys/types.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace heapsight::preload {

struct RealFunctions {
  void* (*malloc)(size_t);
  void (*free)(void*);
  void* (*calloc)(size_t, size_t);
  void* (*realloc)(void*, size_t);
  int (*posix_memalign)(void**, size_t, size_t);
  void* (*aligned_alloc)(size_t, size_t);
  void* (*memalign)(size_t, size_t);
  void* (*valloc)(size_t);
  void* (*pvalloc)(size_t);
  void* (*dlopen)(const char*, int);
  int (*dlclose)(void*);
  pid_t (*fork)();
  int (*execve)(const char*, char* const[], char* const[]);
  int (*execvpe)(const char*, char* const[], char* const[]);
  int (*fexecve)(int, char* const[], char* const[]);
  void (*exit)(int);
  void (*_exit)(int);
  void (*_Exit)(int);
  void (*quick_exit)(int);
  int (*libc_start_main)(int (*)(int, char**, char**), int, char**, void (*)(), void (*)(),
                         void (*)(), void*);
};

// Hidden (as -fvisibility=hidden makes the definition): the hooks then
// reach it PC-relative, not through the GOT (one load fewer per call).
extern __attribute__((visibility("hidden"))) RealFunctions g_real;

// 0 = not resolved, 1 = resolving, 2 = resolved (real_functions.cc).
extern std::atomic<int> g_real_state;
bool EnsureRealFunctionsSlow();

// True once g_real is filled in. One load after the first call (inlined
// into every hook). Returns false while this thread is itself inside dlsym
// (the caller must then use the bootstrap arena).
inline bool EnsureRealFunctions() {
  if (__builtin_expect(g_real_state.load(std::memory_order_acquire) == 2, 1)) return true;
  return EnsureRealFunctionsSlow();
}

// The file name of the allocator in front of us (another LD_PRELOAD library
// before libheapsight.so, or "the program" for an executable with its own
// malloc), or nullptr. With one, g_real's allocation functions are its own
// and tracing must stay off: the program's malloc never reaches us.
const char* ForeignAllocator();

// Bootstrap arena used while resolving. Never returns nullptr for sane sizes.
void* BootstrapAlloc(size_t size, size_t alignment);
bool IsBootstrapPointer(const void* p);
// The same test, inlined, for the free hooks' fast path.
inline constexpr size_t kBootstrapBytes = 256 * 1024;
extern char g_bootstrap[kBootstrapBytes];
inline bool InBootstrapArena(const void* p) {
  return reinterpret_cast<uintptr_t>(p) - reinterpret_cast<uintptr_t>(g_bootstrap) <
         kBootstrapBytes;
}
// Usable size of a bootstrap block (for realloc of one).
size_t BootstrapSize(const void* p);
// Bytes of the arena handed out so far, every block below g_bootstrap +
// this. Final once EnsureRealFunctions() returned true (only the resolving
// thread allocates there, before it publishes the functions).
size_t BootstrapBytesUsed();

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_REAL_FUNCTIONS_H_
