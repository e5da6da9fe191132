// preload/control.cc: see control.h.
//
// Constraints: no malloc of our own; the control task's buffers are on its
// stack; text is built by hand (no stdio). The loop runs on a service task
// (service_task.h): it calls only system-call wrappers (socket, accept4,
// read, write, getsockopt, setsockopt, fstat, fcntl, getrlimit, close,
// nanosleep), which touch nothing but errno (the task's own) and the TCB's
// multiple-threads flag (0 there); no glibc lock, malloc, stdio or loader
// call (AttachWindow and DetachWindow skip their module scans on the task,
// lifecycle.cc). Not async-signal-safe, never called from a hook or a
// signal handler.
#include "preload/control.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "preload/host_guards.h"
#include "preload/lifecycle.h"
#include "preload/module_map.h"
#include "preload/raw_log.h"
#include "preload/reentry_guard.h"
#include "preload/service_task.h"
#include "preload/trace_writer.h"
#include "preload/tracer_state.h"

namespace heapsight::preload {
namespace {

constexpr int kHighFd = 499;  // below the trace's 500 (trace_writer.cc)

int g_listen_fd = -1;
dev_t g_listen_dev = 0;
ino_t g_listen_ino = 0;

// A fixed buffer for one reply line.
struct Line {
  char text[4200];
  size_t len = 0;
  Line& Add(const char* s) {
    while (*s != '\0' && len < sizeof text - 2) text[len++] = *s++;
    return *this;
  }
};

bool StillOurs(int fd) {
  struct stat st;
  return fd >= 0 && fstat(fd, &st) == 0 && st.st_dev == g_listen_dev && st.st_ino == g_listen_ino;
}

// The abstract name "@heapsight.<pid>" (sun_path[0] == '\0'); its length.
socklen_t SocketAddress(sockaddr_un* addr) {
  std::memset(addr, 0, sizeof *addr);
  addr->sun_family = AF_UNIX;
  char* p = addr->sun_path + 1;
  const char kPrefix[] = "heapsight.";
  std::memcpy(p, kPrefix, sizeof kPrefix - 1);
  p += sizeof kPrefix - 1;
  char digits[24];
  int n = 0;
  for (auto v = static_cast<uint64_t>(getpid()); n == 0 || v != 0; v /= 10) {
    digits[n++] = static_cast<char>('0' + v % 10);
  }
  while (n > 0) *p++ = digits[--n];
  return static_cast<socklen_t>(p - reinterpret_cast<char*>(addr));
}

// A high fd number, out of the way of a program that expects its next
// open to return the lowest free number.
int MoveHigh(int fd) {
  rlimit rl;
  int target = kHighFd;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < static_cast<rlim_t>(kHighFd) + 16) {
    target = rl.rlim_cur > 40 ? static_cast<int>(rl.rlim_cur) - 20 : fd;
  }
  if (target <= fd) return fd;
  int high = fcntl(fd, F_DUPFD_CLOEXEC, target);
  if (high < 0) return fd;
  close(fd);
  return high;
}

bool OpenSocket() {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un addr;
  socklen_t len = SocketAddress(&addr);
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd, 4) != 0) {
    int err = errno;
    close(fd);
    if (!g_options.QUIET) {
      RawBuffer b;
      b.Str("HEAPSIGHT_START=paused: cannot listen on @").Str(addr.sun_path + 1).Str(": ")
          .Str(ErrnoName(err)).Str("; attach is not possible");
      RawLog(b);
    }
    return false;
  }
  fd = MoveHigh(fd);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    close(fd);
    return false;
  }
  g_listen_dev = st.st_dev;
  g_listen_ino = st.st_ino;
  g_listen_fd = fd;
  return true;
}

// Reads one request line ("attach", "detach", "status") into `buf`.
bool ReadRequest(int fd, char* buf, size_t size) {
  size_t len = 0;
  while (len < size - 1) {
    ssize_t n = read(fd, buf + len, size - 1 - len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    len += static_cast<size_t>(n);
    if (std::memchr(buf, '\n', len) != nullptr) break;
  }
  buf[len] = '\0';
  if (char* nl = std::strchr(buf, '\n'); nl != nullptr) *nl = '\0';
  return len > 0;
}

void Reply(int fd, const Line& line) {
  Line l = line;
  l.text[l.len++] = '\n';
  WriteNoSignal(fd, l.text, l.len);
}

void Serve(int fd) {
  ucred cred;
  socklen_t cred_len = sizeof cred;
  Line out;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) != 0 ||
      (cred.uid != geteuid() && cred.uid != 0)) {
    Reply(fd, out.Add("error permission denied: not the process's user"));
    return;
  }
  timeval timeout{5, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
  char request[64];
  if (!ReadRequest(fd, request, sizeof request)) return;
  char path[4096];
  if (std::strcmp(request, "attach") == 0) {
    int err = AttachWindow(path, sizeof path);
    if (err == 0) {
      out.Add("ok ").Add(path);
    } else if (err == EALREADY) {
      out.Add(TracingActive() ? "error already recording into " : "error tracing is disabled")
          .Add(TracingActive() ? TracePath() : "");
    } else {
      out.Add("error cannot start the trace: ").Add(ErrnoName(err));
    }
  } else if (std::strcmp(request, "detach") == 0) {
    int err = DetachWindow(path, sizeof path);
    if (err == 0) {
      out.Add("ok ").Add(path);
    } else {
      out.Add("error not recording (no window is attached)");
    }
  } else if (std::strcmp(request, "status") == 0) {
    if (TracingActive()) {
      out.Add("ok recording ").Add(TracePath());
    } else {
      out.Add(TracingStatusRelaxed() == kPaused ? "ok paused" : "ok disabled");
    }
  } else {
    out.Add("error unknown request (attach, detach or status)");
  }
  Reply(fd, out);
}

// The control task's main (service_task.h: every signal blocked, exempt
// from the leak scan's stop, reentry guard held).
void ControlMain(void*) {
  for (;;) {
    int listen_fd = g_listen_fd;
    // The program may have closed our fd (a daemon closing every fd) and
    // got the number back for a socket of its own: never accept on it.
    // A fresh socket then (the old name is free once the old one is gone).
    if (!StillOurs(listen_fd)) {
      g_listen_fd = -1;
      timespec wait{0, 100 * 1000 * 1000};
      nanosleep(&wait, nullptr);
      if (!OpenSocket()) return;
      continue;
    }
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED || errno == EAGAIN) continue;
      if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
        timespec wait{0, 100 * 1000 * 1000};
        nanosleep(&wait, nullptr);
      }
      continue;
    }
    Serve(fd);
    close(fd);
  }
}

// Not pthread_create: a glibc thread would switch the host's malloc to its
// multi-thread path for as long as the process runs paused (service_task.h).
bool StartTask() {
  ErrnoKeeper keep_errno;
  ReentryGuard guard;  // the first task start looks up the TLS size (dlsym)
  int err = 0;
  if (StartServiceTask(kControlTask, ControlMain, nullptr, "heapsight-ctl", &err)) return true;
  if (!g_options.QUIET) {
    RawBuffer b;
    b.Str("HEAPSIGHT_START=paused: cannot start the control task: ").Str(ErrnoName(err))
        .Str("; attach is not possible");
    RawLog(b);
  }
  return false;
}

// What an attach on the task cannot do itself: list the loaded modules
// (dl_iterate_phdr, on a real thread; lifecycle.cc's AttachWindow writes
// what this registered). A no-op sink: nothing is recorded while paused.
void RegisterModules() {
  ReentryGuard guard;
  RescanModules(ModuleSink{[](const Module&, void*) {}, [](uint64_t, void*) {}, nullptr});
}

// After our constructor(101), which started (paused) tracing.
__attribute__((constructor(104))) void ControlConstructor() {
  if (PausedMode() && TracingStatusRelaxed() == kPaused) StartControl();
}

}  // namespace

void StartControl() {
  ErrnoKeeper keep_errno;
  if (!OpenSocket()) return;
  RegisterModules();
  if (!StartTask()) {
    close(g_listen_fd);
    g_listen_fd = -1;
    return;
  }
  // Under `heapsight record --paused` (the manifest is record's): the user
  // needs the pid. Not for a program started with LD_PRELOAD by hand,
  // whose stderr stays its own.
  if (g_options.MANIFEST[0] != '\0' && !g_options.QUIET) {
    RawBuffer b;
    b.Str("pid ").Num(getpid()).Str(" runs paused; `heapsight attach ").Num(getpid())
        .Str("` starts recording");
    RawLog(b);
  }
}

void RestartControlInChild() {
  ErrnoKeeper keep_errno;
  // The parent's task does not exist here; its socket is the parent's:
  // close our copy (if still ours).
  ForgetServiceTaskInChild(kControlTask);
  if (StillOurs(g_listen_fd)) close(g_listen_fd);
  g_listen_fd = -1;
  if (!OpenSocket()) return;
  if (!StartTask()) {
    close(g_listen_fd);
    g_listen_fd = -1;
  }
}

}  // namespace heapsight::preload
