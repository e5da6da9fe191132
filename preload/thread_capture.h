// preload/thread_capture.h: stops every other thread of the process for a
// leak scan and captures its registers, stack pointer and thread pointer,
// without ptrace.
//
// StopOtherThreads lists the threads from /proc/self/task (raw getdents64),
// sends each a real-time signal (tgkill) whose handler, installed only while
// a capture is in progress, copies the interrupted context into the thread's
// slot and then waits on a futex until ResumeOtherThreads. A thread the
// kernel shows cannot answer (/proc/self/task/TID/status: the signal is in
// its SigBlk, or it is stopped or dead; or it sleeps in rt_sigtimedwait,
// which would return our signal to the program) is not signalled at all;
// one found blocking the signal while we wait is given up at once; others
// that do not answer within the timeout are given up then. All of them are
// reported as missed; for them the stack pointer of a blocking system call
// is taken from /proc/self/task/TID/syscall when the kernel shows one.
//
// The previous disposition of the signal is restored when every signalled
// thread has answered; otherwise our handler stays installed as a no-op, so
// a signal still pending in a thread that blocks it cannot kill the process
// later.
//
// Constraints: no malloc (slots in PageAlloc memory); the handler is
// async-signal-safe (no locks, no allocation, raw syscalls only, errno
// preserved). The stopped threads may hold any lock (malloc's included), so
// between Stop and Resume the caller must not allocate, lock, or call into
// the dynamic loader.
#ifndef HEAPSIGHT_PRELOAD_THREAD_CAPTURE_H_
#define HEAPSIGHT_PRELOAD_THREAD_CAPTURE_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace heapsight::preload {

inline constexpr int kCapturedRegisters = 18;  // general-purpose registers (x86-64)

struct CapturedThread {
  pid_t tid = 0;
  bool stopped = false;     // registers and sp are valid
  bool sp_known = false;    // sp valid (stopped, or from /proc/.../syscall)
  uintptr_t sp = 0;
  uintptr_t tp = 0;         // thread pointer (%fs base), 0 if unknown
  uintptr_t regs[kCapturedRegisters] = {};
};

struct ThreadCapture {
  CapturedThread* threads = nullptr;  // other threads only
  size_t count = 0;
  size_t stopped = 0;
  size_t missed = 0;
  size_t not_signalled = 0;  // of the missed: never signalled (task_status.h)
  size_t bytes = 0;  // of the mapping behind `threads`
};

// `signal_number` 0 picks a free real-time signal. `timeout_ms` bounds the
// wait for each round of signals. Returns false (nothing stopped) if other
// threads exist but no signal or no memory was available; true with no
// threads when the process has only the calling thread.
bool StopOtherThreads(int signal_number, int timeout_ms, ThreadCapture* out);
void ResumeOtherThreads(ThreadCapture* capture);

// Tasks of heapsight's own that never touch the program's heap or hold a
// program pointer (the service tasks, service_task.h, which block every
// signal: the writer and paused mode's control loop): StopOtherThreads
// leaves them running and out of the list instead of waiting for them to
// answer. One tid per slot (0 or 1); 0: none.
inline constexpr int kExemptSlots = 2;
void ExemptFromCapture(int slot, pid_t tid);

// The calling thread's thread pointer.
uintptr_t CurrentThreadPointer();

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_THREAD_CAPTURE_H_
