// preload/task_status.h: what the kernel shows of one of our own threads in
// /proc/self/task/TID: its scheduler state and blocked-signal mask
// (`status`), and the system call it sleeps in with that call's stack
// pointer (`syscall`).
//
// The leak scan's thread stop (thread_capture.h) asks before it signals a
// thread: a thread that blocks the stop signal cannot answer it, and one
// that sleeps in rt_sigtimedwait (sigwait, sigwaitinfo, sigtimedwait) would
// take the signal as its own (the kernel unblocks the waited-for signals
// for the duration of the call, so its SigBlk does not show them).
//
// Constraints: no malloc, no locks, stack buffers only; open/read/close,
// which are async-signal-safe, may change errno (the caller keeps it). Made
// for the scanning thread while the others are being stopped.
#ifndef HEAPSIGHT_PRELOAD_TASK_STATUS_H_
#define HEAPSIGHT_PRELOAD_TASK_STATUS_H_

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace heapsight::preload {

struct TaskStatus {
  char state = '?';           // R, S, D, T, t, Z, X, ... ("State:" line)
  uint64_t blocked = 0;       // SigBlk: bit N-1 is signal N
};

// False if the file cannot be read or lacks the two lines.
bool ReadTaskStatus(pid_t tid, TaskStatus* out);

// True if signal `signal_number` (1-64) is in `mask` (a SigBlk value).
inline bool SignalInMask(uint64_t mask, int signal_number) {
  return signal_number >= 1 && signal_number <= 64 &&
         ((mask >> (signal_number - 1)) & 1) != 0;
}

// /proc/self/task/TID/syscall of a thread blocked in a system call:
// "nr a1 a2 a3 a4 a5 a6 sp pc".
struct TaskSyscall {
  long number = -1;
  uintptr_t sp = 0;
};

// False if the thread is running ("running"), blocked outside a system call
// ("-1 sp pc"), or the file cannot be read.
bool ReadTaskSyscall(pid_t tid, TaskSyscall* out);

// Writes "/proc/self/task/TID/<leaf>" into `path` (at least 64 bytes).
void TaskFilePath(pid_t tid, const char* leaf, char* path, size_t size);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_TASK_STATUS_H_
