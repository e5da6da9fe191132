// preload/raw_log.h: a tiny non-allocating logger for the preload.
//
// Constraints: no allocation, no stdio, no locks; async-signal-safe. Writes
// one message with one write(2) to fd 2 from a fixed stack buffer.
#ifndef HEAPSIGHT_PRELOAD_RAW_LOG_H_
#define HEAPSIGHT_PRELOAD_RAW_LOG_H_

#include <cstddef>
#include <cstdint>

#include <sys/types.h>

namespace heapsight::preload {

// A fixed-capacity text builder on the stack. Silently truncates.
class RawBuffer {
 public:
  RawBuffer& Str(const char* s);
  RawBuffer& Num(int64_t v);
  RawBuffer& Hex(uint64_t v);
  const char* data() const { return buf_; }
  size_t size() const { return len_; }

 private:
  char buf_[512];
  size_t len_ = 0;
};

// write(2) of `size` bytes (retried on EINTR) that never raises SIGPIPE or
// SIGXFSZ in the host: see raw_log.cc. Returns write's result, errno set as
// write set it.
ssize_t WriteNoSignal(int fd, const void* data, size_t size);

// Writes "heapsight: <message>\n" to stderr; never raises SIGPIPE.
void RawLog(const RawBuffer& message);

// A short description of an errno value ("No such file or directory"),
// without strerror (which may allocate for unknown values).
const char* ErrnoName(int err);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_RAW_LOG_H_
