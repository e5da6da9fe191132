// tests/analyzer/analyzer_fuzz.cc: libFuzzer target for the trace reader and
// the whole analysis (built only with clang). Each input is written to a
// file and analyzed; reports are rendered on success. Run it with
// scripts/fuzz-trace-reader.sh, which instruments every library (not just
// this file) and seeds it with uncompressed traces of the scenario programs.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <string>

#include "analyzer/report/growth_report.h"
#include "analyzer/report/leak_report.h"
#include "analyzer/report/text_report.h"
#include "analyzer/report/trace_diff.h"
#include "analyzer/model/trace_model.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = "/tmp/heapsight-fuzz." + std::to_string(getpid()) + ".hst";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  using namespace heapsight::analyzer;
  // With growth tracking on (heapsight growth, html), so that path sees
  // hostile times and sizes too.
  AnalyzeOptions options;
  options.track_growth = true;
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path, options);
  if (p.ok()) {
    LeakReport report = BuildLeakReport({&*p}, Suppressions());
    std::string out = FormatLeakText(report) + FormatLeakJson(report) + FormatReport({&*p});
    out += FormatGrowthText({&*p}, GrowthOptions{}) + FormatGrowthJson({&*p}, GrowthOptions{});
    TraceDiff diff = DiffProfiles(*p, *p);
    out += FormatDiffText(diff, DiffOptions{}, path, path) +
           FormatDiffJson(diff, DiffOptions{}, path, path);
    (void)out;
  }
  return 0;
}
