// preload/service_task.h: heapsight's one background task per process, a
// thread that glibc never learns about (issue 19).
//
// Why not pthread_create: any second glibc thread flips glibc's malloc into
// its multi-thread path for every malloc and free of the host (arena locks,
// atomic fastbins, SINGLE_THREAD_P false): +7% CPU on a python+sqlite
// request loop even for a thread that only sleeps (docs/performance.md,
// "Live profiles"). A task created with the raw clone(2) system call shares
// the address space, files and signal handlers like a thread, but glibc's
// thread list, __libc_single_threaded and the multiple-threads flag stay as
// they were: a single-threaded host stays single-threaded in glibc's eyes.
//
// The task (the idea of sanitizer_common's StopTheWorld tracer; our own code):
//   - clone(CLONE_VM|FS|FILES|SIGHAND|THREAD|SYSVSEM|SETTLS|PARENT_SETTID|
//     CHILD_CLEARTID): the kernel writes the tid into a word of ours at the
//     start and clears it (and wakes a shared futex on it) when the task
//     exits; waiting for the word to become 0 is the join.
//   - its own stack and its own TLS/TCB area (PageAlloc, so never a
//     leak-scan root): zeroed memory holding glibc's whole static TLS block
//     (size from _dl_get_tls_static_info) below a thread control block whose
//     self pointers point at itself, with the stack-protector canary
//     (fs:0x28) and the pointer guard (fs:0x30) copied from the creating
//     thread. Every initial-exec thread_local of ours, errno, and any read
//     of the thread descriptor by a libc wrapper hit this memory, never
//     another thread's. Our thread_locals start at zero there (not at their
//     initializers): the task sets the ones it needs (InServiceTask, the
//     reentry guard).
//   - every signal blocked (raw rt_sigprocmask around the clone: the task
//     inherits the mask; glibc's pthread_sigmask would leave SIGCANCEL and
//     SIGSETXID open): no host signal is ever delivered to it. A fault in it
//     still kills the process (the kernel forces blocked synchronous faults).
//   - exempt from the leak scan's stop-the-world (thread_capture.h).
//
// What the task's code may do (every caller of StartServiceTask audits its
// function for this): no glibc malloc (the host's malloc takes no locks
// while glibc thinks it is single-threaded: one allocation from the task
// would corrupt the heap), no stdio, no glibc locks (the low-level lock of
// a "single-threaded" process is not safe against us), no dynamic loader
// (dlsym, dl_iterate_phdr), no general-dynamic TLS (the DTV is empty), no
// pthread functions beyond what host_guards.h skips. Plain system-call
// wrappers (open, write, fstat, close, futex) are fine: they read nothing
// but the TCB (the multiple-threads flag, zero here) and store errno into
// the task's own TLS.
//
// Known differences from a glibc thread: credentials are per task in Linux
// and glibc's setuid() broadcast knows only its threads, so a host that
// drops privileges after the task started leaves the task with the old
// ones; the task does not appear in glibc's thread list (a debugger's
// `info threads` via libthread_db does not show it; /proc/PID/task does).
//
// Constraints: StartServiceTask runs on a program thread under the reentry
// guard (it may call dlsym once, and PageAlloc); no lock of ours is taken.
// WaitServiceTaskExit uses raw futex calls. Nothing here is async-signal-safe
// except ServiceTaskTid and InServiceTask.
#ifndef HEAPSIGHT_PRELOAD_SERVICE_TASK_H_
#define HEAPSIGHT_PRELOAD_SERVICE_TASK_H_

#include <sys/types.h>

#include <cstdint>

namespace heapsight::preload {

// The tasks heapsight may run, at most one of each at a time: the writer
// (trace_flusher.h), which comes and goes with the trace, and the control
// loop of paused mode (control.h), which lives as long as the process.
enum TaskRole : int { kWriterTask = 0, kControlTask = 1 };
inline constexpr int kServiceTaskRoles = 2;

// Starts the task of `role`, which runs main(arg) under the reentry guard
// and exits when main returns. `name` (at most 15 characters) is its comm,
// as /proc/PID/task/TID/comm shows it. False (nothing started) when the TLS
// size is unknown, memory cannot be mapped, clone fails, or a task of this
// role still runs (EBUSY); the errno-style reason in *err. May be called
// from a program thread or from the other service task (the TLS size is
// then known already: no dlsym).
bool StartServiceTask(int role, void (*main)(void*), void* arg, const char* name, int* err);

// Waits until the task of `role` has exited (its tid word cleared by the
// kernel), at most timeout_ns. True when no such task runs any more.
bool WaitServiceTaskExit(int role, uint64_t timeout_ns);

// The running task's tid, 0 when none.
pid_t ServiceTaskTid(int role);

// True on any service task (its own TLS flag); OnServiceTask: on the task
// of that role.
bool InServiceTask();
bool OnServiceTask(int role);

// Fork child: the parent's task of `role` does not exist here.
void ForgetServiceTaskInChild(int role);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_SERVICE_TASK_H_
