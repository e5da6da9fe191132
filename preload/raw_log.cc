// preload/raw_log.cc: see raw_log.h.
//
// Constraints: no allocation, no stdio, no locks; async-signal-safe.
#include "preload/raw_log.h"

#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

namespace heapsight::preload {

RawBuffer& RawBuffer::Str(const char* s) {
  while (s != nullptr && *s != '\0' && len_ < sizeof buf_ - 1) buf_[len_++] = *s++;
  return *this;
}

RawBuffer& RawBuffer::Num(int64_t v) {
  char tmp[24];
  int n = 0;
  uint64_t u = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  do {
    tmp[n++] = static_cast<char>('0' + u % 10);
    u /= 10;
  } while (u != 0);
  if (v < 0) tmp[n++] = '-';
  while (n > 0 && len_ < sizeof buf_ - 1) buf_[len_++] = tmp[--n];
  return *this;
}

RawBuffer& RawBuffer::Hex(uint64_t v) {
  char tmp[20];
  int n = 0;
  do {
    tmp[n++] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  Str("0x");
  while (n > 0 && len_ < sizeof buf_ - 1) buf_[len_++] = tmp[--n];
  return *this;
}

ssize_t WriteNoSignal(int fd, const void* data, size_t size) {
  // A write to a pipe whose reader is gone raises SIGPIPE, one past
  // RLIMIT_FSIZE raises SIGXFSZ; their default action kills the host (`prog
  // 2>&1 | head -0`, `ulimit -f`). So both are blocked for this thread
  // around the write; if it failed with EPIPE or EFBIG and that signal was
  // not pending before, the one it generated is taken back with a
  // zero-timeout sigtimedwait before the mask is restored. A signal that was
  // already pending (the program's own) stays pending: one signal of a kind
  // is pending at most, ours merged into it. Raw syscalls only, no malloc.
  int saved_errno = errno;
  sigset_t ours, old_mask, pending;
  sigemptyset(&ours);
  sigaddset(&ours, SIGPIPE);
  sigaddset(&ours, SIGXFSZ);
  bool masked = pthread_sigmask(SIG_BLOCK, &ours, &old_mask) == 0;
  if (masked && sigpending(&pending) != 0) sigemptyset(&pending);
  ssize_t r;
  do {
    r = write(fd, data, size);
  } while (r < 0 && errno == EINTR);
  int err = r < 0 ? errno : 0;
  if (masked) {
    int generated = err == EPIPE ? SIGPIPE : err == EFBIG ? SIGXFSZ : 0;
    if (generated != 0 && sigismember(&pending, generated) != 1) {
      sigset_t one;
      sigemptyset(&one);
      sigaddset(&one, generated);
      const timespec zero{0, 0};
      while (sigtimedwait(&one, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  }
  errno = r < 0 ? err : saved_errno;  // as write(2) alone would leave it
  return r;
}

void RawLog(const RawBuffer& message) {
  char out[600];
  size_t n = 0;
  for (const char* p = "heapsight: "; *p != '\0'; ++p) out[n++] = *p;
  for (size_t i = 0; i < message.size() && n < sizeof out - 1; ++i) out[n++] = message.data()[i];
  out[n++] = '\n';
  int saved = errno;
  WriteNoSignal(2, out, n);
  errno = saved;
}

const char* ErrnoName(int err) {
  switch (err) {
    case ENOENT: return "No such file or directory";
    case EACCES: return "Permission denied";
    case EPERM: return "Operation not permitted";
    case EEXIST: return "File exists";
    case ENOSPC: return "No space left on device";
    case EDQUOT: return "Disk quota exceeded";
    case EROFS: return "Read-only file system";
    case ENOTDIR: return "Not a directory";
    case EISDIR: return "Is a directory";
    case ELOOP: return "Too many levels of symbolic links";
    case ENAMETOOLONG: return "File name too long";
    case EMFILE: return "Too many open files";
    case ENFILE: return "Too many open files in system";
    case EIO: return "Input/output error";
    case EFBIG: return "File too large";
    case EBADF: return "Bad file descriptor";
    case ENOMEM: return "Cannot allocate memory";
    default: return "error";
  }
}

}  // namespace heapsight::preload
