// tests/scenarios/programs/leak_roots_program.cc: blocks whose only
// reference lives in memory the program mapped itself (memcheck's root set
// includes every writable mapping), and references that must NOT count as
// roots because they live in the allocator's memory or in a lost block.
// See leak_roots_test.cc. Sizes:
//   5101  only in a private anonymous mmap'ed region        -> reachable
//   5102  only in a MAP_SHARED|MAP_ANONYMOUS region           -> reachable
//   5103  only in a region mapped PROT_NONE, then made rw     -> reachable
//   5104  only in a block that was freed (heap memory)        -> definitely lost
//   5105  lost block holding the only pointer to 5106         -> definitely lost
//   5106                                                      -> indirectly lost
//   5107  only in a lost 1 MiB block (an mmap'ed chunk)       -> indirectly lost
//   5108  only in a block freed by another thread (its arena) -> definitely lost
//   5109  only in a private file mapping (MAP_PRIVATE, rw)    -> reachable
//   5110  only in the executable's last data page, past the    -> reachable
//         end of its bss (where ld.so keeps its own early
//         allocations, the main link_map among them)
//   1048576 the lost 1 MiB block                              -> definitely lost
// Pointers in pages among many never written (the scan skips those,
// page_residency.h; memcheck reads them all, zeros, and agrees):
//   5111  only at 2.5 MiB into an 8 MiB private anonymous     -> reachable
//         mmap'ed region, its other pages never written
//   5112  only at 3 MiB into a reachable 8 MiB block (kept in -> reachable
//         a global, its other pages never written)
//   5113  only at 5 MiB into a lost 6 MiB block               -> indirectly lost
//   8388608 the 8 MiB block                                   -> reachable
//   6291456 the lost 6 MiB block                              -> definitely lost
// The regions themselves stay mapped until exit.
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstring>

namespace {

constexpr size_t kRegion = 1 << 16;

__attribute__((noinline)) void* Alloc(size_t n) {
  void* p = std::malloc(n);
  std::memset(p, 0, n);
  return p;
}

// Stores a fresh block's address at `slot`; nothing else keeps it.
__attribute__((noinline)) void StoreNew(void* slot, size_t n) {
  void* p = Alloc(n);
  std::memcpy(slot, &p, sizeof p);
}

__attribute__((noinline)) void* Map(int prot, int flags) {
  void* p = mmap(nullptr, kRegion, prot, flags | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) std::abort();
  return p;
}

__attribute__((noinline)) void FreedHolder() {
  char* holder = static_cast<char*>(Alloc(5000));
  StoreNew(holder + 256, 5104);
  std::free(holder);
}

__attribute__((noinline)) void LostHolders() {
  char* holder = static_cast<char*>(Alloc(5105));
  StoreNew(holder + 64, 5106);
  char* big = static_cast<char*>(Alloc(1 << 20));
  StoreNew(big + 4096, 5107);
}


__attribute__((noinline)) void ThreadArenaHolder() {
  char* holder = static_cast<char*>(Alloc(5001));
  StoreNew(holder + 256, 5108);
  std::free(holder);
}

void* ThreadArena(void*) {
  ThreadArenaHolder();
  return nullptr;
}

__attribute__((noinline)) void FileMapping() {
  char path[] = "/tmp/leak_roots_XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0 || ftruncate(fd, kRegion) != 0) std::abort();
  unlink(path);
  void* p = mmap(nullptr, kRegion, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
  close(fd);
  if (p == MAP_FAILED) std::abort();
  StoreNew(static_cast<char*>(p) + 128, 5109);
}

extern "C" char _end[];  // the linker's end of the executable's bss

// The rest of the page holding _end is mapped with the data segment but is
// no part of it; ld.so's minimal malloc carves its first allocations from
// the same place in its own last page. No room (_end at a page's end or a
// word before it): nothing stored, the test sees no 5110 block.
__attribute__((noinline)) void PageTail() {
  uintptr_t slot = (reinterpret_cast<uintptr_t>(_end) + 15) & ~uintptr_t{7};
  if ((slot & 4095) < 8) return;
  StoreNew(reinterpret_cast<void*>(slot), 5110);
}

void* g_sparse_block;  // the 8 MiB block: reachable from here

// Large blocks and a region written in one page each: malloc, not Alloc
// (whose memset would write every page).
__attribute__((noinline)) void SparseHolders() {
  constexpr size_t kMiB = 1 << 20;
  void* region = mmap(nullptr, 8 * kMiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                      -1, 0);
  if (region == MAP_FAILED) std::abort();
  StoreNew(static_cast<char*>(region) + 5 * kMiB / 2 + 40, 5111);
  g_sparse_block = std::malloc(8 * kMiB);
  if (g_sparse_block == nullptr) std::abort();
  StoreNew(static_cast<char*>(g_sparse_block) + 3 * kMiB, 5112);
}

// Called early, so that the later calls overwrite the registers and stack
// slots that held pointers into the lost block.
__attribute__((noinline)) void LostSparseHolder() {
  char* lost = static_cast<char*>(std::malloc(6 << 20));
  if (lost == nullptr) std::abort();
  StoreNew(lost + (5 << 20) + 8, 5113);
}

__attribute__((noinline)) void Scrub() {
  volatile char buf[32768];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = 0;
}

}  // namespace

int main() {
  StoreNew(static_cast<char*>(Map(PROT_READ | PROT_WRITE, MAP_PRIVATE)) + 8, 5101);
  StoreNew(static_cast<char*>(Map(PROT_READ | PROT_WRITE, MAP_SHARED)) + 16, 5102);
  char* late = static_cast<char*>(Map(PROT_NONE, MAP_PRIVATE));
  if (mprotect(late, kRegion, PROT_READ | PROT_WRITE) != 0) return 1;
  StoreNew(late + 24, 5103);
  late = nullptr;
  LostSparseHolder();
  FreedHolder();
  LostHolders();
  pthread_t t;
  if (pthread_create(&t, nullptr, ThreadArena, nullptr) != 0) return 1;
  pthread_join(t, nullptr);
  FileMapping();
  PageTail();
  SparseHolders();
  Scrub();
  std::puts("done");
  return 0;
}
