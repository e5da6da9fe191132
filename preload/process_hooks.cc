// preload/process_hooks.cc: process lifecycle hooks: init and fini,
// dlopen/dlclose, fork, daemon, the exec family, exit/_exit/_Exit/quick_exit.
//
// Constraints: no malloc of our own (the execl* argument vectors come from
// mmap). Each hook calls the real function; the ordering around it is
// explained at each hook.
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "format/trace_format.h"
#include "preload/internal_alloc.h"
#include "preload/lifecycle.h"
#include "preload/real_functions.h"
#include "preload/recorder.h"

#define HEAPSIGHT_EXPORT extern "C" __attribute__((visibility("default")))

namespace hp = heapsight::preload;
using heapsight::format::EndReason;

extern char** environ;

namespace {

// Runs when the loader initializes us: after our own dependencies (libc,
// libunwind) and after the libraries initialized before us (the program's
// DT_NEEDED libraries come later in the search list than LD_PRELOAD, so
// their constructors run first), before the executable's constructors, and
// before __libc_start_main registers _dl_fini with atexit. The trace has
// usually been started already, by the first allocation of one of those
// earlier constructors (StartTracingIfUninit, lifecycle.h); then this is a
// no-op. Either way our exit handler is registered before _dl_fini, so it
// runs after _dl_fini (all static destructors and destructor functions) and
// after the atexit handlers the program registers; only handlers registered
// by libraries initialized before the start run later, and those are
// caught in write-through mode.
__attribute__((constructor(101))) void HeapsightConstructor() { hp::StartTracing(); }

// Runs inside _dl_fini, before our exit handler: flush the buffers of other
// threads; the kEnd record is written by the exit handler, which knows the
// exit status.
__attribute__((destructor(101))) void HeapsightDestructor() { hp::FlushAllForFini(); }

// execve-like call with the trace ended first and the hand-over variable
// added to the environment; if the exec fails, tracing resumes.
template <typename Exec>
int TracedExec(const char* path, char* const* envp, Exec exec) {
  char** env = nullptr;
  if (!hp::PrepareExec(path, envp, &env)) return exec(envp);
  int rc = exec(env);
  int saved = errno;
  hp::ExecFailed(env);
  errno = saved;
  return rc;
}

// Collects execl-style arguments into an mmap'ed vector.
struct ArgVector {
  char** argv = nullptr;
  size_t bytes = 0;
  ~ArgVector() { hp::PageFree(argv, bytes); }
};

bool CollectArgs(const char* arg0, va_list ap, ArgVector* out, char*** envp_out) {
  va_list count_ap;
  va_copy(count_ap, ap);
  size_t n = 1;
  while (va_arg(count_ap, char*) != nullptr) ++n;
  va_end(count_ap);
  out->bytes = (n + 1) * sizeof(char*);
  out->argv = static_cast<char**>(hp::PageAlloc(out->bytes));
  if (out->argv == nullptr) return false;
  out->argv[0] = const_cast<char*>(arg0);
  for (size_t i = 1; i < n; ++i) out->argv[i] = va_arg(ap, char*);
  out->argv[n] = nullptr;
  if (envp_out != nullptr) {
    (void)va_arg(ap, char*);  // the terminating NULL
    *envp_out = va_arg(ap, char**);
  }
  return true;
}

}  // namespace

// dlopen/dlclose tail-call the real function: glibc's dlopen looks at its
// return address to find the calling object, whose RUNPATH/RPATH, $ORIGIN
// and namespace govern the search. A wrapper that called it and then did
// work would make libheapsight.so the caller and change which library gets
// loaded. So we only mark this thread's module map dirty: its events inside
// the call (the loader allocates through us; the new module's constructors
// run) and its first event after it check for changes and rescan before
// recording anything, and the exit path checks once more.
HEAPSIGHT_EXPORT void* dlopen(const char* file, int mode) {
  hp::EnsureRealFunctions();
  hp::MarkModulesDirty(reinterpret_cast<uintptr_t>(__builtin_frame_address(0)));
  return hp::g_real.dlopen(file, mode);  // sibling call: keeps the caller's return address
}

HEAPSIGHT_EXPORT int dlclose(void* handle) {
  hp::EnsureRealFunctions();
  hp::MarkModulesDirty(reinterpret_cast<uintptr_t>(__builtin_frame_address(0)));
  return hp::g_real.dlclose(handle);
}

HEAPSIGHT_EXPORT pid_t fork() {
  hp::EnsureRealFunctions();
  // Locking and the child's new trace are done by our pthread_atfork
  // handlers (lifecycle.cc), which run inside the real fork.
  pid_t pid = hp::g_real.fork();
  if (pid > 0) hp::RecordFork(pid);  // parent only, after the child exists
  return pid;
}

// glibc's daemon() forks and ends its parent with the internal _exit, which
// no hook sees: the parent's buffered events and its end record were lost
// (a header-only trace, "(unknown program)", issue 12). So daemon() is done
// here with our own fork and _exit hooks, which record the fork and end the
// parent's trace; the child then does what daemon(3) documents: a new
// session, cwd "/" unless nochdir, fds 0-2 on /dev/null unless noclose
// (checked to be the null character device, as glibc checks, ENODEV if not).
HEAPSIGHT_EXPORT int daemon(int nochdir, int noclose) {
  hp::EnsureRealFunctions();
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid > 0) _exit(0);
  if (setsid() < 0) return -1;
  if (nochdir == 0 && chdir("/") != 0) {
    // as daemon(3): a failed chdir is not an error
  }
  if (noclose == 0) {
    int fd = open("/dev/null", O_RDWR);
    if (fd < 0) return -1;
    struct stat st;
    if (fstat(fd, &st) != 0) {
      int err = errno;
      close(fd);
      errno = err;
      return -1;
    }
    if (!S_ISCHR(st.st_mode) || st.st_rdev != makedev(1, 3)) {
      close(fd);
      errno = ENODEV;
      return -1;
    }
    (void)dup2(fd, STDIN_FILENO);
    (void)dup2(fd, STDOUT_FILENO);
    (void)dup2(fd, STDERR_FILENO);
    if (fd > STDERR_FILENO) close(fd);
  }
  return 0;
}

HEAPSIGHT_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) {
  hp::EnsureRealFunctions();
  return TracedExec(path, envp, [&](char* const* env) { return hp::g_real.execve(path, argv, env); });
}

HEAPSIGHT_EXPORT int execv(const char* path, char* const argv[]) {
  hp::EnsureRealFunctions();
  return TracedExec(path, environ,
                    [&](char* const* env) { return hp::g_real.execve(path, argv, env); });
}

HEAPSIGHT_EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) {
  hp::EnsureRealFunctions();
  return TracedExec(file, envp,
                    [&](char* const* env) { return hp::g_real.execvpe(file, argv, env); });
}

HEAPSIGHT_EXPORT int execvp(const char* file, char* const argv[]) {
  hp::EnsureRealFunctions();
  return TracedExec(file, environ,
                    [&](char* const* env) { return hp::g_real.execvpe(file, argv, env); });
}

HEAPSIGHT_EXPORT int fexecve(int fd, char* const argv[], char* const envp[]) {
  hp::EnsureRealFunctions();
  return TracedExec("", envp, [&](char* const* env) { return hp::g_real.fexecve(fd, argv, env); });
}

HEAPSIGHT_EXPORT int execl(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  ArgVector args;
  bool ok = CollectArgs(arg, ap, &args, nullptr);
  va_end(ap);
  if (!ok) return -1;
  return execv(path, args.argv);
}

HEAPSIGHT_EXPORT int execlp(const char* file, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  ArgVector args;
  bool ok = CollectArgs(arg, ap, &args, nullptr);
  va_end(ap);
  if (!ok) return -1;
  return execvp(file, args.argv);
}

HEAPSIGHT_EXPORT int execle(const char* path, const char* arg, ...) {
  va_list ap;
  va_start(ap, arg);
  ArgVector args;
  char** envp = nullptr;
  bool ok = CollectArgs(arg, ap, &args, &envp);
  va_end(ap);
  if (!ok) return -1;
  return execve(path, args.argv, envp);
}

namespace {

int (*g_program_main)(int, char**, char**) = nullptr;

int MainWrapper(int argc, char** argv, char** envp) {
  int status = g_program_main(argc, argv, envp);
  // A return from main reaches libc's exit() by a direct call inside libc,
  // not through our exit() below, so this is where its status is learnt.
  hp::RecordExitStatus(status);
  return status;
}

}  // namespace

// The executable's _start calls this through its PLT: we wrap main to see
// its return value. Nothing else changes; if the real function cannot be
// found, there is no way to run the program at all, so abort loudly.
HEAPSIGHT_EXPORT int __libc_start_main(int (*main)(int, char**, char**), int argc, char** argv,
                                       void (*init)(), void (*fini)(), void (*rtld_fini)(),
                                       void* stack_end) {
  hp::EnsureRealFunctions();
  if (hp::g_real.libc_start_main == nullptr) abort();
  g_program_main = main;
  return hp::g_real.libc_start_main(MainWrapper, argc, argv, init, fini, rtld_fini, stack_end);
}

HEAPSIGHT_EXPORT void exit(int status) {
  hp::EnsureRealFunctions();
  // Only remembered: the trace ends in our atexit handler, after the
  // program's own handlers have run.
  hp::RecordExitStatus(status);
  hp::g_real.exit(status);
  __builtin_unreachable();
}

HEAPSIGHT_EXPORT void _exit(int status) {
  hp::EnsureRealFunctions();
  // No atexit handlers will run: end the trace here.
  hp::FinishTrace(EndReason::kUnderscoreExit, status);
  hp::g_real._exit(status);
  __builtin_unreachable();
}

HEAPSIGHT_EXPORT void _Exit(int status) {
  hp::EnsureRealFunctions();
  hp::FinishTrace(EndReason::kUnderscoreExit, status);
  hp::g_real._Exit(status);
  __builtin_unreachable();
}

HEAPSIGHT_EXPORT void quick_exit(int status) {
  hp::EnsureRealFunctions();
  // at_quick_exit handlers run after this: they are written through.
  hp::FinishTrace(EndReason::kUnderscoreExit, status);
  hp::EnableWriteThrough();
  hp::g_real.quick_exit(status);
  __builtin_unreachable();
}
