// examples/02_escape_analysis.cc: lesson 2, escape analysis -> stack vs heap.
//
// Go decides per variable whether it escapes to the heap. In C++ the
// programmer decides, and some library types decide for you. Four pairs,
// each run kRounds times; the costly version allocates, the improved one
// keeps everything on the stack, so the trace shows zero heap allocations
// from the improved functions:
//   1. MakePointHeap: `new Point` per call      vs MakePointValue: return by value
//   2. LongNames: 40-char std::string (heap)    vs ShortNames: 10 chars (SSO, no heap)
//   3. LargeCapture: std::function with 64 B of captures (heap)
//                                               vs SmallCapture: 8 B capture (stored inline)
//   4. UniquePerIteration: make_unique in a loop vs StackPerIteration: a local object
#include <array>
#include <functional>
#include <memory>
#include <string>

#include "example_util.h"

namespace {

constexpr int kRounds = 1000;

struct Point {
  double x, y, z;
};

HS_NOINLINE Point* MakePointHeap(int i) { return new Point{1.0 * i, 2.0 * i, 3.0 * i}; }
HS_NOINLINE Point MakePointValue(int i) { return Point{1.0 * i, 2.0 * i, 3.0 * i}; }

HS_NOINLINE double Points(examples::Mode mode) {
  double sum = 0;
  for (int i = 0; i < kRounds; ++i) {
    if (mode == examples::Mode::kCostly) {
      Point* p = MakePointHeap(i);
      sum += p->x + p->y + p->z;
      delete p;
    } else {
      Point p = MakePointValue(i);
      sum += p.x + p.y + p.z;
    }
  }
  return sum;
}

HS_NOINLINE size_t LongNames() {
  size_t total = 0;
  for (int i = 0; i < kRounds; ++i) {
    std::string name(40, static_cast<char>('a' + i % 26));  // > 15 chars: heap
    examples::KeepAlive(name);
    total += name.size();
  }
  return total;
}

HS_NOINLINE size_t ShortNames() {
  size_t total = 0;
  for (int i = 0; i < kRounds; ++i) {
    std::string name(10, static_cast<char>('a' + i % 26));  // fits the SSO buffer
    examples::KeepAlive(name);
    total += name.size();
  }
  return total;
}

HS_NOINLINE long LargeCapture() {
  long total = 0;
  for (int i = 0; i < kRounds; ++i) {
    std::array<long, 8> state{i, i, i, i, i, i, i, i};  // 64 bytes captured by value
    std::function<long()> f = [state] { return state[0] + state[7]; };
    examples::KeepAlive(f);
    total += f();
  }
  return total;
}

HS_NOINLINE long SmallCapture() {
  long total = 0;
  for (int i = 0; i < kRounds; ++i) {
    long state = i;  // 8 bytes: stored inside std::function itself
    std::function<long()> f = [state] { return state * 2; };
    examples::KeepAlive(f);
    total += f();
  }
  return total;
}

struct Request {
  char payload[256];
  int id;
};

HS_NOINLINE long UniquePerIteration() {
  long total = 0;
  for (int i = 0; i < kRounds; ++i) {
    auto request = std::make_unique<Request>();
    request->id = i;
    examples::KeepAlive(*request);
    total += request->id;
  }
  return total;
}

HS_NOINLINE long StackPerIteration() {
  long total = 0;
  for (int i = 0; i < kRounds; ++i) {
    Request request{};
    request.id = i;
    examples::KeepAlive(request);
    total += request.id;
  }
  return total;
}

}  // namespace

int main(int argc, char** argv) {
  examples::Mode mode;
  if (!examples::ParseMode(argc, argv, &mode)) return 2;
  double sum = Points(mode);
  if (mode == examples::Mode::kCostly) {
    sum += static_cast<double>(LongNames() + LargeCapture() + UniquePerIteration());
  } else {
    sum += static_cast<double>(ShortNames() + SmallCapture() + StackPerIteration());
  }
  examples::KeepAlive(sum);
  return 0;
}
