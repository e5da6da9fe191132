// tests/analyzer/analyze_bench.cc: times AnalyzeTrace alone (no report
// rendering, no symbolization beyond runtime classification) on the given
// traces and prints allocation events per second. Not a test; a tool for
// comparing the analysis core with other analyzers:
//   build/tests/analyzer/analyzer_analyze_bench TRACE...
#include <sys/resource.h>

#include <chrono>
#include <cstdio>

#include "analyzer/model/trace_model.h"

int main(int argc, char** argv) {
  using heapsight::analyzer::AnalyzeTrace;
  for (int i = 1; i < argc; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto profile = AnalyzeTrace(argv[i]);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!profile.ok()) {
      std::fprintf(stderr, "heapsight: %s\n", std::string(profile.status().message()).c_str());
      return 1;
    }
    const auto& t = profile->totals;
    uint64_t events = t.allocs + t.frees + profile->runtime_totals.allocs;
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    std::printf("%s: %llu alloc/free events in %.3f s = %.1f M events/s; peak RSS %ld KB\n",
                argv[i], static_cast<unsigned long long>(events), seconds,
                static_cast<double>(events) / seconds / 1e6, usage.ru_maxrss);
  }
  return 0;
}
