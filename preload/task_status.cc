// preload/task_status.cc: see task_status.h.
//
// Constraints: no malloc, no locks; open/read/close into stack buffers.
#include "preload/task_status.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>

namespace heapsight::preload {
namespace {

// Reads the whole file (up to size - 1 bytes) NUL-terminated; the length or -1.
ssize_t ReadSmallFile(const char* path, char* buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return -1;
  size_t used = 0;
  while (used + 1 < size) {
    ssize_t n = read(fd, buf + used, size - 1 - used);
    if (n <= 0) break;
    used += static_cast<size_t>(n);
  }
  close(fd);
  buf[used] = '\0';
  return static_cast<ssize_t>(used);
}

// The text after "\n<key>" (key includes its colon), blanks skipped, or null.
const char* FindField(const char* text, const char* key) {
  size_t key_len = std::strlen(key);
  for (const char* line = text; line != nullptr && *line != '\0';) {
    if (std::strncmp(line, key, key_len) == 0) {
      const char* p = line + key_len;
      while (*p == ' ' || *p == '\t') ++p;
      return p;
    }
    line = std::strchr(line, '\n');
    if (line != nullptr) ++line;
  }
  return nullptr;
}

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

void TaskFilePath(pid_t tid, const char* leaf, char* path, size_t size) {
  char out[64] = "/proc/self/task/";
  size_t len = std::strlen(out);
  char digits[16];
  int nd = 0;
  for (pid_t t = tid; t > 0 && nd < 15; t /= 10) digits[nd++] = static_cast<char>('0' + t % 10);
  while (nd > 0) out[len++] = digits[--nd];
  out[len++] = '/';
  for (const char* c = leaf; *c != '\0' && len + 1 < sizeof out; ++c) out[len++] = *c;
  out[len] = '\0';
  size_t n = len + 1 < size ? len + 1 : size;
  std::memcpy(path, out, n);
  if (n > 0) path[n - 1] = '\0';
}

bool ReadTaskStatus(pid_t tid, TaskStatus* out) {
  char path[64];
  TaskFilePath(tid, "status", path, sizeof path);
  // About 1.4 KiB on Linux 6.x; SigBlk is in its second half.
  char buf[4096];
  if (ReadSmallFile(path, buf, sizeof buf) <= 0) return false;
  const char* state = FindField(buf, "State:");
  const char* blocked = FindField(buf, "SigBlk:");
  if (state == nullptr || blocked == nullptr || *state == '\0') return false;
  uint64_t mask = 0;
  int digits = 0;
  for (int d; (d = HexDigit(*blocked)) >= 0; ++blocked, ++digits) {
    mask = (mask << 4) | static_cast<uint64_t>(d);
  }
  if (digits == 0) return false;
  out->state = *state;
  out->blocked = mask;
  return true;
}

bool ReadTaskSyscall(pid_t tid, TaskSyscall* out) {
  char path[64];
  TaskFilePath(tid, "syscall", path, sizeof path);
  char buf[256];
  if (ReadSmallFile(path, buf, sizeof buf) <= 0) return false;
  uintptr_t fields[10];
  int count = 0;
  for (const char* p = buf; *p != '\0' && count < 10;) {
    while (*p == ' ' || *p == '\n') ++p;
    if (*p == '\0') break;
    if (*p == '-' || (*p >= 'a' && *p <= 'z' && *p != 'x')) return false;  // "running", -1
    uintptr_t v = 0;
    if (p[0] == '0' && p[1] == 'x') {
      p += 2;
      for (int d; (d = HexDigit(*p)) >= 0; ++p) v = v * 16 + static_cast<uintptr_t>(d);
    } else {
      for (; *p >= '0' && *p <= '9'; ++p) v = v * 10 + static_cast<uintptr_t>(*p - '0');
    }
    fields[count++] = v;
    while (*p != '\0' && *p != ' ' && *p != '\n') ++p;
  }
  if (count < 9) return false;
  out->number = static_cast<long>(fields[0]);
  out->sp = fields[count - 2];
  return true;
}

}  // namespace heapsight::preload
