// tests/scenarios/programs/rotating_sites_program.cc: one loop calling K
// allocating functions in turn (argv[2], at most 8), R rounds (argv[1]):
// K call sites at one stack depth, the pattern of an interpreter's
// allocation sites. The unwind cache keeps one memo per site (8), so in the
// steady state every allocation's stack is a memo's whole, with no frame
// stepped (deep_unwind_test.cc, RotatingSites).
#include <cstdio>
#include <cstdlib>

namespace {

// The asm keeps each call to malloc a real call (not a tail call): the
// return address into the site is the stack's first frame.
#define SITE(n)                                              \
  __attribute__((noinline)) void* Site##n(size_t size) {     \
    void* p = malloc(size + n);                              \
    __asm__ volatile("" : : "r"(p) : "memory");              \
    return p;                                                \
  }
SITE(0)
SITE(1)
SITE(2)
SITE(3)
SITE(4)
SITE(5)
SITE(6)
SITE(7)

void* (*const kSites[8])(size_t) = {Site0, Site1, Site2, Site3, Site4, Site5, Site6, Site7};

__attribute__((noinline)) long Loop(long rounds, int sites) {
  long made = 0;
  for (long r = 0; r < rounds; ++r) {
    for (int k = 0; k < sites; ++k) {
      void* p = kSites[k](9000);
      __asm__ volatile("" : : "r"(p) : "memory");
      free(p);
      ++made;
    }
  }
  return made;
}

}  // namespace

int main(int argc, char** argv) {
  long rounds = argc > 1 ? atol(argv[1]) : 100;
  int sites = argc > 2 ? atoi(argv[2]) : 8;
  if (sites < 1 || sites > 8) return 2;
  printf("allocs %ld\n", Loop(rounds, sites));
  return 0;
}
