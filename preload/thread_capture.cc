// preload/thread_capture.cc: see thread_capture.h.
//
// Constraints: no malloc; the signal handler uses raw syscalls and atomics
// only and preserves errno.
#include "preload/thread_capture.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cstring>

#include "preload/internal_alloc.h"
#include "preload/task_status.h"

namespace heapsight::preload {
namespace {

// A slot's life: kSignalled -> kCapturing (its handler took it) -> kParked
// -> kResumed; kEmpty: the thread was gone when signalled; kNotSignalled:
// judged unable to answer before any signal was sent (DoNotSignal);
// kGivenUp: signalled, then found blocking the signal while we waited (the
// signal may stay pending in it; its handler will find the slot closed).
enum SlotState : int {
  kEmpty = 0,
  kSignalled = 1,
  kParked = 2,
  kResumed = 3,
  kCapturing = 4,
  kNotSignalled = 5,
  kGivenUp = 6,
};

std::atomic<CapturedThread*> g_threads{nullptr};
std::atomic<int>* g_states = nullptr;
// How often the wait for the signalled threads looks again at those that
// have not answered yet (task_status.h; about 5 us per thread).
constexpr uint64_t kRecheckNs = 2000000;
std::atomic<size_t> g_count{0};
std::atomic<int> g_active{0};
std::atomic<int> g_release{0};
int g_signal = 0;
bool g_handler_installed = false;
struct sigaction g_old_action;

long Futex(std::atomic<int>* word, int op, int value, const struct timespec* timeout) {
  return syscall(SYS_futex, reinterpret_cast<int*>(word), op, value, timeout, nullptr, 0);
}

pid_t GetTid() { return static_cast<pid_t>(syscall(SYS_gettid)); }

uint64_t NowNs() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000u + static_cast<uint64_t>(ts.tv_nsec);
}

void SleepMicros(long us) {
  struct timespec ts = {0, us * 1000};
  nanosleep(&ts, nullptr);
}

void CaptureHandler(int, siginfo_t*, void* context) {
  int saved_errno = errno;
  if (g_active.load(std::memory_order_acquire) != 0) {
    pid_t tid = GetTid();
    CapturedThread* threads = g_threads.load(std::memory_order_acquire);
    size_t n = g_count.load(std::memory_order_acquire);
    for (size_t i = 0; threads != nullptr && i < n; ++i) {
      if (threads[i].tid != tid) continue;
      // Only a slot still waiting for us: the scanning thread may have
      // given up on this one (kGivenUp), and then it must not park.
      int expected = kSignalled;
      if (!g_states[i].compare_exchange_strong(expected, kCapturing,
                                               std::memory_order_acq_rel)) {
        break;
      }
      const auto* uc = static_cast<const ucontext_t*>(context);
      for (int r = 0; r < kCapturedRegisters && r < NGREG; ++r) {
        threads[i].regs[r] = static_cast<uintptr_t>(uc->uc_mcontext.gregs[r]);
      }
      threads[i].sp = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RSP]);
      threads[i].tp = CurrentThreadPointer();
      threads[i].sp_known = true;
      threads[i].stopped = true;
      g_states[i].store(kParked, std::memory_order_release);
      while (g_release.load(std::memory_order_acquire) == 0) {
        struct timespec timeout = {0, 100 * 1000 * 1000};
        Futex(&g_release, FUTEX_WAIT_PRIVATE, 0, &timeout);
      }
      g_states[i].store(kResumed, std::memory_order_release);
      break;
    }
  }
  errno = saved_errno;
}

bool PickSignal(int requested) {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_sigaction = CaptureHandler;
  action.sa_flags = SA_SIGINFO | SA_RESTART | SA_ONSTACK;
  sigfillset(&action.sa_mask);
  if (g_handler_installed) return true;  // left installed by an earlier capture
  int lo = SIGRTMIN + 4, hi = SIGRTMAX;
  if (requested != 0) lo = hi = requested;
  for (int s = hi; s >= lo; --s) {
    struct sigaction old;
    if (sigaction(s, nullptr, &old) != 0) continue;
    bool free_signal = (old.sa_flags & SA_SIGINFO) == 0 && old.sa_handler == SIG_DFL;
    if (!free_signal && requested == 0) continue;
    if (sigaction(s, &action, &g_old_action) != 0) continue;
    g_signal = s;
    g_handler_installed = true;
    return true;
  }
  return false;
}

// Calls fn(tid) for every task of the process. Raw getdents64: no malloc.
template <typename Fn>
bool ForEachTask(Fn fn) {
  int fd = open("/proc/self/task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  alignas(8) char buf[4096];
  for (;;) {
    long n = syscall(SYS_getdents64, fd, buf, sizeof buf);
    if (n <= 0) break;
    for (long off = 0; off < n;) {
      struct Dirent {
        uint64_t ino;
        int64_t off;
        unsigned short reclen;
        unsigned char type;
        char name[1];
      };
      auto* d = reinterpret_cast<Dirent*>(buf + off);
      pid_t tid = 0;
      bool numeric = d->name[0] != '\0';
      for (const char* c = d->name; *c != '\0'; ++c) {
        if (*c < '0' || *c > '9') {
          numeric = false;
          break;
        }
        tid = tid * 10 + (*c - '0');
      }
      if (numeric) fn(tid);
      off += d->reclen;
    }
  }
  close(fd);
  return true;
}

// sp of a thread blocked in a system call: the second-to-last field of
// /proc/self/task/TID/syscall ("nr a1..a6 sp pc").
bool SyscallStackPointer(pid_t tid, uintptr_t* sp) {
  TaskSyscall call;
  if (!ReadTaskSyscall(tid, &call)) return false;
  *sp = call.sp;
  return *sp != 0;
}

// True when the kernel shows that `tid` cannot run our handler soon, so
// waiting kStopTimeoutMs for it would be time lost: it blocks the signal
// (node's signal thread, a daemon's sigwait thread between two waits), or
// it is stopped (ptrace, job control) or dead. Unreadable files say nothing.
bool BlocksOrCannotRun(pid_t tid, int signal_number, TaskStatus* status) {
  if (!ReadTaskStatus(tid, status)) return false;
  char s = status->state;
  if (s == 't' || s == 'T' || s == 'Z' || s == 'X') return true;
  return SignalInMask(status->blocked, signal_number);
}

// Decided before the signal is sent: true for a thread that would not run
// our handler (above), and for one that sleeps in rt_sigtimedwait: sigwait
// & co. unblock the signals they wait for while they sleep (so SigBlk does
// not show them), and a waited-for stop signal would be returned to the
// program as its own; a handled one would end sigtimedwait with EINTR.
// Either way the program would see us. Such a thread sleeps in a system
// call, so its stack pointer is known without it.
bool DoNotSignal(pid_t tid, int signal_number) {
  TaskStatus status;
  if (BlocksOrCannotRun(tid, signal_number, &status)) return true;
  if (status.state != 'S') return false;  // running, or unknown: signal it
  TaskSyscall call;
  return ReadTaskSyscall(tid, &call) && call.number == SYS_rt_sigtimedwait;
}

}  // namespace

uintptr_t CurrentThreadPointer() {
  uintptr_t tp = 0;
#if defined(__x86_64__)
  __asm__ volatile("mov %%fs:0, %0" : "=r"(tp));
#endif
  return tp;
}

std::atomic<pid_t> g_exempt[kExemptSlots] = {};

void ExemptFromCapture(int slot, pid_t tid) {
  if (slot >= 0 && slot < kExemptSlots) g_exempt[slot].store(tid, std::memory_order_release);
}

bool StopOtherThreads(int signal_number, int timeout_ms, ThreadCapture* out) {
  *out = ThreadCapture{};
  pid_t self = GetTid();
  pid_t exempt[kExemptSlots];
  for (int i = 0; i < kExemptSlots; ++i) exempt[i] = g_exempt[i].load(std::memory_order_acquire);
  auto exempted = [&exempt](pid_t tid) {
    for (pid_t e : exempt) {
      if (e != 0 && tid == e) return true;
    }
    return false;
  };
  pid_t pid = getpid();
  size_t tasks = 0;
  if (!ForEachTask([&](pid_t) { ++tasks; })) return false;
  if (tasks <= 1) return true;  // single-threaded: nothing to stop, no signal needed
  size_t capacity = tasks * 2 + 64;
  size_t bytes = capacity * (sizeof(CapturedThread) + sizeof(std::atomic<int>));
  auto* mem = static_cast<uint8_t*>(PageAlloc(bytes));
  if (mem == nullptr) return false;
  if (!PickSignal(signal_number)) {
    PageFree(mem, bytes);
    return false;
  }
  auto* threads = reinterpret_cast<CapturedThread*>(mem);
  g_states = reinterpret_cast<std::atomic<int>*>(mem + capacity * sizeof(CapturedThread));
  g_release.store(0, std::memory_order_release);
  g_count.store(0, std::memory_order_release);
  g_threads.store(threads, std::memory_order_release);
  g_active.store(1, std::memory_order_release);
  out->threads = threads;
  out->bytes = bytes;

  // Rounds: threads created while we signal are caught by the next listing.
  size_t count = 0;
  for (int round = 0; round < 4; ++round) {
    size_t before = count;
    ForEachTask([&](pid_t tid) {
      if (tid == self || exempted(tid) || count >= capacity) return;
      for (size_t i = 0; i < count; ++i) {
        if (threads[i].tid == tid) return;
      }
      threads[count].tid = tid;
      // Asked before the signal goes out (task_status.h): a thread that
      // would not answer is not signalled at all, so no signal is left
      // pending in it and no sigwait of the program's returns ours.
      bool skip = DoNotSignal(tid, g_signal);
      g_states[count].store(skip ? kNotSignalled : kSignalled, std::memory_order_release);
      ++count;
      g_count.store(count, std::memory_order_release);
      if (!skip && syscall(SYS_tgkill, pid, tid, g_signal) != 0) {
        g_states[count - 1].store(kEmpty, std::memory_order_release);  // already gone
      }
    });
    if (count == before) break;
    uint64_t start = NowNs();
    uint64_t deadline = start + static_cast<uint64_t>(timeout_ms) * 1000000u;
    uint64_t next_check = start + kRecheckNs;
    for (;;) {
      bool all = true;
      for (size_t i = before; i < count; ++i) {
        int st = g_states[i].load(std::memory_order_acquire);
        if (st == kSignalled || st == kCapturing) all = false;
      }
      uint64_t now = NowNs();
      if (all || now >= deadline) break;
      if (now >= next_check) {
        // A thread that blocked the signal between our look and the
        // signal: stop waiting for it. The exchange fails if its handler
        // took the slot meanwhile, which then parks as usual.
        for (size_t i = before; i < count; ++i) {
          if (g_states[i].load(std::memory_order_acquire) != kSignalled) continue;
          TaskStatus status;
          if (!BlocksOrCannotRun(threads[i].tid, g_signal, &status)) continue;
          int expected = kSignalled;
          g_states[i].compare_exchange_strong(expected, kGivenUp, std::memory_order_acq_rel);
        }
        next_check = NowNs() + kRecheckNs;
      }
      SleepMicros(50);
    }
  }
  // A handler caught between taking its slot and parking finishes in a few
  // instructions: wait for it (bounded) rather than scan a moving stack.
  uint64_t capturing_deadline = NowNs() + 100000000u;
  for (size_t i = 0; i < count; ++i) {
    while (g_states[i].load(std::memory_order_acquire) == kCapturing &&
           NowNs() < capturing_deadline) {
      SleepMicros(20);
    }
  }
  out->count = count;
  for (size_t i = 0; i < count; ++i) {
    int st = g_states[i].load(std::memory_order_acquire);
    if (st == kParked) {
      ++out->stopped;
    } else if (st == kEmpty) {
      threads[i].stopped = threads[i].sp_known = false;
    } else {
      ++out->missed;
      if (st == kNotSignalled) ++out->not_signalled;
      threads[i].stopped = false;
      threads[i].sp_known = SyscallStackPointer(threads[i].tid, &threads[i].sp);
    }
  }
  return true;
}

void ResumeOtherThreads(ThreadCapture* capture) {
  if (capture->threads == nullptr) return;
  g_active.store(0, std::memory_order_release);
  g_release.store(1, std::memory_order_release);
  Futex(&g_release, FUTEX_WAKE_PRIVATE, 0x7fffffff, nullptr);
  // Wait for every parked handler to leave before the slots go away.
  uint64_t deadline = NowNs() + 2000000000u;
  bool all_answered = true;
  for (size_t i = 0; i < capture->count; ++i) {
    int s = g_states[i].load(std::memory_order_acquire);
    // Signalled and never taken: the signal may still be pending there.
    if (s == kSignalled || s == kGivenUp) all_answered = false;
    while ((s == kParked || s == kCapturing) && NowNs() < deadline) {
      SleepMicros(20);
      s = g_states[i].load(std::memory_order_acquire);
    }
    if (s == kParked || s == kCapturing) all_answered = false;
  }
  if (all_answered) {
    // Nothing pending anywhere: the program's disposition comes back.
    if (g_handler_installed && sigaction(g_signal, &g_old_action, nullptr) == 0) {
      g_handler_installed = false;
    }
    g_threads.store(nullptr, std::memory_order_release);
    g_count.store(0, std::memory_order_release);
    PageFree(capture->threads, capture->bytes);
  }
  // Otherwise the slots stay mapped (a late handler may still look at them)
  // and our handler stays installed as a no-op (g_active is 0).
  capture->threads = nullptr;
}

}  // namespace heapsight::preload
