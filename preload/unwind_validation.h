// preload/unwind_validation.h: libunwind's memory validation, without fds.
//
// libunwind 1.6 (Debian 12) validates every address it reads while
// stepping through a frame (its CONSERVATIVE_CHECKS build default): it
// writes one byte from the address into a pipe it opened at its first use
// (by then, the lowest free fds, often 3 and 4), and re-creates the pipe
// when a read from it fails. A program that closes every fd and opens its
// own files got them closed (its fd 3) or written to (its fd 4) by
// libunwind (issue 12). Neither an API nor an environment variable turns
// the validation off.
//
// So libunwind's own calls of pipe2, read, close and syscall (the functions
// that validation uses; write too, which other builds use instead of
// syscall) are bound, when our private copy of libunwind is relocated
// (private_libunwind.h), to functions of ours: pipe2 hands out two numbers
// no fd can have, read and close of those do nothing, and
// syscall(SYS_write, <our number>, addr, 1) validates `addr` with
// process_vm_readv on our own process (no fd). Every other call passes
// through to libc unchanged. libunwind then never holds an fd, and reads
// nothing but memory.
//
// Constraints: the replacement functions are async-signal-safe, never
// allocate and preserve errno except as libunwind's loops need it
// (unwind_validation.cc).
#ifndef HEAPSIGHT_PRELOAD_UNWIND_VALIDATION_H_
#define HEAPSIGHT_PRELOAD_UNWIND_VALIDATION_H_

namespace heapsight::preload {

// Our replacement for libunwind's import `name` (pipe2, read, close,
// syscall, write), or nullptr for any other name.
void* UnwindValidationFunction(const char* name);

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_UNWIND_VALIDATION_H_
