// tests/scenarios/programs/unwind_cache_program.cc: many allocations whose
// call sites enter malloc at the same point (same return address, same
// stack pointer) with different stacks above it, the case the unwind cache
// (preload/unwind_cache.h) must tell apart. Every allocation's size names
// the stack it was made from; the test checks every record's frames.
//
// Built twice: -O2 without frame pointers (rsp-based frames, what libunwind
// users have) and -O0 with them (rbp-based frames).
#include <alloca.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>

void* volatile g_sink;

// Every call below is kept a real call (no tail call, no inlining), so each
// function has a frame of its own.
#define KEEP() asm volatile("" ::: "memory")

extern "C" __attribute__((noinline)) void Leaf(size_t size) {
  void* p = malloc(size);
  g_sink = p;
  free(p);
  KEEP();
}

// Same frame layout: Leaf is entered with the same sp from each of them.
extern "C" __attribute__((noinline)) void CallerA() { Leaf(1001); KEEP(); }
extern "C" __attribute__((noinline)) void CallerB() { Leaf(1002); KEEP(); }
extern "C" __attribute__((noinline)) void CallerC() { Leaf(1003); KEEP(); }
extern "C" __attribute__((noinline)) void CallerD() { Leaf(1004); KEEP(); }
extern "C" __attribute__((noinline)) void CallerE() { Leaf(1005); KEEP(); }

// Two levels, so the difference is one frame further up.
extern "C" __attribute__((noinline)) void Mid(size_t size) { Leaf(size); KEEP(); }
extern "C" __attribute__((noinline)) void OuterA() { Mid(2001); KEEP(); }
extern "C" __attribute__((noinline)) void OuterB() { Mid(2002); KEEP(); }

// Recursion: depth d allocates 3000 + d.
extern "C" __attribute__((noinline)) void Recurse(int depth, int left) {
  if (left == 0) {
    Leaf(static_cast<size_t>(3000 + depth));
  } else {
    Recurse(depth, left - 1);
  }
  KEEP();
}

// A variable-sized frame: rbp-based even without -fno-omit-frame-pointer.
extern "C" __attribute__((noinline)) void Dynamic(int n) {
  volatile char* buf = static_cast<volatile char*>(alloca(static_cast<size_t>(n) * 16 + 16));
  buf[0] = 1;
  Leaf(static_cast<size_t>(4000 + n));
  KEEP();
}

// An over-aligned local: the frame realigns the stack (its CFA is loaded
// from memory), which the cache must refuse, not get wrong.
extern "C" __attribute__((noinline)) void Realigned(int k) {
  alignas(64) volatile char local[64];
  local[0] = static_cast<char>(k);
  g_sink = const_cast<char*>(local);
  Leaf(static_cast<size_t>(5000 + (k & 1)));
  KEEP();
}
extern "C" __attribute__((noinline)) void RealignedCallerA() { Realigned(0); KEEP(); }
extern "C" __attribute__((noinline)) void RealignedCallerB() { Realigned(1); KEEP(); }

extern "C" __attribute__((noinline)) void Worker() {
  for (int i = 0; i < 2000; ++i) {
    switch (i % 3) {
      case 0: CallerA(); break;
      case 1: OuterB(); break;
      default: Recurse(2, 2); break;
    }
  }
  KEEP();
}

int main() {
  // Pseudo-random order, so no stack follows from the one before.
  unsigned x = 12345;
  // Phase 1: three stacks at one entry point, which the cache can hold at
  // once (it has four ways a set): mostly hits, each checked.
  for (int i = 0; i < 6000; ++i) {
    x = x * 1103515245u + 12345u;
    switch ((x >> 16) % 3) {
      case 0: CallerA(); break;
      case 1: CallerB(); break;
      default: CallerC(); break;
    }
  }
  // Phase 2: everything at once (more stacks per entry point than ways).
  for (int i = 0; i < 30000; ++i) {
    x = x * 1103515245u + 12345u;
    switch ((x >> 16) % 12) {
      case 0: CallerA(); break;
      case 1: CallerB(); break;
      case 2: CallerC(); break;
      case 3: CallerD(); break;
      case 4: CallerE(); break;
      case 5: OuterA(); break;
      case 6: OuterB(); break;
      case 7: Recurse(static_cast<int>((x >> 8) % 4), static_cast<int>((x >> 8) % 4)); break;
      case 8: Dynamic(static_cast<int>((x >> 8) % 3)); break;
      case 9: RealignedCallerA(); break;
      case 10: RealignedCallerB(); break;
      default: {
        // Another thread, whose stacks are the same functions at other
        // addresses.
        if (i % 1000 == 11) std::thread(Worker).join();
        break;
      }
    }
  }
  // Phase 3: a fork child, which inherits the parent's learnt stacks, makes
  // phase 1's calls again (sizes 2001 and 2002 from OuterA/OuterB, too, so
  // its trace tells them apart from the parent's).
  pid_t child = fork();
  if (child == 0) {
    for (int i = 0; i < 3000; ++i) {
      x = x * 1103515245u + 12345u;
      switch ((x >> 16) % 4) {
        case 0: CallerA(); break;
        case 1: CallerB(); break;
        case 2: OuterA(); break;
        default: OuterB(); break;
      }
    }
    exit(0);
  }
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child || !WIFEXITED(status)) return 1;
  return WEXITSTATUS(status);
}
