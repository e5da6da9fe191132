// preload/raw_log.cc: see raw_log.h.
//
// Constraints: no allocation, no stdio, no locks; async-signal-safe.
#include "preload/raw_log.h"

#include <errno.h>
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

void RawLog(const RawBuffer& message) {
  char out[600];
  size_t n = 0;
  for (const char* p = "heapsight: "; *p != '\0'; ++p) out[n++] = *p;
  for (size_t i = 0; i < message.size() && n < sizeof out - 1; ++i) out[n++] = message.data()[i];
  out[n++] = '\n';
  int saved = errno;
  ssize_t r;
  do {
    r = write(2, out, n);
  } while (r < 0 && errno == EINTR);
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
