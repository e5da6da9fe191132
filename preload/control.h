// preload/control.h: the control socket of a paused process (issue 19).
//
// A process started with HEAPSIGHT_START=paused runs dormant (the hooks pass
// every call through; tracer_state.h's kPaused) and listens on the abstract
// unix socket "@heapsight.<pid>" (no file; Linux's abstract namespace). A
// task of ours, "heapsight-ctl", blocked in accept(2), serves one request
// per connection, one line each way. It is a raw service task
// (service_task.h), not a glibc thread, so a paused single-threaded host
// keeps glibc's single-thread malloc:
//
//   "attach\n"  -> "ok <trace path>\n"   a window starts (AttachWindow)
//   "detach\n"  -> "ok <trace path>\n"   the window ends, the file is closed
//   "status\n"  -> "ok paused\n" | "ok recording <trace path>\n"
//   otherwise      "error <message>\n"
//
// Only a peer of the same user (or root) is served (SO_PEERCRED); the
// client (`heapsight attach`) checks in turn that the socket's owner is the
// process it asked for. Why a socket and a thread, not a signal: a signal
// would interrupt the host's blocking calls (sleep, poll and epoll_wait
// fail with EINTR even with SA_RESTART), could collide with a signal the
// host uses, and could not answer; and the work of a start (open the file,
// read /proc, write the header and module map) must not run in a signal
// handler nor wait for the host's next allocation (an idle process would
// never attach, nor close its trace on detach). The task runs the start
// and the end itself, at once, while the host's threads go on. What it
// cannot do there is list the loaded modules (dl_iterate_phdr needs a
// glibc thread): StartControl registers them on the starting thread, and
// a module loaded later is recorded by the thread that loaded it at its
// next event inside a window (or at exit).
//
// What it costs a paused host: one raw task (256 KiB stack, every signal
// blocked, so the host's signals never run on it; exempt from the leak
// scan's stop), one fd (close-on-exec, moved high like the trace's). A fork
// child of a paused-mode process gets its own socket and task; exec closes
// the fd and the new image starts again as its environment says.
//
// Constraints: the task allocates nothing of its own (requests and replies
// live on its stack); it takes the window lock through
// AttachWindow/DetachWindow (lifecycle.h). Nothing here runs in a hook or a
// signal handler.
#ifndef HEAPSIGHT_PRELOAD_CONTROL_H_
#define HEAPSIGHT_PRELOAD_CONTROL_H_

namespace heapsight::preload {

// Creates the socket and starts the control thread (paused mode only; a
// warning and no control when the socket cannot be bound).
void StartControl();

// In a fork child (the parent's thread does not exist here): closes the
// inherited socket and starts the child's own.
void RestartControlInChild();

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_CONTROL_H_
