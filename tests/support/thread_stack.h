// tests/support/thread_stack.h: the calling thread's stack bounds, for
// tests that check what a leak scan or a thread capture read of a thread.
#ifndef HEAPSIGHT_TESTS_SUPPORT_THREAD_STACK_H_
#define HEAPSIGHT_TESTS_SUPPORT_THREAD_STACK_H_

#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace heapsight::testing {

// Stores the calling thread's stack [lo, hi) (pthread_getattr_np).
inline void StoreCurrentThreadStack(std::atomic<uintptr_t>* lo, std::atomic<uintptr_t>* hi) {
  pthread_attr_t attr;
  pthread_getattr_np(pthread_self(), &attr);
  void* addr = nullptr;
  size_t size = 0;
  pthread_attr_getstack(&attr, &addr, &size);
  pthread_attr_destroy(&attr);
  *lo = reinterpret_cast<uintptr_t>(addr);
  *hi = reinterpret_cast<uintptr_t>(addr) + size;
}

}  // namespace heapsight::testing

#endif  // HEAPSIGHT_TESTS_SUPPORT_THREAD_STACK_H_
