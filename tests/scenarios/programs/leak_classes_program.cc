// tests/scenarios/programs/leak_classes_program.cc: blocks whose only
// reference lives where a leak scan must look: TLS, another thread's stack,
// another thread's registers; lost cycles; and free errors. Each mode leaks
// or keeps blocks of distinctive sizes (see leak_classes_test.cc).
//   tls          4001 via thread_local, 4002 via __thread (main thread);
//                4003 via thread_local of a live worker thread;
//                4004 lost (control)
//   stack        4101 only in a parked worker's stack frame; 4102 lost
//   register     4201 only in a callee-saved register (r12..r15) of a
//                spinning worker; 4202 lost
//   blocked      4301 on the stack of a worker that blocks every signal and
//                sits in read(2); 4302 lost
//   cycle        4401 <-> 4402 lost cycle (one definite, one indirect);
//                4403 points to itself (definite); 4404 -> 4405 chain
//                (definite, indirect)
//   interior     4501 held by a pointer into its middle (possibly lost);
//                4502 reachable only from 4501 (possibly lost too)
//   double       double free of a 4601 block; prints "alive" afterwards
//   invalid      free of a stack address; prints "alive"
//   mismatch     malloc/delete of 4701, new/free of 4702; prints "alive"
//   dyntls       4811 (main thread) and 4812 (a live worker) only in a
//                __thread variable of a dlopen'ed module (dynamic TLS);
//                4813 lost
//   request      on-demand scans through __heapsight_leak_check (dlsym):
//                prints the lost-block count before and after leaking 4801;
//                then keeps 4802 in TLS; the exit scan follows
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

thread_local void* t_local = nullptr;
__thread void* t_gnu = nullptr;
std::atomic<int> g_ready{0};
int g_pipe[2];

__attribute__((noinline)) void* Alloc(size_t n) {
  void* p = std::malloc(n);
  std::memset(p, 0, n);
  return p;
}

__attribute__((noinline)) void Leak(size_t n) {
  void* p = Alloc(n);
  __asm__ volatile("" : : "r"(p) : "memory");
}

__attribute__((noinline)) void Scrub() {
  volatile char buf[32768];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = 0;
}

void* TlsWorker(void*) {
  t_local = Alloc(4003);
  g_ready.store(1);
  for (;;) pause();
}

__attribute__((noinline)) void* StackWorker(void*) {
  void* volatile held = Alloc(4101);
  g_ready.store(1);
  for (;;) pause();
  return held;
}

// Keeps the pointer only in r12..r15 (XOR-free: the value itself) while
// spinning; the stack holds no copy.
__attribute__((noinline)) void* RegisterWorker(void*) {
  uintptr_t p = reinterpret_cast<uintptr_t>(Alloc(4201));
  Scrub();  // overwrite Alloc's dead frame (and its copies of the pointer)
  __asm__ volatile(
      "mov %0, %%r12\n\t"
      "mov %%r12, %%r13\n\t"
      "mov %%r12, %%r14\n\t"
      "mov %%r12, %%r15\n\t"
      "xor %0, %0\n\t"
      : "+r"(p)
      :
      : "r12", "r13", "r14", "r15", "memory");
  g_ready.store(1);
  __asm__ volatile(
      "1: pause\n\t"
      "jmp 1b\n\t" ::: "memory");
  return nullptr;
}

void (*g_plugin_keep)(size_t);

void* DynTlsWorker(void*) {
  g_plugin_keep(4812);
  g_ready.store(1);
  for (;;) pause();
}

__attribute__((noinline)) void* BlockedWorker(void*) {
  sigset_t all;
  sigfillset(&all);
  pthread_sigmask(SIG_BLOCK, &all, nullptr);
  void* volatile held = Alloc(4301);
  g_ready.store(1);
  char c;
  while (read(g_pipe[0], &c, 1) != 0) {
  }
  return held;
}

void StartAndWait(void* (*fn)(void*)) {
  pthread_t t;
  g_ready.store(0);
  pthread_create(&t, nullptr, fn, nullptr);
  while (g_ready.load() == 0) usleep(1000);
}

struct Node {
  Node* next;
  char pad[1];
};

__attribute__((noinline)) void MakeCycle() {
  auto* a = static_cast<Node*>(Alloc(4401));
  auto* b = static_cast<Node*>(Alloc(4402));
  a->next = b;
  b->next = a;
  auto* self = static_cast<Node*>(Alloc(4403));
  self->next = self;
  auto* head = static_cast<Node*>(Alloc(4404));
  head->next = static_cast<Node*>(Alloc(4405));
}

char* g_middle;

__attribute__((noinline)) void MakeInterior() {
  auto* outer = static_cast<char*>(Alloc(4501));
  auto* inner = Alloc(4502);
  std::memcpy(outer, &inner, sizeof inner);
  g_middle = outer + 100;
}

}  // namespace

int main(int argc, char** argv) {
  const char* mode = argc > 1 ? argv[1] : "";
  if (std::strcmp(mode, "tls") == 0) {
    t_local = Alloc(4001);
    t_gnu = Alloc(4002);
    StartAndWait(TlsWorker);
    Leak(4004);
  } else if (std::strcmp(mode, "stack") == 0) {
    StartAndWait(StackWorker);
    Leak(4102);
  } else if (std::strcmp(mode, "register") == 0) {
    StartAndWait(RegisterWorker);
    Leak(4202);
  } else if (std::strcmp(mode, "blocked") == 0) {
    if (pipe(g_pipe) != 0) return 2;
    StartAndWait(BlockedWorker);
    usleep(20000);  // let it enter read(2)
    Leak(4302);
  } else if (std::strcmp(mode, "cycle") == 0) {
    MakeCycle();
  } else if (std::strcmp(mode, "interior") == 0) {
    MakeInterior();
  } else if (std::strcmp(mode, "double") == 0) {
    void* p = Alloc(4601);
    std::free(p);
    std::free(p);
    std::puts("alive");
  } else if (std::strcmp(mode, "invalid") == 0) {
    char buf[64];
    std::free(buf + 16);
    std::puts("alive");
  } else if (std::strcmp(mode, "mismatch") == 0) {
    char* p = static_cast<char*>(Alloc(4701));
    delete p;
    char* q = new char[4702];
    std::free(q);
    std::puts("alive");
  } else if (std::strcmp(mode, "dyntls") == 0) {
    void* plugin = dlopen("libscenario_tls_plugin.so", RTLD_NOW);
    if (plugin == nullptr) return 4;
    g_plugin_keep = reinterpret_cast<void (*)(size_t)>(dlsym(plugin, "plugin_keep"));
    if (g_plugin_keep == nullptr) return 5;
    g_plugin_keep(4811);
    StartAndWait(DynTlsWorker);
    Leak(4813);
  } else if (std::strcmp(mode, "request") == 0) {
    auto check = reinterpret_cast<long (*)()>(dlsym(RTLD_DEFAULT, "__heapsight_leak_check"));
    if (check == nullptr) return 3;
    long before = check();
    Leak(4801);
    Scrub();
    long after = check();
    t_local = Alloc(4802);
    std::printf("%ld %ld\n", before, after);
  } else {
    return 2;
  }
  Scrub();
  std::fflush(stdout);
  // Threads still run (or sleep) while the process exits.
  std::exit(0);
}
