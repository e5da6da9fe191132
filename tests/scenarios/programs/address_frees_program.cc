// tests/scenarios/programs/address_frees_program.cc: the events whose
// records address frees (HEAPSIGHT_PAIRING=address) must get right; each
// block's address is printed for the test to find its records.
//   basic:   one thread: malloc, new[]/delete[], new/delete, realloc that
//            moves, a realloc that fails, realloc(p, 0), a mismatched free
//   handoff: blocks allocated by one thread and freed by another, and back
//   bad:     a double free, invalid frees (stack, unaligned, inside a
//            block), a realloc of a stack address; HEAPSIGHT_ON_BAD_FREE=skip
//            keeps the program running
// Magic sizes 7000-7299 (no runtime library uses them).
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <new>

void* volatile g_sink;

namespace {

struct Big {
  char bytes[7003];
};

int Basic() {
  // Every block is allocated before any is freed, so no address is used
  // twice (stdout's buffer too: allocated by this first line).
  printf("basic\n");
  void* a = malloc(7001);  // stays live
  char* b = new char[7002];
  Big* c = new Big;
  void* q = malloc(7006);
  void* z = malloc(7007);
  char* m = new char[7008];
  void* p1 = malloc(7004);
  const uintptr_t p1_address = reinterpret_cast<uintptr_t>(p1);  // printed after the realloc
  void* p2 = realloc(p1, 7005);
  const uintptr_t p2_address = reinterpret_cast<uintptr_t>(p2);
  void* blocker = malloc(7050);  // in the way of growing p2 in place
  void* p3 = realloc(p2, 70006);
  g_sink = q;
  void* huge = realloc(g_sink, SIZE_MAX / 4);  // fails: q stays live
  const uintptr_t z_address = reinterpret_cast<uintptr_t>(z);
  void* z2 = realloc(z, 0);  // glibc: frees z, returns NULL
  printf("a=%p b=%p c=%p p1=%#lx p2=%#lx p3=%p q=%p huge=%p z=%#lx z2=%p m=%p\n", a, b,
         static_cast<void*>(c), static_cast<unsigned long>(p1_address),
         static_cast<unsigned long>(p2_address), p3, q, huge,
         static_cast<unsigned long>(z_address), z2, m);
  fflush(stdout);
  delete[] b;
  delete c;
  free(p3);
  free(q);
  g_sink = m;
  free(g_sink);  // mismatched: new[] / free
  free(blocker);
  return 0;
}

constexpr int kBlocks = 200;
void* g_blocks[kBlocks];
pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_cond_t g_cond = PTHREAD_COND_INITIALIZER;
int g_turn = 0;  // even: the allocating thread's turn

void WaitTurn(int turn) {
  pthread_mutex_lock(&g_lock);
  while (g_turn != turn) pthread_cond_wait(&g_cond, &g_lock);
  pthread_mutex_unlock(&g_lock);
}
void PassTurn() {
  pthread_mutex_lock(&g_lock);
  ++g_turn;
  pthread_cond_broadcast(&g_cond);
  pthread_mutex_unlock(&g_lock);
}

constexpr int kRounds = 4;

void* Allocator(void*) {
  for (int round = 0; round < kRounds; ++round) {
    WaitTurn(2 * round);
    for (int i = 0; i < kBlocks; ++i) g_blocks[i] = malloc(7100);
    PassTurn();
  }
  return nullptr;
}

void* Freer(void*) {
  for (int round = 0; round < kRounds; ++round) {
    WaitTurn(2 * round + 1);
    for (int i = 0; i < kBlocks; ++i) free(g_blocks[i]);
    PassTurn();
  }
  return nullptr;
}

int Handoff() {
  pthread_t a, f;
  pthread_create(&a, nullptr, Allocator, nullptr);
  pthread_create(&f, nullptr, Freer, nullptr);
  pthread_join(a, nullptr);
  pthread_join(f, nullptr);
  printf("handed off %d blocks\n", kRounds * kBlocks);
  return 0;
}

int Bad() {
  char local[64];
  void* d = malloc(7201);
  char* e = static_cast<char*>(malloc(7202));
  printf("d=%p e=%p local=%p\n", d, static_cast<void*>(e), static_cast<void*>(local));
  fflush(stdout);
  g_sink = d;
  free(g_sink);
  free(g_sink);  // double
  g_sink = local;
  free(g_sink);  // invalid: a stack address
  g_sink = e + 8;
  free(g_sink);  // invalid: not 16-byte aligned
  g_sink = e + 16;
  free(g_sink);  // invalid: inside a live block
  g_sink = local;
  g_sink = realloc(g_sink, 7203);  // invalid; skipped: NULL
  printf("realloc of a stack address: %s\n", g_sink == nullptr ? "NULL" : "a block");
  free(e);  // still live: an ordinary free
  printf("survived\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  if (strcmp(argv[1], "basic") == 0) return Basic();
  if (strcmp(argv[1], "handoff") == 0) return Handoff();
  if (strcmp(argv[1], "bad") == 0) return Bad();
  return 2;
}
