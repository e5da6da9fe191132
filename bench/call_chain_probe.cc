// bench/call_chain_probe.cc: is this machine in a state where deep call
// chains run several times slower than they can?
//
// On the 2-core KVM guest these benchmarks run on (2026-12-07), a chain of
// 60 nested calls and returns runs in one of two speeds, about 5x apart,
// and the guest moves between them while a process runs (a process that
// sleeps between slices toggles often; one that spins stays in the slow
// state once it entered it). The plain `alloc_bench --depth 60` then took
// 0.25 s or 1.2 s, `--depth 200` 0.74 s or 5 s, from one run to the next,
// and every overhead ratio of the deep rows was a draw of two coins. The
// 12-frame loop barely moves (it makes few calls per allocation). It is
// the hardware or the hypervisor, not heapsight: the probe below calls no
// allocator and no library.
//
// The probe runs `--slices` slices of `--calls` chains of 60 calls each and
// prints each slice's time in ns per call, then the fastest, the median and
// the share of slices slower than 2x the fastest. bench/run_bench.py runs
// it before and after a family run and prints that share beside the table,
// so a table taken in the slow state says so.
//
// Usage: call_chain_probe [--slices N] [--calls N] [--sleep-ms N] [--quiet]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

namespace {

template <int kDepth>
__attribute__((noinline)) uint64_t Chain(uint64_t x) {
  if constexpr (kDepth == 0) {
    return x * 3 + 1;
  } else {
    uint64_t r = Chain<kDepth - 1>(x);
    asm volatile("" : : "r"(r) : "memory");  // not a tail call: keep the frame
    return r;
  }
}

constexpr int kChainDepth = 60;

long ParseArg(const char* text, const char* flag) {
  char* end = nullptr;
  long v = std::strtol(text, &end, 10);
  if (end == text || *end != '\0' || v < 0 || v > 100'000'000) {
    std::fprintf(stderr, "call_chain_probe: bad value '%s' for %s\n", text, flag);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) {
  long slices = 40, calls = 20'000, sleep_ms = 5;
  bool quiet = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--quiet") == 0) {
      quiet = true;
    } else if (i + 1 < argc && std::strcmp(argv[i], "--slices") == 0) {
      slices = ParseArg(argv[++i], "--slices");
    } else if (i + 1 < argc && std::strcmp(argv[i], "--calls") == 0) {
      calls = ParseArg(argv[++i], "--calls");
    } else if (i + 1 < argc && std::strcmp(argv[i], "--sleep-ms") == 0) {
      sleep_ms = ParseArg(argv[++i], "--sleep-ms");
    } else {
      std::fprintf(stderr,
                   "usage: call_chain_probe [--slices N] [--calls N] [--sleep-ms N] [--quiet]\n");
      return 2;
    }
  }
  if (slices < 1 || calls < 1) {
    std::fprintf(stderr, "call_chain_probe: --slices and --calls must be at least 1\n");
    return 2;
  }
  std::vector<double> ns_per_call;
  uint64_t sum = 0;
  for (long s = 0; s < slices; ++s) {
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < calls; ++i) sum += Chain<kChainDepth>(static_cast<uint64_t>(i));
    auto t1 = std::chrono::steady_clock::now();
    double ns = std::chrono::duration<double, std::nano>(t1 - t0).count();
    ns_per_call.push_back(ns / (static_cast<double>(calls) * (kChainDepth + 1)));
    if (!quiet) std::printf("%.2f ", ns_per_call.back());
    if (sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(sleep_ms));
  }
  if (!quiet) std::printf("\n");
  std::vector<double> sorted = ns_per_call;
  std::sort(sorted.begin(), sorted.end());
  double fastest = sorted.front();
  long slow = std::count_if(sorted.begin(), sorted.end(),
                            [fastest](double v) { return v > 2 * fastest; });
  std::printf("fastest %.2f ns/call, median %.2f, slow slices (over 2x the fastest) %ld of %ld"
              " (checksum %llu)\n",
              fastest, sorted[sorted.size() / 2], slow, slices,
              static_cast<unsigned long long>(sum % 1000));
  return 0;
}
