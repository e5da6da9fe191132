// preload/service_task.cc: see service_task.h.
//
// Constraints: no malloc (PageAlloc), no locks; dlsym once, on the creating
// thread, under the caller's reentry guard. The task's entry code uses raw
// system calls only. Not async-signal-safe (but InServiceTask and
// ServiceTaskTid are).
#include "preload/service_task.h"

#include <dlfcn.h>
#include <errno.h>
#include <linux/futex.h>
#include <linux/sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>

#include <atomic>
#include <cstddef>
#include <cstring>

#include "preload/clock.h"
#include "preload/host_guards.h"
#include "preload/internal_alloc.h"
#include "preload/raw_syscall.h"
#include "preload/reentry_guard.h"
#include "preload/thread_capture.h"

// The clone trampoline (x86-64). heapsight_raw_clone(flags, stack_top,
// ptid, ctid, tls, fn, arg): the child finds fn and arg on its new stack,
// calls fn(arg) with a 16-byte aligned stack and a zero frame pointer (the
// end of every unwinder's walk), and exits the task (SYS_exit, never
// exit_group) when fn returns. The parent returns the kernel's result: the
// child's tid, or -errno.
extern "C" long heapsight_raw_clone(unsigned long flags, void* stack_top, int* ptid, int* ctid,
                                    void* tls, void (*fn)(void*), void* arg)
    __attribute__((visibility("hidden")));
__asm__(
    ".pushsection .text\n"
    ".globl heapsight_raw_clone\n"
    ".hidden heapsight_raw_clone\n"
    ".type heapsight_raw_clone,@function\n"
    "heapsight_raw_clone:\n"
    "  endbr64\n"
    "  movq 8(%rsp), %rax\n"   // arg (7th argument, on the caller's stack)
    "  subq $16, %rsi\n"
    "  movq %rax, 8(%rsi)\n"   // new stack: [fn, arg] below stack_top
    "  movq %r9, 0(%rsi)\n"
    "  movq %rcx, %r10\n"      // the kernel takes ctid in r10
    "  movl $56, %eax\n"       // SYS_clone: flags, stack, ptid, ctid, tls
    "  syscall\n"
    "  testq %rax, %rax\n"
    "  jnz 1f\n"
    "  xorl %ebp, %ebp\n"
    "  popq %rax\n"            // fn
    "  popq %rdi\n"            // arg; rsp is stack_top again, 16-byte aligned
    "  callq *%rax\n"
    "  movl $60, %eax\n"       // SYS_exit: this task only
    "  xorl %edi, %edi\n"
    "  syscall\n"
    "  hlt\n"
    "1:\n"
    "  retq\n"
    ".size heapsight_raw_clone, .-heapsight_raw_clone\n"
    ".popsection\n");

namespace heapsight::preload {
namespace {

constexpr size_t kStackBytes = 256 * 1024;
// Room above the thread pointer for glibc's thread descriptor (struct
// pthread, 2304 bytes in glibc 2.36): zeroed, so a libc wrapper that reads
// a field of it (cancellation state, the multiple-threads flag) reads 0
// from memory of ours. Generous on purpose.
constexpr size_t kTcbRoom = 16 * 1024;
// x86-64 tcbhead_t offsets (the ABI the compiler and glibc share).
constexpr size_t kTcbSelf = 0x00;          // tcb: the thread pointer itself
constexpr size_t kTcbSelfPthread = 0x10;   // self: THREAD_SELF
constexpr size_t kTcbStackGuard = 0x28;    // -fstack-protector's canary
constexpr size_t kTcbPointerGuard = 0x30;  // PTR_MANGLE's key

struct TaskStart {
  void (*main)(void*);
  void* arg;
  int role;
  char name[16];
};

struct Slot {
  // The tid word: set by the kernel at the start (CLONE_PARENT_SETTID),
  // cleared and futex-woken (shared, not private) at the task's exit.
  std::atomic<int> tid_word{0};
  // One mapping for the process's life, reused by each task of this role
  // (one at a time): [stack][static TLS block][TCB room]. A fork child
  // inherits it.
  uint8_t* memory = nullptr;
  size_t memory_bytes = 0;
  TaskStart start;
};
Slot g_slots[kServiceTaskRoles];

size_t g_tls_bytes = 0;   // static TLS block (rounded to its alignment)
size_t g_tls_align = 64;

// Which task this is (TaskRole), on a service task only.
thread_local int t_service_task_role __attribute__((tls_model("initial-exec"))) = 0;

uint64_t ReadFs(size_t offset) {
  uint64_t v;
  __asm__ volatile("movq %%fs:(%1), %0" : "=r"(v) : "r"(offset));
  return v;
}

// The size of glibc's static TLS block (every initially loaded module's
// TLS plus the surplus for dlopen'ed initial-exec users, plus the TCB).
bool LearnTlsSize() {
  if (g_tls_bytes != 0) return true;
  using Info = void (*)(size_t*, size_t*);
  auto info = reinterpret_cast<Info>(dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info"));
  if (info == nullptr) return false;
  size_t size = 0, align = 0;
  info(&size, &align);
  if (size == 0 || size > (64u << 20)) return false;
  if (align < 64) align = 64;
  if ((align & (align - 1)) != 0 || align > 4096) return false;
  g_tls_align = align;
  g_tls_bytes = (size + align - 1) / align * align;
  return true;
}

// Runs on the task, first thing: our TLS is zeroed memory of its own.
void TaskEntry(void* start) {
  const auto* s = static_cast<const TaskStart*>(start);
  t_in_service_task = true;
  t_service_task_role = s->role;
  // Everything the task does is heapsight's own (its thread_locals start at
  // 0, not at their initializers: set what matters).
  ++t_reentry_depth;
  RawSyscall(SYS_prctl, PR_SET_NAME, reinterpret_cast<long>(s->name));
  s->main(s->arg);
  ExemptFromCapture(s->role, 0);
}

}  // namespace

bool StartServiceTask(int role, void (*main)(void*), void* arg, const char* name, int* err) {
  *err = 0;
  Slot& slot = g_slots[role];
  if (slot.tid_word.load(std::memory_order_acquire) != 0) {
    *err = EBUSY;
    return false;
  }
  if (!LearnTlsSize()) {
    *err = ENOSYS;
    return false;
  }
  if (slot.memory == nullptr) {
    size_t bytes = kStackBytes + g_tls_bytes + g_tls_align + kTcbRoom;
    bytes = (bytes + 4095) / 4096 * 4096;
    slot.memory = static_cast<uint8_t*>(PageAlloc(bytes));
    if (slot.memory == nullptr) {
      *err = ENOMEM;
      return false;
    }
    slot.memory_bytes = bytes;
  }
  // The TLS area from scratch (a former task's values are not ours).
  uint8_t* tls_area = slot.memory + kStackBytes;
  std::memset(tls_area, 0, slot.memory_bytes - kStackBytes);
  auto tp = reinterpret_cast<uintptr_t>(tls_area) + g_tls_bytes;
  tp = (tp + g_tls_align - 1) & ~(uintptr_t{g_tls_align} - 1);
  auto* tcb = reinterpret_cast<uint8_t*>(tp);
  auto put = [tcb](size_t offset, uint64_t v) { std::memcpy(tcb + offset, &v, sizeof v); };
  put(kTcbSelf, tp);
  put(kTcbSelfPthread, tp);
  put(kTcbStackGuard, ReadFs(kTcbStackGuard));
  put(kTcbPointerGuard, ReadFs(kTcbPointerGuard));

  slot.start.main = main;
  slot.start.arg = arg;
  slot.start.role = role;
  std::memset(slot.start.name, 0, sizeof slot.start.name);
  std::strncpy(slot.start.name, name, sizeof slot.start.name - 1);

  // Every signal blocked in the task (it inherits this thread's mask); the
  // raw call, since glibc's would keep SIGCANCEL and SIGSETXID open.
  uint64_t all = ~uint64_t{0}, old = 0;
  RawSyscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&all),
             reinterpret_cast<long>(&old), sizeof all);
  unsigned long flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
                        CLONE_SYSVSEM | CLONE_SETTLS | CLONE_PARENT_SETTID |
                        CLONE_CHILD_CLEARTID;
  auto* word = reinterpret_cast<int*>(&slot.tid_word);
  long tid = heapsight_raw_clone(flags, slot.memory + kStackBytes, word, word, tcb, TaskEntry,
                                 &slot.start);
  RawSyscall(SYS_rt_sigprocmask, SIG_SETMASK, reinterpret_cast<long>(&old), 0, sizeof old);
  if (tid < 0) {
    slot.tid_word.store(0, std::memory_order_release);
    *err = static_cast<int>(-tid);
    return false;
  }
  // At once, before any leak scan could list the task and wait for an
  // answer it never gives (it blocks the scan's signal).
  ExemptFromCapture(role, static_cast<pid_t>(tid));
  return true;
}

bool WaitServiceTaskExit(int role, uint64_t timeout_ns) {
  std::atomic<int>& word = g_slots[role].tid_word;
  uint64_t deadline = MonotonicNs() + timeout_ns;
  for (;;) {
    int v = word.load(std::memory_order_acquire);
    if (v == 0) return true;
    uint64_t now = MonotonicNs();
    if (now >= deadline) return false;
    uint64_t left = deadline - now;
    timespec t{static_cast<time_t>(left / 1000000000u), static_cast<long>(left % 1000000000u)};
    // FUTEX_WAIT, not _PRIVATE: the kernel's wake at the task's exit is a
    // shared-futex wake, which a private waiter would not see.
    RawSyscall(SYS_futex, reinterpret_cast<long>(&word), FUTEX_WAIT, v,
               reinterpret_cast<long>(&t));
  }
}

pid_t ServiceTaskTid(int role) { return g_slots[role].tid_word.load(std::memory_order_acquire); }

bool InServiceTask() { return t_in_service_task; }

bool OnServiceTask(int role) { return t_in_service_task && t_service_task_role == role; }

void ForgetServiceTaskInChild(int role) {
  g_slots[role].tid_word.store(0, std::memory_order_relaxed);
  ExemptFromCapture(role, 0);
}

}  // namespace heapsight::preload
