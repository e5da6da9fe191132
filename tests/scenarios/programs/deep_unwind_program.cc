// tests/scenarios/programs/deep_unwind_program.cc: stacks built to fool an
// unwinder that splices the outer frames of an earlier stack
// (preload/unwind_cache.h). Every allocation's size names the stack it is
// made from; the test checks each record's frames by name, and that the
// cache's stacks equal libunwind's (HEAPSIGHT_VERIFY_UNWIND).
//  - recursion of varying depth (0-150 frames), in random order;
//  - two callers with the same frame layout (SameP, SameR) calling the same
//    function at the same stack address: their callees' frames have the
//    same ip and sp, only a return address further out differs;
//  - longjmp out of a recursion of varying depth;
//  - C++ exceptions thrown through a recursion of varying depth;
//  - signal handlers that allocate, on the thread's stack and on an
//    alternate signal stack;
//  - a swapcontext coroutine with a stack of its own;
//  - threads run one after another, whose stacks glibc reuses;
//  - a recursion with 2 KiB frames that grows the main stack's mapping
//    (from about 132 KiB) after the cache has looked up its bounds.
// Prints "allocs N": how many allocations of the sizes above it made.
//
// Built twice (tests/scenarios/meson.build): -O2 without frame pointers
// and -O0 with them.
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <ucontext.h>

void* volatile g_sink;
static long g_allocs = 0;

// Every call below is kept a real call (no tail call, no inlining), so each
// function has a frame of its own.
#define KEEP() asm volatile("" ::: "memory")

extern "C" __attribute__((noipa)) void Leaf(size_t size) {
  void* p = malloc(size);
  g_sink = p;
  free(p);
  ++g_allocs;
  KEEP();
}

static unsigned g_rng = 12345;
static unsigned Next() {
  g_rng = g_rng * 1103515245u + 12345u;
  return g_rng >> 16;
}

// 10000 + depth: Leaf, Recurse x (depth + 1), main.
extern "C" __attribute__((noipa)) void Recurse(int depth, int left) {
  if (left == 0) {
    Leaf(static_cast<size_t>(10000 + depth));
  } else {
    Recurse(depth, left - 1);
  }
  KEEP();
}

// 2001 / 2002: Leaf, Q, SameP / SameR, TrapLoop, Base x 41, main.
extern "C" __attribute__((noipa)) void Q(size_t size) { Leaf(size); KEEP(); }
extern "C" __attribute__((noipa)) void SameP() { Q(2001); KEEP(); }
extern "C" __attribute__((noipa)) void SameR() { Q(2002); KEEP(); }
extern "C" __attribute__((noipa)) void TrapLoop() {
  for (int i = 0; i < 4000; ++i) {
    if (Next() % 2 == 0) {
      SameP();
    } else {
      SameR();
    }
  }
  KEEP();
}
extern "C" __attribute__((noipa)) void Base(int left) {
  if (left == 0) {
    TrapLoop();
  } else {
    Base(left - 1);
  }
  KEEP();
}

// 3000 + depth: Leaf, JmpDown x (depth + 1), JmpTop, main.
static jmp_buf g_jmp;
extern "C" __attribute__((noipa)) void JmpDown(int depth, int left) {
  if (left != 0) {
    JmpDown(depth, left - 1);
  } else {
    Leaf(static_cast<size_t>(3000 + depth));
  }
  if (left == 0 || depth >= 0) longjmp(g_jmp, 1);  // (from the bottom: the others never get here)
  KEEP();
}
extern "C" __attribute__((noipa)) void JmpTop() {
  for (int i = 0; i < 1500; ++i) {
    volatile int depth = static_cast<int>(Next() % 40);
    if (setjmp(g_jmp) == 0) JmpDown(depth, depth);
  }
  KEEP();
}

// 4000 + depth: Leaf, ThrowDown x (depth + 1), ThrowTop, main; 4500 from
// the handler: Leaf, ThrowTop, main.
extern "C" __attribute__((noipa)) void ThrowDown(int depth, int left) {
  if (left != 0) {
    ThrowDown(depth, left - 1);
  } else {
    Leaf(static_cast<size_t>(4000 + depth));
  }
  if (left == 0 || depth >= 0) throw depth;  // (from the bottom: the others never get here)
  KEEP();
}
extern "C" __attribute__((noipa)) void ThrowTop() {
  for (int i = 0; i < 800; ++i) {
    int depth = static_cast<int>(Next() % 40);
    try {
      ThrowDown(depth, depth);
    } catch (int) {
      Leaf(4500);
    }
  }
  KEEP();
}

// 5000 + depth (thread's stack) / 5500 + depth (alternate stack): Leaf,
// OnSignal, libc's frames, SigDown x (depth + 1), SigTop, main.
static volatile int g_sig_depth = 0;
extern "C" __attribute__((noipa)) void OnSignal(int signal) {
  Leaf(static_cast<size_t>((signal == SIGUSR1 ? 5000 : 5500) + g_sig_depth));
  KEEP();
}
extern "C" __attribute__((noipa)) void SigDown(int depth, int left, int signal) {
  if (left == 0) {
    g_sig_depth = depth;
    raise(signal);
  } else {
    SigDown(depth, left - 1, signal);
  }
  KEEP();
}
extern "C" __attribute__((noipa)) void SigTop() {
  static char alt_stack[64 * 1024];
  stack_t ss = {};
  ss.ss_sp = alt_stack;
  ss.ss_size = sizeof alt_stack;
  sigaltstack(&ss, nullptr);
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigaction(SIGUSR1, &sa, nullptr);
  sa.sa_flags = SA_ONSTACK;
  sigaction(SIGUSR2, &sa, nullptr);
  for (int i = 0; i < 600; ++i) {
    int depth = static_cast<int>(Next() % 30);
    SigDown(depth, depth, i % 3 == 0 ? SIGUSR2 : SIGUSR1);
    Recurse(depth, depth);  // and the same depths without a signal
  }
  KEEP();
}

// 6000 + depth: Leaf, CoDown x (depth + 1), CoEntry, libc's frames.
static ucontext_t g_main_context, g_co_context;
static volatile int g_co_depth = 0;
extern "C" __attribute__((noipa)) void CoDown(int depth, int left) {
  if (left == 0) {
    Leaf(static_cast<size_t>(6000 + depth));
  } else {
    CoDown(depth, left - 1);
  }
  KEEP();
}
extern "C" __attribute__((noipa)) void CoEntry() {
  for (;;) {
    CoDown(g_co_depth, g_co_depth);
    swapcontext(&g_co_context, &g_main_context);
  }
}
extern "C" __attribute__((noipa)) void CoTop() {
  static char co_stack[256 * 1024];
  getcontext(&g_co_context);
  g_co_context.uc_stack.ss_sp = co_stack;
  g_co_context.uc_stack.ss_size = sizeof co_stack;
  g_co_context.uc_link = nullptr;
  makecontext(&g_co_context, CoEntry, 0);
  for (int i = 0; i < 800; ++i) {
    g_co_depth = static_cast<int>(Next() % 30);
    swapcontext(&g_main_context, &g_co_context);
    Recurse(g_co_depth, g_co_depth);  // the main stack between switches
  }
  KEEP();
}

// 7000 + depth: Leaf, TRecurse x (depth + 1), ThreadMain, libc's frames.
extern "C" __attribute__((noipa)) void TRecurse(int depth, int left) {
  if (left == 0) {
    Leaf(static_cast<size_t>(7000 + depth));
  } else {
    TRecurse(depth, left - 1);
  }
  KEEP();
}
extern "C" __attribute__((noipa)) void* ThreadMain(void* arg) {
  int depth = static_cast<int>(reinterpret_cast<intptr_t>(arg));
  for (int i = 0; i < 200; ++i) TRecurse(depth, depth);
  KEEP();
  return nullptr;
}

// 8000 + depth: Leaf, BigRecurse x (depth + 1), main.
extern "C" __attribute__((noipa)) void BigRecurse(int depth, int left) {
  volatile char frame[2048];
  frame[0] = static_cast<char>(left);
  if (left == 0) {
    Leaf(static_cast<size_t>(8000 + depth));
  } else {
    BigRecurse(depth, left - 1);
  }
  frame[1] = frame[0];
  KEEP();
}

int main() {
  for (int i = 0; i < 6000; ++i) {
    int depth = static_cast<int>(Next() % 151);
    Recurse(depth, depth);
  }
  for (int i = 0; i < 2000; ++i) {
    int depth = 100 + static_cast<int>(Next() % 100);  // 200-400 KiB of stack
    BigRecurse(depth, depth);
  }
  Base(40);
  JmpTop();
  ThrowTop();
  SigTop();
  CoTop();
  // One thread after another: glibc hands each the stack of the last.
  for (int i = 0; i < 24; ++i) {
    pthread_t t;
    if (pthread_create(&t, nullptr, ThreadMain, reinterpret_cast<void*>((i % 4) * 10)) != 0) {
      return 1;
    }
    pthread_join(t, nullptr);
  }
  printf("allocs %ld\n", g_allocs);
  return 0;
}
