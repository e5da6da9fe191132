// tests/scenarios/programs/leak_heuristics_program.cc: blocks kept only by
// an interior pointer of the kinds memcheck's --leak-check-heuristics
// accept (stdstring, length64, newarray, multipleinheritance), each next to
// a near miss that stays "possibly lost". See leak_heuristics_test.cc.
// Sizes:
//   5225  stdstring: {length 10, capacity 5200, refcount}, pointer to +24
//   5226  near miss: capacity 5200 but block 1 byte longer (possible)
//   5230  length64: first word 5222 (= size - 8), pointer to +8
//   5231  near miss: first word 0 (possible; not a new[] cookie either)
//   5240  newarray: new Elem[436] (12-byte elements with a destructor),
//         the pointer new[] returned (+8, after the element count)
//   5249  near miss: first word 10, 5241 % 10 != 0 (possible)
//   5264  multipleinheritance: `Base2* p = new Both` (a pointer to the
//         secondary base); each vtable has just two virtual functions, so
//         the words after them are not code
//   5272  near miss: a pointer 16 bytes into an object whose word there is
//         not a vtable address (possible)
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

void* g_keep[8];

__attribute__((noinline)) char* Alloc(size_t n) {
  char* p = static_cast<char*>(std::malloc(n));
  std::memset(p, 0, n);
  return p;
}

void PutWord(char* p, size_t index, uint64_t value) {
  std::memcpy(p + index * sizeof value, &value, sizeof value);
}

struct Elem {
  ~Elem() { std::puts("never"); }
  char bytes[12];
};

struct Base1 {
  virtual ~Base1() = default;
  char pad1[2000];
};

struct Base2 {
  virtual void Two() {}
  virtual void Three() {}
  char pad2[3248];
};

struct Both : Base1, Base2 {
  void Two() override { std::puts("two"); }
};

__attribute__((noinline)) void Make() {
  char* s = Alloc(5225);
  PutWord(s, 0, 10);
  PutWord(s, 1, 5200);
  g_keep[0] = s + 24;
  char* s2 = Alloc(5226);
  PutWord(s2, 0, 10);
  PutWord(s2, 1, 5200);
  g_keep[1] = s2 + 24;
  char* l = Alloc(5230);
  PutWord(l, 0, 5222);
  g_keep[2] = l + 8;
  char* l2 = Alloc(5231);
  g_keep[3] = l2 + 8;
  g_keep[4] = new Elem[436];
  char* a2 = Alloc(5249);
  PutWord(a2, 0, 10);
  g_keep[5] = a2 + 8;
  Base2* both = new Both;
  g_keep[6] = both;
  char* m2 = Alloc(5272);
  PutWord(m2, 0, 0x1234);
  g_keep[7] = m2 + 16;
}

// Overwrites the dead frames Make() left below main's, so no stale copy of a
// block's start stays on the stack for the exit scan to find (memcheck
// would not see it: it ignores stack words not written since the frame
// was pushed again).
__attribute__((noinline)) void Scrub() {
  volatile char buf[32768];
  for (size_t i = 0; i < sizeof buf; i++) buf[i] = 0;
}

}  // namespace

int main() {
  static_assert(sizeof(Both) == 5264);
  static_assert(sizeof(Elem) * 436 + 8 == 5240);
  Make();
  Scrub();
  std::printf("%p\n", static_cast<void*>(g_keep));
  return 0;
}
