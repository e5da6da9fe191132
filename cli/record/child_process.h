// cli/record/child_process.h: runs the traced program as a child
// (fork + execve), forwards termination signals to it and waits for it.
#ifndef HEAPSIGHT_ANALYZER_RECORD_CHILD_PROCESS_H_
#define HEAPSIGHT_ANALYZER_RECORD_CHILD_PROCESS_H_

#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace heapsight::record {

// Signals sent to `heapsight record` that it passes on to the child:
// SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2. A signal the kernel
// generated for the whole foreground process group (Ctrl-C, Ctrl-\ on a
// terminal) already reached the child and is not sent twice; heapsight
// itself keeps running until the child is gone. A signal ignored when
// heapsight started (nohup) stays ignored.
inline constexpr int kForwardedSignals[] = {2 /*INT*/, 15 /*TERM*/, 1 /*HUP*/,
                                            3 /*QUIT*/, 10 /*USR1*/, 12 /*USR2*/};

// Starts `fn` on a thread of heapsight's own (the live server's, the
// conversion's) with kForwardedSignals blocked in it: they are for the main
// thread's handler, which passes them to the child.
std::thread StartThreadWithoutForwardedSignals(std::function<void()> fn);

struct ChildStatus {
  int exec_errno = 0;    // non-zero: execve failed with this error, nothing ran
  bool signaled = false;  // killed by a signal
  int signal = 0;
  int exit_code = 0;     // exit status, or 128 + signal
};

// Makes heapsight itself survive a closed stdout/stderr (e.g. `heapsight
// record -- PROG 2>&1 | head -1`): SIGPIPE is ignored from now on, so a
// write there fails with EPIPE instead of killing heapsight and losing the
// program's exit status. RunChild gives the program SIGPIPE's disposition
// from before this call.
void IgnoreSigpipe();

// Runs `path` with `argv` and `envp` (each "NAME=VALUE") and waits for it.
// A file the kernel cannot execute (ENOEXEC: a script without "#!") is run
// with /bin/sh, as execvp and the shells do.
ChildStatus RunChild(const std::string& path, const std::vector<std::string>& argv,
                     const std::vector<std::string>& envp);

}  // namespace heapsight::record

#endif  // HEAPSIGHT_ANALYZER_RECORD_CHILD_PROCESS_H_
