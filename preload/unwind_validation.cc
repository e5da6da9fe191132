// preload/unwind_validation.cc: see unwind_validation.h.
//
// Constraints: no allocation, no locks of ours; the replacement functions
// are async-signal-safe (libunwind may unwind in a signal handler of the
// program) and are not cancellation points (pipe2/read/close/write would
// have been).
#include "preload/unwind_validation.h"

#include <errno.h>
#include <stdarg.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>

namespace heapsight::preload {
namespace {

// Numbers no fd can have (fds are non-negative) and that libunwind's
// "is the pipe open" test (fd != -1) takes for open ones.
constexpr int kReadEnd = -4242;
constexpr int kWriteEnd = -4243;

// process_vm_readv works (it may be refused by a seccomp filter; then the
// mincore/msync check libunwind made first is all the validation left, as
// for any mapped page).
std::atomic<bool> g_vm_readv_ok{true};

int PipeHook(int fds[2], int) {
  fds[0] = kReadEnd;
  fds[1] = kWriteEnd;
  return 0;
}

// libunwind reads one byte to drain the pipe and loops while errno is
// EINTR: an empty non-blocking pipe (-1, EAGAIN) is what it expects.
ssize_t ReadHook(int fd, void* buf, size_t n) {
  if (fd == kReadEnd) {
    errno = EAGAIN;
    return -1;
  }
  return read(fd, buf, n);
}

int CloseHook(int fd) {
  if (fd == kReadEnd || fd == kWriteEnd) return 0;
  return close(fd);
}

// True if the byte at `address` can be read.
bool Readable(uintptr_t address) {
  if (!g_vm_readv_ok.load(std::memory_order_relaxed)) return true;
  char byte;
  iovec local = {&byte, 1};
  iovec remote = {reinterpret_cast<void*>(address), 1};
  // getpid() each time: a fork child must read its own memory.
  ssize_t n = process_vm_readv(getpid(), &local, 1, &remote, 1, 0);
  if (n == 1) return true;
  if (errno == EFAULT) return false;
  g_vm_readv_ok.store(false, std::memory_order_relaxed);  // ENOSYS, EPERM: unusable
  return true;
}

// syscall(2) is variadic; x86-64 passes up to six register arguments, and
// reading six from the va_list is what glibc's own syscall() does.
long SyscallHook(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a[6];
  for (long& v : a) v = va_arg(ap, long);
  va_end(ap);
  // The fd was passed as an int: only the low 32 bits of its slot are set
  // (as the kernel reads it).
  if (number == SYS_write && static_cast<int>(a[0]) == kWriteEnd) {
    // libunwind loops while errno is EINTR, also after a success.
    if (Readable(static_cast<uintptr_t>(a[1]))) {
      if (errno == EINTR) errno = EAGAIN;
      return 1;
    }
    errno = EFAULT;
    return -1;
  }
  return syscall(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

// A libunwind built without <sys/syscall.h> writes with write(2) instead.
ssize_t WriteHook(int fd, const void* buf, size_t n) {
  if (fd == kWriteEnd) {
    if (Readable(reinterpret_cast<uintptr_t>(buf))) {
      if (errno == EINTR) errno = EAGAIN;
      return 1;
    }
    errno = EFAULT;
    return -1;
  }
  return write(fd, buf, n);
}

struct Redirect {
  const char* name;
  void* to;
};
const Redirect kRedirects[] = {
    {"pipe2", reinterpret_cast<void*>(&PipeHook)},
    {"read", reinterpret_cast<void*>(&ReadHook)},
    {"close", reinterpret_cast<void*>(&CloseHook)},
    {"syscall", reinterpret_cast<void*>(&SyscallHook)},
    {"write", reinterpret_cast<void*>(&WriteHook)},
};

}  // namespace

void* UnwindValidationFunction(const char* name) {
  for (const Redirect& r : kRedirects) {
    if (std::strcmp(name, r.name) == 0) return r.to;
  }
  return nullptr;
}

}  // namespace heapsight::preload
