// preload/unwinder.cc: see unwinder.h.
//
// Constraints: no malloc anywhere (stack bounds come from /proc/self/maps,
// read raw; pthread_getattr_np would allocate).
#define UNW_LOCAL_ONLY
#include "preload/unwinder.h"

#include "preload/host_guards.h"

#include <fcntl.h>
#include <pthread.h>
#include <libunwind.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

extern "C" void* __libc_stack_end;  // glibc's (ld.so), the main stack's top at start

namespace heapsight::preload {

uintptr_t g_self_begin = 0;
uintptr_t g_self_end = 0;
constinit thread_local uintptr_t t_stack_low __attribute__((tls_model("initial-exec"))) = 0;
constinit thread_local uintptr_t t_stack_high __attribute__((tls_model("initial-exec"))) = 0;
constinit thread_local uint32_t t_stepped_unwinds __attribute__((tls_model("initial-exec"))) = 0;

__attribute__((noinline)) size_t SteppedBacktrace(uintptr_t* buf, size_t want) {
  unw_context_t context;
  unw_cursor_t cursor;
  if (unw_getcontext(&context) != 0 || unw_init_local(&cursor, &context) != 0) return 0;
  size_t n = 0;
  // Step first: the context is this function's, whose frame unw_backtrace's
  // equivalent (its own) does not report either.
  while (n < want && unw_step(&cursor) > 0) {
    unw_word_t ip;
    if (unw_get_reg(&cursor, UNW_REG_IP, &ip) < 0) break;
    buf[n++] = static_cast<uintptr_t>(ip);
  }
  return n;
}

namespace {
// Set once InitThreadStackBounds has tried (it may fail: no fd left).
thread_local bool t_stack_bounds_tried __attribute__((tls_model("initial-exec"))) = false;
// The main thread's stack grows: how many more times GrowThreadStackBounds
// may look (0 on other threads, whose stacks do not grow).
thread_local uint8_t t_grow_lookups_left __attribute__((tls_model("initial-exec"))) = 0;
}  // namespace

// Not inlined: its own frame is the walk's starting point.
__attribute__((noinline)) size_t FramePointerWalk(uintptr_t* ips, size_t max) {
  uintptr_t high = t_stack_high;
  auto fp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  uintptr_t low = fp;
  size_t n = 0;
  while (n < max) {
    if (fp < low || fp + 2 * sizeof(uintptr_t) > high || (fp & 7) != 0) break;
    const auto* frame = reinterpret_cast<const uintptr_t*>(fp);
    uintptr_t next = frame[0];
    uintptr_t ret = frame[1];
    if (ret == 0) break;
    ips[n++] = ret;
    if (next <= fp) break;
    fp = next;
  }
  return n;
}

namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return 0;
}

}  // namespace

void SetSelfRange(uintptr_t begin, uintptr_t end) {
  g_self_begin = begin;
  g_self_end = end;
}

namespace {

// Finds, in /proc/self/maps (read raw with a fixed buffer, no allocation),
// the mapping that contains `address`, or if `address` is 0 the one named
// "[stack]"; returns its end (0 if not found) and stores its start in
// *start.
uintptr_t MappingRange(uintptr_t address, uintptr_t* start) {
  NoCancel no_cancel;  // open/read/close are cancellation points
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  // Lines are taken from the buffer until none is whole, and only then is
  // it refilled: one read() per 4 KiB. (Refilling the room each line left
  // made one read() of a line each: about 46 system calls for a thread's
  // stack in a process of 50 threads, each regenerating a record under the
  // address-space lock that other threads' mmaps wait on; 12.6% of the CPU
  // of 200 starting threads. docs/performance.md, maps27.)
  char buf[4096];
  size_t begin = 0, len = 0;  // the unread text is buf[begin, len)
  uintptr_t result = 0;
  bool eof = false;
  while (result == 0) {
    char* line = buf + begin;
    char* nl = static_cast<char*>(memchr(line, '\n', len - begin));
    if (nl == nullptr) {
      if (eof || (begin == 0 && len == sizeof buf)) break;  // the end (or one absurdly long line)
      memmove(buf, line, len - begin);
      len -= begin;
      begin = 0;
      ssize_t n = read(fd, buf + len, sizeof buf - len);
      if (n <= 0) {
        eof = true;
      } else {
        len += static_cast<size_t>(n);
      }
      continue;
    }
    // "start-end perms ...": two hex numbers.
    uintptr_t lo = 0, hi = 0;
    const char* p = line;
    for (; *p != '-' && p < nl; ++p) lo = lo * 16 + static_cast<uintptr_t>(HexDigit(*p));
    for (++p; *p != ' ' && p < nl; ++p) hi = hi * 16 + static_cast<uintptr_t>(HexDigit(*p));
    bool named_stack = nl - line >= 7 && memcmp(nl - 7, "[stack]", 7) == 0;
    if (address != 0 ? address >= lo && address < hi : named_stack) {
      result = hi;
      *start = lo;
    }
    begin = static_cast<size_t>(nl - buf) + 1;
  }
  close(fd);
  return result;
}

}  // namespace

__attribute__((noinline)) uintptr_t OutermostOwnFrame() {
  auto fp = reinterpret_cast<uintptr_t>(__builtin_frame_address(0));
  for (int i = 0; i < 64 && fp != 0; ++i) {
    const auto* frame = reinterpret_cast<const uintptr_t*>(fp);
    uintptr_t ret = frame[1];
    if (ret < g_self_begin || ret >= g_self_end) return fp;  // our caller is not us
    fp = frame[0];
  }
  return fp;
}

void InitThreadStackBounds() {
  if (t_stack_bounds_tried) return;
  t_stack_bounds_tried = true;
  // The thread's own stack, wherever we run now (a coroutine's or a signal
  // stack would be the wrong answer: it may be unmapped later, and the
  // unwind cache reads up to t_stack_high). glibc puts a thread's
  // descriptor (pthread_self()) at the top of its stack mapping; the main
  // thread's stack is the mapping named [stack]. pthread_getattr_np would
  // say the same, but it calls malloc.
  bool main_thread = getpid() == static_cast<pid_t>(syscall(SYS_gettid));
  uintptr_t low = 0;
  // The main thread's: the mapping that holds the top of the stack it was
  // started with (__libc_stack_end, set by the loader), or failing that the
  // one named [stack] (valgrind, for one, gives its client a stack that is
  // not named so).
  uintptr_t high = 0;
  if (main_thread && __libc_stack_end != nullptr) {
    high = MappingRange(reinterpret_cast<uintptr_t>(__libc_stack_end), &low);
  }
  if (high == 0) {
    high = MappingRange(main_thread ? 0 : reinterpret_cast<uintptr_t>(pthread_self()), &low);
  }
  t_stack_low = low;
  t_stack_high = high;
  if (main_thread && high != 0) t_grow_lookups_left = 16;
}

bool GrowThreadStackBounds(uintptr_t sp) {
  if (t_grow_lookups_left == 0 || sp >= t_stack_low) return false;
  --t_grow_lookups_left;
  // The same stack, grown down to sp: the mapping holding sp ends where
  // the known one does. Anything else (another stack) changes nothing.
  uintptr_t low = 0;
  if (MappingRange(sp, &low) != t_stack_high || low > sp) return false;
  t_stack_low = low;
  return true;
}

}  // namespace heapsight::preload
