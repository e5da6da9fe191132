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

ssize_t WriteNoSigpipe(int fd, const void* data, size_t size) {
  // A write to a pipe whose reader is gone raises SIGPIPE, whose default
  // action kills the host (`prog 2>&1 | head -0`). So SIGPIPE is blocked for
  // this thread around the write; if the write failed with EPIPE and no
  // SIGPIPE was pending before it, the one it generated is taken back with a
  // zero-timeout sigtimedwait before the mask is restored. A SIGPIPE that was
  // already pending (the program's own) stays pending: one signal of a kind
  // is pending at most, ours merged into it. All raw syscalls, no malloc.
  sigset_t pipe_only, old_mask, pending;
  sigemptyset(&pipe_only);
  sigaddset(&pipe_only, SIGPIPE);
  bool masked = pthread_sigmask(SIG_BLOCK, &pipe_only, &old_mask) == 0;
  bool was_pending = false;
  if (masked && sigpending(&pending) == 0) was_pending = sigismember(&pending, SIGPIPE) == 1;
  ssize_t r;
  do {
    r = write(fd, data, size);
  } while (r < 0 && errno == EINTR);
  int err = r < 0 ? errno : 0;
  if (masked) {
    if (err == EPIPE && !was_pending) {
      const timespec zero{0, 0};
      while (sigtimedwait(&pipe_only, nullptr, &zero) < 0 && errno == EINTR) {
      }
    }
    pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  }
  errno = err;
  return r;
}

void RawLog(const RawBuffer& message) {
  char out[600];
  size_t n = 0;
  for (const char* p = "heapsight: "; *p != '\0'; ++p) out[n++] = *p;
  for (size_t i = 0; i < message.size() && n < sizeof out - 1; ++i) out[n++] = message.data()[i];
  out[n++] = '\n';
  int saved = errno;
  WriteNoSigpipe(2, out, n);
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
