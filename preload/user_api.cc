// preload/user_api.cc: see user_api.h.
//
// Constraints: no malloc (PageAlloc), not async-signal-safe except the dump
// and leak signals' handlers (one sem_post each). No heapsight lock is held while the
// analyzer runs. No fd is kept: the handler wakes the dump thread through a
// semaphore (a pipe's fds were the program's to close and reuse, and the
// handler would then have written into the program's file; issue 12).
#include "preload/user_api.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

#include "format/trace_format.h"
#include "preload/clock.h"
#include "preload/host_guards.h"
#include "preload/internal_alloc.h"
#include "preload/leak_check.h"
#include "preload/raw_log.h"
#include "preload/recorder.h"
#include "preload/reentry_guard.h"
#include "preload/spin_lock.h"
#include "preload/thread_state.h"
#include "preload/trace_writer.h"
#include "preload/trace_flusher.h"
#include "preload/tracer_state.h"

extern char** environ;

namespace heapsight::preload {
namespace {

constexpr size_t kMaxMarkerBytes = 4096;
constexpr size_t kPathBytes = 4096;

std::atomic<uint64_t> g_profile_counter{0};
sem_t g_dump_wakeup;
sem_t g_leak_wakeup;

// A fixed-capacity string on the stack (no allocation).
struct PathBuf {
  char text[kPathBytes];
  size_t len = 0;
  bool ok = true;
  PathBuf& Add(const char* s) {
    size_t n = strlen(s);
    if (len + n + 1 > sizeof text) {
      ok = false;
      return *this;
    }
    memcpy(text + len, s, n + 1);
    len += n;
    return *this;
  }
  PathBuf& Add(uint64_t v) {
    char digits[24];
    size_t n = 0;
    do {
      digits[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v != 0);
    char s[24];
    for (size_t i = 0; i < n; ++i) s[i] = digits[n - 1 - i];
    s[n] = '\0';
    return Add(s);
  }
};

bool Executable(const char* path) { return access(path, X_OK) == 0; }

// Finds the heapsight binary (see user_api.h). False if none is found.
bool FindAnalyzer(PathBuf* out) {
  const char* env = getenv("HEAPSIGHT_ANALYZER");
  if (env != nullptr && *env != '\0') {
    out->Add(env);
    return out->ok && Executable(out->text);
  }
  Dl_info info;
  if (dladdr(reinterpret_cast<void*>(&WriteProfileNow), &info) == 0 || info.dli_fname == nullptr) {
    return false;
  }
  char lib[PATH_MAX];
  if (realpath(info.dli_fname, lib) == nullptr) return false;
  char* slash = strrchr(lib, '/');
  if (slash == nullptr) return false;
  *slash = '\0';
  for (const char* rel : {"/../cli/heapsight", "/../../bin/heapsight", "/../bin/heapsight"}) {
    PathBuf candidate;
    candidate.Add(lib).Add(rel);
    if (candidate.ok && Executable(candidate.text)) {
      *out = candidate;
      return true;
    }
  }
  return false;
}

// Runs argv[0] with the environment minus LD_PRELOAD (the analyzer must not
// be traced) and waits. Returns its exit status, or -1.
int SpawnAndWait(char* const* argv) {
  size_t count = 0;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) ++count;
  size_t bytes = (count + 1) * sizeof(char*);
  auto** envp = static_cast<char**>(PageAlloc(bytes));
  if (envp == nullptr) return -1;
  size_t n = 0;
  for (size_t i = 0; i < count; ++i) {
    if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0) envp[n++] = environ[i];
  }
  envp[n] = nullptr;
  pid_t pid = 0;
  int rc = posix_spawn(&pid, argv[0], nullptr, nullptr, argv, envp);
  PageFree(envp, bytes);
  if (rc != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) return -1;
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// One line on stderr, the parts joined (unless HEAPSIGHT_QUIET).
template <typename... Parts>
void Warn(const Parts*... parts) {
  const char* quiet = getenv("HEAPSIGHT_QUIET");
  if (quiet != nullptr && *quiet != '\0' && *quiet != '0') return;
  RawBuffer b;
  (b.Str(parts), ...);
  RawLog(b);
}

// --- dump on signal -------------------------------------------------------

void DumpSignalHandler(int) {
  int saved = errno;
  sem_post(&g_dump_wakeup);  // async-signal-safe
  errno = saved;
}

void* DumpThread(void*) {
  for (uint64_t n = 1;; ++n) {
    while (sem_wait(&g_dump_wakeup) != 0) {
      if (errno != EINTR) return nullptr;
    }
    PathBuf path;
    path.Add(TracePath()).Add(".").Add(n).Add(".pb.gz");
    if (!path.ok) continue;
    if (WriteProfileNow(path.text) == 0) {
      Warn("wrote ", path.text);
    } else {
      Warn("could not write heap profile ", path.text);
    }
  }
}

int ParseSignal(const char* text) {
  if (strncmp(text, "SIG", 3) == 0) text += 3;
  if (*text >= '0' && *text <= '9') {
    int v = 0;
    for (; *text >= '0' && *text <= '9'; ++text) v = v * 10 + (*text - '0');
    return *text == '\0' && v > 0 && v < NSIG ? v : -1;
  }
  static constexpr struct {
    const char* name;
    int number;
  } kSignals[] = {{"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"HUP", SIGHUP},
                  {"WINCH", SIGWINCH}, {"URG", SIGURG}, {"PWR", SIGPWR}};
  for (const auto& s : kSignals) {
    if (strcmp(text, s.name) == 0) return s.number;
  }
  if (strncmp(text, "RTMIN+", 6) == 0) {
    int v = 0;
    for (text += 6; *text >= '0' && *text <= '9'; ++text) v = v * 10 + (*text - '0');
    return *text == '\0' && SIGRTMIN + v <= SIGRTMAX ? SIGRTMIN + v : -1;
  }
  return -1;
}

// Installs `handler` for the signal the environment variable `var` names,
// with a detached `thread` that waits on `wakeup` and does the work (the
// handler only posts the semaphore: the work is not async-signal-safe).
// Nothing when the variable is empty or tracing is disabled; a warning when
// it names no signal.
void InstallSignalThread(const char* var, sem_t* wakeup, void* (*thread_main)(void*),
                         void (*handler)(int), bool make_thread = true) {
  const char* text = getenv(var);
  if (text == nullptr || *text == '\0') return;
  const char* disable = getenv("HEAPSIGHT_DISABLE");
  if (disable != nullptr && *disable != '\0' && *disable != '0') return;
  int sig = ParseSignal(text);
  if (sig < 0) {
    Warn("invalid ", var, "=", text);
    return;
  }
  ErrnoKeeper keep_errno;  // a constructor: main() starts with libc's errno
  ReentryGuard guard;
  if (sem_init(wakeup, 0, 0) != 0) return;
  if (make_thread) {
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&thread, &attr, thread_main, nullptr);
    pthread_attr_destroy(&attr);
    if (rc != 0) return;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = handler;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(sig, &sa, nullptr);
}

// Installs the dump handler when HEAPSIGHT_DUMP_SIGNAL asks for one.
__attribute__((constructor(103))) void SetUpDumpSignal() {
  InstallSignalThread("HEAPSIGHT_DUMP_SIGNAL", &g_dump_wakeup, DumpThread, DumpSignalHandler);
}

// --- leak scan on signal -----------------------------------------------------

void LeakSignalHandler(int) {
  int saved = errno;
  sem_post(&g_leak_wakeup);  // async-signal-safe; RunLeakScan is not
  errno = saved;
}

// A sampled trace has no leak thread (see SetUpLeakSignal): the request is
// acknowledged on stderr once (write(2) only: async-signal-safe) and
// otherwise ignored, never the signal's default action (termination).
std::atomic<bool> g_sampled_leak_warned{false};
void SampledLeakSignalHandler(int) {
  int saved = errno;
  if (!g_sampled_leak_warned.exchange(true) && !g_options.QUIET) {
    static const char kText[] =
        "heapsight: HEAPSIGHT_LEAK_SIGNAL: this trace is sampled; leak scans on demand need an "
        "exact trace\n";
    ssize_t r = write(2, kText, sizeof kText - 1);
    (void)r;
  }
  errno = saved;
}

void* LeakThread(void*) {
  for (;;) {
    while (sem_wait(&g_leak_wakeup) != 0) {
      if (errno != EINTR) return nullptr;
    }
    // As __heapsight_leak_check: the scan takes its own guards.
    RunLeakScan(format::ScanReason::kRequest);
    // The scan's records sit in this thread's buffer, the blocks it
    // classified in every thread's: a reader of the growing trace (record
    // --serve) needs them all to match the classes to live blocks.
    FlushAllThreads(NowUs());
    // FlushAllThreads stopped the writer (its chunks go first); a request in
    // a running program must not end HEAPSIGHT_FLUSH_MS's freshness for the
    // rest of the run. Not past the exit point: the exit stops it for good.
    if (!g_exiting.load()) AllowFlusherRestart();
  }
}

// Installs the leak-scan handler when HEAPSIGHT_LEAK_SIGNAL asks for one.
// Its thread (a glibc thread: the scan calls into the loader and writes
// records from a thread state of its own, which the service task cannot,
// service_task.h) exists only for an exact trace: in a sampled one the live
// table holds only the sampled blocks, `record --serve` never asks it for a
// scan (live_endpoints.cc), and a second glibc thread would switch the
// host's malloc to its multi-thread path (+7% CPU on a python+sqlite loop,
// docs/performance.md): a sampled `record --serve` keeps a single-threaded
// host single-threaded. An exact trace costs 2-4x anyway; there the thread
// starts here, as before, so a scan request is answered even by an idle
// program.
__attribute__((constructor(103))) void SetUpLeakSignal() {
  bool sampled = g_options.SAMPLE_BYTES > 0;
  InstallSignalThread("HEAPSIGHT_LEAK_SIGNAL", &g_leak_wakeup, LeakThread,
                      sampled ? SampledLeakSignalHandler : LeakSignalHandler, !sampled);
}

}  // namespace

bool WriteMarker(const char* name, bool flush_all) {
  if (!TracingActive()) return false;
  ReentryGuard guard;
  uint64_t now = NowUs();
  ThreadState* ts = CurrentThreadState(now);
  if (ts == nullptr) return false;
  size_t len = strnlen(name, kMaxMarkerBytes);
  {
    SpinLockHolder hold(&ts->lock);
    if (AppendRecord(ts, now, &format::ChunkEncoder::PutMarker, now, name, len) != 0) return false;
    if (!flush_all && FlushLocked(ts, now) != 0) return false;
  }
  // Every event before the marker is in some thread's buffer by now.
  if (flush_all) {
    FlushAllThreads(now);
    if (!g_exiting.load()) AllowFlusherRestart();  // as after a leak request
  }
  return true;
}

int WriteProfileNow(const char* path) {
  if (path == nullptr || *path == '\0' || !TracingActive()) return -1;
  PathBuf analyzer;
  PathBuf marker;
  PathBuf at;
  PathBuf trace;
  {
    ReentryGuard guard;
    if (!FindAnalyzer(&analyzer)) {
      Warn("heapsight_write_profile: heapsight binary not found; set HEAPSIGHT_ANALYZER", "");
      return -1;
    }
    uint64_t n = g_profile_counter.fetch_add(1) + 1;
    marker.Add(format::kProfileMarkerPrefix).Add(n).Add(":").Add(path);
    at.Add("--at=marker:").Add(marker.text);
    trace.Add(TracePath());
    if (!marker.ok || !at.ok || !trace.ok) return -1;
  }
  if (!WriteMarker(marker.text, /*flush_all=*/true)) return -1;
  char pprof[] = "pprof";
  char dash_o[] = "-o";
  char* argv[] = {analyzer.text, pprof, trace.text, at.text, dash_o, const_cast<char*>(path),
                  nullptr};
  return SpawnAndWait(argv) == 0 ? 0 : -1;
}

}  // namespace heapsight::preload

extern "C" int __heapsight_marker(const char* name) {
  return heapsight::preload::WriteMarker(name != nullptr ? name : "", false) ? 0 : -1;
}

extern "C" int __heapsight_write_profile(const char* path) {
  return heapsight::preload::WriteProfileNow(path);
}
