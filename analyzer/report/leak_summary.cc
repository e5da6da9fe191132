// analyzer/report/leak_summary.cc: see leak_summary.h.
#include "analyzer/report/leak_summary.h"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "absl/strings/str_cat.h"

#include "analyzer/report/leak_report.h"
#include "analyzer/report/suppressions.h"
#include "analyzer/output/text_util.h"
#include "analyzer/model/fork_inheritance.h"
#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer {

absl::StatusOr<LeakSummary> SummarizeTraces(const std::vector<std::string>& paths,
                                            const std::string& suppressions) {
  absl::StatusOr<Suppressions> rules = Suppressions::Load(suppressions);
  if (!rules.ok()) return rules.status();
  LeakSummary summary;
  summary.classified = !paths.empty();
  // One trace at a time: a family's profiles are not all held at once.
  // Its version-6 fork children read each parent's trace once between
  // them (fork_inheritance.h).
  ForkInheritanceSource inheritances(paths);
  AnalyzeOptions options;
  if (paths.size() > 1) options.fork_inheritances = &inheritances;
  for (const std::string& path : paths) {
    absl::StatusOr<ProcessProfile> profile = AnalyzeTrace(path, options);
    if (!profile.ok()) return profile.status();
    LeakReport report = BuildLeakReport({&*profile}, *rules);
    const LeakProcess& proc = report.processes[0];
    ++summary.processes;
    summary.totals += report.totals;
    // An image that ended in exec has nothing to classify (and no scan).
    if (proc.ended_in_exec) {
      ++summary.execs;
    } else if (proc.rotated) {
      // A segment closed by rotation: the process ran on, no scan is due.
    } else {
      summary.classified = summary.classified && proc.scanned;
    }
    const LeakTotals& t = report.totals;
    if (t.leaked.blocks != 0 || t.FreeErrorCount() != 0 ||
        t.classes[LeakClass::kReachable].blocks != 0) {
      summary.traces_to_inspect.push_back(path);
    }
    if (summary.processes == 1 || profile->totals.peak_bytes > summary.peak_bytes) {
      summary.peak_bytes = profile->totals.peak_bytes;
      summary.peak_pid = profile->pid;
      summary.peak_exe = profile->exe;
      summary.peak_time_us = profile->totals.peak_time_us;
      summary.peak_resolution = ResolutionOf(profile->header.flags);
    }
    summary.allocs += profile->totals.allocs;
    summary.frees += profile->totals.frees;
    summary.bytes_allocated += profile->totals.bytes_allocated;
    summary.complete = summary.complete && profile->complete;
    if ((profile->header.flags & format::kFileFlagSampled) != 0) {
      summary.sample_period_bytes =
          std::max(summary.sample_period_bytes, profile->header.sample_period_bytes);
    }
  }
  return summary;
}

namespace {

std::string BlocksText(uint64_t blocks) {
  return Thousands(blocks) + (blocks == 1 ? " block" : " blocks");
}

// A path as a shell word: single-quoted unless it is plain.
std::string ShellWord(const std::string& path) {
  bool plain = !path.empty() && std::all_of(path.begin(), path.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || std::strchr("/._-+%,:=@", c) != nullptr;
  });
  if (plain) return path;
  std::string out = "'";
  for (char c : path) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

}  // namespace

void PrintLeakSummary(std::FILE* out, const LeakSummary& s) {
  std::fprintf(out, "heapsight: LEAK SUMMARY (%s)\n",
               (Thousands(s.processes) + (s.processes == 1 ? " process" : " processes")).c_str());
  const LeakTotals& t = s.totals;
  if (s.classified) {
    const char* labels[] = {"definitely lost", "indirectly lost", "  possibly lost",
                            "still reachable"};
    for (int i = 0; i < format::kLeakClassCount; ++i) {
      const ClassCounts& c = t.classes[kLeakClassesInOrder[i]];
      std::fprintf(out, "heapsight:    %s: %s in %s\n", labels[i], Bytes(c.bytes).c_str(),
                   BlocksText(c.blocks).c_str());
    }
  } else {
    std::fprintf(out, "heapsight:    not freed at exit: %s in %s\n", Bytes(t.leaked.bytes).c_str(),
                 BlocksText(t.leaked.blocks).c_str());
  }
  if (uint64_t errors = t.FreeErrorCount(); errors != 0) {
    std::fprintf(out, "heapsight:    free errors (invalid, double, mismatched): %s\n",
                 Thousands(errors).c_str());
  }
  if (t.suppressed.blocks != 0) {
    std::fprintf(out, "heapsight:    suppressed: %s in %s blocks\n", Bytes(t.suppressed.bytes).c_str(),
                 Thousands(t.suppressed.blocks).c_str());
  }
  if (s.execs != 0) {
    std::fprintf(out,
                 "heapsight:    ended in exec: %s %s; %s discarded by exec (not leaks)\n",
                 Thousands(s.execs).c_str(), s.execs == 1 ? "process image" : "process images",
                 BlocksText(t.discarded_by_exec.blocks).c_str());
  }
  std::string whose = absl::StrCat("pid ", s.peak_pid);
  if (!s.peak_exe.empty()) absl::StrAppend(&whose, " (", BaseName(s.peak_exe), ")");
  // Sampled traces: the same estimates `heapsight report` prints.
  const char* estimate = s.sample_period_bytes != 0 ? " (estimates)" : "";
  std::fprintf(out, "heapsight:    peak heap: %s in %s at %s; %s allocations, %s frees, %s allocated%s\n",
               Bytes(s.peak_bytes).c_str(), whose.c_str(),
               Seconds(s.peak_time_us, s.peak_resolution).c_str(), Thousands(s.allocs).c_str(),
               Thousands(s.frees).c_str(), Bytes(s.bytes_allocated).c_str(), estimate);
  if (!s.complete) {
    std::fprintf(out, "heapsight:    WARNING: a trace was cut short; numbers cover the recorded part\n");
  }
  if (s.sample_period_bytes != 0) {
    std::fprintf(out,
                 "heapsight:    sampled trace (one allocation per %s on average): the numbers "
                 "are estimates of the unsampled program (see `heapsight report`)\n",
                 Bytes(s.sample_period_bytes).c_str());
  }
  if (!s.traces_to_inspect.empty()) {
    std::string words;
    for (const std::string& path : s.traces_to_inspect) absl::StrAppend(&words, " ", ShellWord(path));
    std::fprintf(out, "heapsight: run `heapsight leaks%s` for the allocation stacks\n",
                 words.c_str());
  }
}

}  // namespace heapsight::analyzer
