// preload/raw_syscall.h: a system call without libc.
//
// glibc's syscall(2) wrapper stores the error in errno, a thread-local of
// libc's, and its own wrappers may consult the thread descriptor
// (cancellation). The service task (service_task.h) is a thread glibc does
// not know about, so its own loop calls the kernel directly: the result is
// the kernel's (-errno on failure), nothing is stored anywhere.
//
// Constraints: header-only, no allocation, no locks, no TLS;
// async-signal-safe. x86-64 Linux only (as the whole preload).
#ifndef HEAPSIGHT_PRELOAD_RAW_SYSCALL_H_
#define HEAPSIGHT_PRELOAD_RAW_SYSCALL_H_

namespace heapsight::preload {

// Returns the kernel's result: >= 0, or -errno.
inline long RawSyscall(long number, long a1 = 0, long a2 = 0, long a3 = 0, long a4 = 0,
                       long a5 = 0, long a6 = 0) {
  long ret;
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(number), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_RAW_SYSCALL_H_
