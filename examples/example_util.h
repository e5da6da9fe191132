// examples/example_util.h: shared bits of the lesson programs.
//
// Every lesson program takes one argument, "costly" or "improved", and runs
// the matching version of the lesson's memory pattern. Allocation sites are
// noinline functions with telling names, so heapsight's stacks (and the
// tests) can name them.
#ifndef HEAPSIGHT_EXAMPLES_EXAMPLE_UTIL_H_
#define HEAPSIGHT_EXAMPLES_EXAMPLE_UTIL_H_

#include <cstdio>
#include <cstring>

#define HS_NOINLINE __attribute__((noinline))

namespace examples {

enum class Mode { kCostly, kImproved };

// Parses argv[1]; prints usage and returns false on anything else.
inline bool ParseMode(int argc, char** argv, Mode* mode) {
  if (argc == 2 && std::strcmp(argv[1], "costly") == 0) {
    *mode = Mode::kCostly;
    return true;
  }
  if (argc == 2 && std::strcmp(argv[1], "improved") == 0) {
    *mode = Mode::kImproved;
    return true;
  }
  std::fprintf(stderr, "usage: %s costly|improved\n", argc > 0 ? argv[0] : "example");
  return false;
}

// Keeps the optimizer from deleting a computation whose result is unused.
template <class T>
inline void KeepAlive(const T& value) {
  asm volatile("" : : "g"(&value) : "memory");
}

}  // namespace examples

#endif  // HEAPSIGHT_EXAMPLES_EXAMPLE_UTIL_H_
