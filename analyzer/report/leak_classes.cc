// analyzer/report/leak_classes.cc: see leak_classes.h.
#include "analyzer/report/leak_classes.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "analyzer/symbols/symbolizer.h"
#include "analyzer/output/text_util.h"

namespace heapsight::analyzer {
namespace {

using format::FreeError;
using format::LeakClass;

constexpr const char* kKindOrder[] = {"definite", "indirect", "possible", "reachable",
                                      "unfreed"};

int KindRank(const std::string& kind) {
  for (int i = 0; i < 5; ++i) {
    if (kind == kKindOrder[i]) return i;
  }
  return 5;
}

std::vector<LeakFrame> Frames(const ProcessProfile& p, uint64_t stack) {
  if (stack == 0 || p.symbolizer == nullptr) return {};
  return ToLeakFrames(p.symbolizer->SymbolizeStack(p.StackIps(stack)));
}

std::string FramesText(const std::vector<LeakFrame>& frames) {
  if (frames.empty()) return "    <empty stack>\n";
  return FormatLeakFrames(frames);
}

const char* ApiText(format::Api api) {
  const char* name = format::ApiName(api);
  return name != nullptr ? name : "unknown";
}

// "operator new", "malloc", ...: the API's name without its parameter list.
std::string ApiShortName(format::Api api) {
  std::string name = ApiText(api);
  size_t paren = name.find('(');
  if (paren != std::string::npos && name.compare(0, 8, "operator") == 0) {
    // operator new[](unsigned long) -> operator new[]
    name = name.substr(0, paren);
  }
  return name;
}

nlohmann::json CountsJson(const ClassCounts& c) {
  return {{"bytes", c.bytes}, {"blocks", c.blocks}};
}

nlohmann::json ClassesJson(const ClassArray& classes, const ClassCounts& unfreed) {
  nlohmann::json j = {{"definitely_lost", CountsJson(classes[0])},
                      {"indirectly_lost", CountsJson(classes[1])},
                      {"possibly_lost", CountsJson(classes[2])},
                      {"still_reachable", CountsJson(classes[3])}};
  if (unfreed.blocks != 0) j["unclassified"] = CountsJson(unfreed);
  return j;
}

std::string SummaryLines(const std::string& prefix, const ClassArray& c,
                         const ClassCounts& unfreed) {
  std::string out = absl::StrCat(prefix, "LEAK SUMMARY:\n");
  const char* labels[] = {"definitely lost", "indirectly lost", "  possibly lost",
                          "still reachable"};
  for (int i = 0; i < format::kLeakClassCount; ++i) {
    absl::StrAppend(&out, prefix, "   ", labels[i], ": ", Thousands(c[i].bytes), " bytes in ",
                    Thousands(c[i].blocks), " blocks\n");
  }
  if (unfreed.blocks != 0) {
    absl::StrAppend(&out, prefix, "   not classified: ", Thousands(unfreed.bytes), " bytes in ",
                    Thousands(unfreed.blocks),
                    " blocks (allocated after the scan, or no scan; counted as leaked only "
                    "without a scan)\n");
  }
  return out;
}

}  // namespace

const char* LeakKindName(LeakClass c) {
  switch (c) {
    case LeakClass::kDefinite: return "definite";
    case LeakClass::kIndirect: return "indirect";
    case LeakClass::kPossible: return "possible";
    case LeakClass::kReachable: return "reachable";
  }
  return "unfreed";
}

const char* FreeErrorName(FreeError e) {
  switch (e) {
    case FreeError::kInvalidFree: return "invalid_free";
    case FreeError::kDoubleFree: return "double_free";
    case FreeError::kMismatchedFree: return "mismatched_free";
  }
  return "bad_free";
}

absl::StatusOr<std::set<std::string>> ParseLeakKinds(const std::string& list) {
  std::set<std::string> kinds;
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    std::string k(part);
    if (k == "all") {
      kinds.insert({"definite", "indirect", "possible", "reachable"});
    } else if (k == "none") {
    } else if (k == "definite" || k == "indirect" || k == "possible" || k == "reachable" ||
               k == "unfreed") {
      kinds.insert(k);
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown leak kind '", k,
          "' (expected a comma-separated list of definite, indirect, possible, reachable, "
          "or all, none)"));
    }
  }
  kinds.insert("unfreed");
  return kinds;
}

absl::StatusOr<LeakClassData> ReadLeakClasses(const std::string& path) {
  AnalyzeOptions options;
  options.classify_runtime = false;
  absl::StatusOr<ProcessProfile> profile = AnalyzeTrace(path, options);
  if (!profile.ok()) return profile.status();
  return std::move(profile->leak_classes);
}

ClassifiedLeakReport ClassifyLeakReport(LeakReport report,
                                        const std::vector<const ProcessProfile*>& profiles,
                                        const std::vector<LeakClassData>& data) {
  ClassifiedLeakReport out;
  out.processes.resize(report.processes.size());
  auto split = [&](std::vector<LeakGroup>& groups, bool count) {
    std::vector<LeakGroup> result;
    for (LeakGroup& g : groups) {
      const LeakClassData* d = g.process < data.size() ? &data[g.process] : nullptr;
      ClassArray classes{};
      if (d != nullptr) {
        if (auto it = d->sites.find({g.stack, static_cast<uint8_t>(g.api)});
            it != d->sites.end()) {
          classes = it->second;
        }
      }
      uint64_t rest_bytes = g.bytes, rest_blocks = g.blocks;
      for (int c = 0; c < format::kLeakClassCount; ++c) {
        if (classes[c].blocks == 0 || classes[c].blocks > rest_blocks) continue;
        LeakGroup part = g;
        part.kind = LeakKindName(static_cast<LeakClass>(c + 1));
        part.bytes = std::min(classes[c].bytes, rest_bytes);
        part.blocks = classes[c].blocks;
        rest_bytes -= part.bytes;
        rest_blocks -= part.blocks;
        if (count) {
          out.processes[g.process].classes[c].bytes += part.bytes;
          out.processes[g.process].classes[c].blocks += part.blocks;
        }
        result.push_back(std::move(part));
      }
      if (rest_blocks != 0) {
        g.kind = kKindUnfreed;
        g.bytes = rest_bytes;
        g.blocks = rest_blocks;
        if (count) {
          out.processes[g.process].unfreed.bytes += rest_bytes;
          out.processes[g.process].unfreed.blocks += rest_blocks;
        }
        result.push_back(std::move(g));
      }
    }
    std::stable_sort(result.begin(), result.end(), [](const LeakGroup& a, const LeakGroup& b) {
      if (a.process != b.process) return a.process < b.process;
      int ra = KindRank(a.kind), rb = KindRank(b.kind);
      if (ra != rb) return ra < rb;
      return a.bytes > b.bytes;
    });
    groups = std::move(result);
  };
  split(report.groups, true);
  split(report.suppressed, false);
  // leaked_* = lost: everything but still-reachable blocks. Blocks no scan
  // classified count only in a trace without a scan; after a scan they are
  // blocks other threads allocated while the process was ending.
  report.leaked_bytes = report.leaked_blocks = 0;
  for (size_t pi = 0; pi < report.processes.size(); ++pi) {
    ClassifiedProcess& cp = out.processes[pi];
    LeakProcess& proc = report.processes[pi];
    bool scanned = pi < data.size() && data[pi].scanned;
    proc.leaked_bytes = scanned ? 0 : cp.unfreed.bytes;
    proc.leaked_blocks = scanned ? 0 : cp.unfreed.blocks;
    for (int c = 0; c < 3; ++c) {
      proc.leaked_bytes += cp.classes[c].bytes;
      proc.leaked_blocks += cp.classes[c].blocks;
    }
    report.leaked_bytes += proc.leaked_bytes;
    report.leaked_blocks += proc.leaked_blocks;
    for (int c = 0; c < format::kLeakClassCount; ++c) {
      out.classes[c].bytes += cp.classes[c].bytes;
      out.classes[c].blocks += cp.classes[c].blocks;
    }
    out.unfreed.bytes += cp.unfreed.bytes;
    out.unfreed.blocks += cp.unfreed.blocks;
    if (pi < data.size()) {
      cp.scanned = data[pi].scanned;
      cp.scan_duration_us = data[pi].duration_us;
      cp.threads_missed = data[pi].threads_missed;
      for (const FreeErrorEvent& e : data[pi].errors) {
        ClassifiedLeakReport::Error err;
        err.process = pi;
        err.event = e;
        if (pi < profiles.size()) {
          err.free_frames = Frames(*profiles[pi], e.free_stack);
          if (e.alloc_known) err.alloc_frames = Frames(*profiles[pi], e.alloc_stack);
        }
        uint8_t k = static_cast<uint8_t>(e.error);
        if (k < 4) ++out.error_counts[k];
        out.errors.push_back(std::move(err));
      }
    }
  }
  out.report = std::move(report);
  return out;
}

ClassCounts CountedLeaks(const ClassifiedLeakReport& r, const std::set<std::string>& kinds) {
  ClassCounts c;
  for (const LeakGroup& g : r.report.groups) {
    if (kinds.count(g.kind) == 0) continue;
    if (g.kind == kKindUnfreed && g.process < r.processes.size() && r.processes[g.process].scanned) {
      continue;  // allocated after the scan: not judged
    }
    c.bytes += g.bytes;
    c.blocks += g.blocks;
  }
  return c;
}

std::string FormatClassifiedLeakText(const ClassifiedLeakReport& r) {
  const LeakReport& report = r.report;
  std::string out;
  for (size_t pi = 0; pi < report.processes.size(); ++pi) {
    const LeakProcess& proc = report.processes[pi];
    const ClassifiedProcess& cp = r.processes[pi];
    std::string name = proc.exe.empty() ? proc.trace : BaseName(proc.exe);
    std::string tag = absl::StrCat("==", proc.pid, "==");
    if (!proc.complete) {
      absl::StrAppend(&out, tag, "WARNING: heapsight: trace ", proc.trace, " was cut short (",
                      proc.truncated ? "file ends mid-block" : "no end record",
                      "); blocks freed after the cut show as not freed.\n");
    }
    if (!cp.scanned) {
      absl::StrAppend(&out, tag,
                      "WARNING: heapsight: no reachability scan in this trace "
                      "(HEAPSIGHT_LEAK_SCAN=0, or an older preload): blocks are only "
                      "\"not freed\".\n");
    } else if (cp.threads_missed != 0) {
      absl::StrAppend(&out, tag, "WARNING: heapsight: ", cp.threads_missed,
                      " thread(s) did not stop for the scan; their registers were not "
                      "scanned.\n");
    }
    // Free errors first, as memcheck reports them when they happen.
    for (const auto& e : r.errors) {
      if (e.process != pi) continue;
      const FreeErrorEvent& ev = e.event;
      std::string what;
      if (ev.error == FreeError::kMismatchedFree) {
        what = absl::StrCat("mismatched free (", ApiShortName(ev.free_api), " of a block from ",
                            ev.alloc_known ? ApiShortName(ev.alloc_api) : "another API", ")");
      } else {
        what = absl::StrCat(ev.error == FreeError::kDoubleFree ? "double free" : "invalid free",
                            " (", ApiShortName(ev.free_api), ")");
      }
      absl::StrAppend(&out, "=================================================================\n",
                      tag, "ERROR: heapsight: ", what, " of address 0x",
                      absl::Hex(ev.address));
      if (ev.alloc_known) absl::StrAppend(&out, " (", ev.alloc_size, " byte(s))");
      const char* action = ev.action == format::FreeAction::kSkipped ? "; not performed"
                           : ev.action == format::FreeAction::kAborted ? "; process aborted"
                                                                      : "";
      absl::StrAppend(&out, action, "\n", FramesText(e.free_frames));
      if (ev.alloc_known) {
        absl::StrAppend(&out, "  block allocated by ", ApiShortName(ev.alloc_api), " from:\n",
                        FramesText(e.alloc_frames));
      }
      out += "\n";
    }
    bool any = false, lost = false;
    for (const LeakGroup& g : report.groups) {
      if (g.process == pi && g.kind != "reachable" && !(g.kind == kKindUnfreed && cp.scanned)) {
        lost = true;
      }
    }
    for (const LeakGroup& g : report.groups) {
      if (g.process != pi) continue;
      if (!any) {
        if (lost) {
          absl::StrAppend(&out,
                          "=================================================================\n",
                          tag, "ERROR: heapsight: detected memory leaks in ", name, "\n\n");
        } else {
          absl::StrAppend(&out, tag, "heapsight: no leaks in ", name,
                          "; blocks not freed at exit:\n\n");
        }
        any = true;
      }
      absl::StrAppend(&out, KindHeading(g.kind), " of ", g.bytes, " byte(s) in ", g.blocks,
                      " object(s) allocated from:\n", FramesText(g.frames), "\n");
    }
    if (!any) absl::StrAppend(&out, tag, "heapsight: no leaks in ", name, "\n");
    if (proc.suppressed_blocks != 0) {
      absl::StrAppend(&out, tag, "heapsight: suppressed ", proc.suppressed_bytes, " byte(s) in ",
                      proc.suppressed_blocks, " allocation(s).\n");
    }
    if (proc.runtime_blocks != 0) {
      absl::StrAppend(&out, tag, "heapsight: not counted: ", proc.runtime_bytes, " byte(s) in ",
                      proc.runtime_blocks, " allocation(s) held by the C/C++ runtime.\n");
    }
    out += SummaryLines(tag, cp.classes, cp.unfreed);
    if (report.processes.size() > 1) {
      absl::StrAppend(&out, tag, "SUMMARY: heapsight: ", proc.leaked_bytes,
                      " byte(s) leaked in ", proc.leaked_blocks, " allocation(s).\n\n");
    }
  }
  uint64_t errors = r.errors.size();
  if (errors != 0) {
    absl::StrAppend(&out, "ERROR SUMMARY: ", errors, " free error(s): ",
                    r.error_counts[1], " invalid, ", r.error_counts[2], " double, ",
                    r.error_counts[3], " mismatched.\n");
  }
  absl::StrAppend(&out, "SUMMARY: heapsight: ", report.leaked_bytes, " byte(s) leaked in ",
                  report.leaked_blocks, " allocation(s).\n");
  return out;
}

nlohmann::json ClassifiedLeakJson(const ClassifiedLeakReport& r) {
  nlohmann::json j = LeakReportToJson(r.report);
  j["totals"]["classes"] = ClassesJson(r.classes, r.unfreed);
  j["totals"]["errors"] = {{"invalid_free", r.error_counts[1]},
                           {"double_free", r.error_counts[2]},
                           {"mismatched_free", r.error_counts[3]},
                           {"total", r.errors.size()}};
  for (size_t pi = 0; pi < r.processes.size() && pi < j["processes"].size(); ++pi) {
    const ClassifiedProcess& cp = r.processes[pi];
    j["processes"][pi]["classes"] = ClassesJson(cp.classes, cp.unfreed);
    j["processes"][pi]["scanned"] = cp.scanned;
    j["processes"][pi]["scan_duration_us"] = cp.scan_duration_us;
    uint64_t counts[4] = {};
    for (const auto& e : r.errors) {
      if (e.process == pi && static_cast<uint8_t>(e.event.error) < 4) {
        ++counts[static_cast<uint8_t>(e.event.error)];
      }
    }
    j["processes"][pi]["errors"] = {{"invalid_free", counts[1]},
                                    {"double_free", counts[2]},
                                    {"mismatched_free", counts[3]}};
  }
  nlohmann::json errors = nlohmann::json::array();
  for (const auto& e : r.errors) {
    const FreeErrorEvent& ev = e.event;
    nlohmann::json err = {
        {"kind", FreeErrorName(ev.error)},
        {"pid", r.report.processes[e.process].pid},
        {"address", ev.address},
        {"free_fn", ApiShortName(ev.free_api)},
        {"action", ev.action == format::FreeAction::kSkipped   ? "skipped"
                   : ev.action == format::FreeAction::kAborted ? "aborted"
                                                               : "performed"},
        {"free_frames", LeakFramesJson(e.free_frames)}};
    if (ev.alloc_known) {
      err["alloc_fn"] = ApiShortName(ev.alloc_api);
      err["bytes"] = ev.alloc_size;
      err["alloc_frames"] = LeakFramesJson(e.alloc_frames);
    }
    errors.push_back(std::move(err));
  }
  j["errors"] = std::move(errors);
  return j;
}

absl::Status RestrictToLeakKinds(ProcessProfile* profile, const LeakClassData& data,
                                 const std::set<std::string>& kinds, bool live_is_end) {
  bool wants_class = false;
  for (const std::string& k : kinds) wants_class = wants_class || k != "unfreed";
  if (wants_class && !data.scanned) {
    return absl::FailedPreconditionError(absl::StrCat(
        profile->trace_path,
        ": no reachability scan in this trace (recorded with HEAPSIGHT_LEAK_SCAN=0, or by an "
        "older preload); --leak-kinds needs one"));
  }
  for (Site& site : profile->sites) {
    ClassArray classes{};
    if (auto it = data.sites.find({site.stack, static_cast<uint8_t>(site.api)});
        it != data.sites.end()) {
      classes = it->second;
    }
    ClassCounts keep, classified;
    for (int c = 0; c < format::kLeakClassCount; ++c) {
      classified.bytes += classes[c].bytes;
      classified.blocks += classes[c].blocks;
      if (kinds.count(LeakKindName(static_cast<LeakClass>(c + 1))) != 0) {
        keep.bytes += classes[c].bytes;
        keep.blocks += classes[c].blocks;
      }
    }
    if (kinds.count("unfreed") != 0 && site.stats.leaked_count > classified.blocks) {
      keep.blocks += site.stats.leaked_count - classified.blocks;
      keep.bytes += site.stats.leaked_bytes > classified.bytes
                        ? site.stats.leaked_bytes - classified.bytes
                        : 0;
    }
    site.stats.leaked_count = keep.blocks;
    site.stats.leaked_bytes = keep.bytes;
    if (live_is_end) {
      site.stats.live_count = keep.blocks;
      site.stats.live_bytes = keep.bytes;
    }
  }
  return absl::OkStatus();
}

std::string FormatLeakClassSummary(const ClassifiedLeakReport& r) {
  std::string out;
  for (size_t pi = 0; pi < r.processes.size(); ++pi) {
    const ClassifiedProcess& cp = r.processes[pi];
    std::string tag = r.processes.size() > 1
                          ? absl::StrCat("pid ", r.report.processes[pi].pid, " ")
                          : std::string();
    if (!cp.scanned) {
      absl::StrAppend(&out, tag, "leaks: no reachability scan in the trace\n");
      continue;
    }
    absl::StrAppend(&out, "\n", tag, "leaks by reachability (scan at exit: ",
                    absl::StrFormat("%.1f", cp.scan_duration_us / 1000.0), " ms):\n");
    const char* labels[] = {"definitely lost", "indirectly lost", "  possibly lost",
                            "still reachable"};
    for (int c = 0; c < format::kLeakClassCount; ++c) {
      absl::StrAppend(&out, "  ", labels[c], ": ", Thousands(cp.classes[c].bytes), " bytes in ",
                      Thousands(cp.classes[c].blocks), " blocks\n");
    }
    uint64_t counts[4] = {};
    for (const auto& e : r.errors) {
      if (e.process == pi && static_cast<uint8_t>(e.event.error) < 4) {
        ++counts[static_cast<uint8_t>(e.event.error)];
      }
    }
    if (counts[1] + counts[2] + counts[3] != 0) {
      absl::StrAppend(&out, tag, "free errors: ", counts[1], " invalid, ", counts[2],
                      " double, ", counts[3], " mismatched (`heapsight leaks` shows both stacks)\n");
    }
  }
  return out;
}

}  // namespace heapsight::analyzer
