// analyzer/report/leak_report.cc: see leak_report.h.
#include "analyzer/report/leak_report.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analyzer/symbols/symbolizer.h"
#include "analyzer/output/text_util.h"

namespace heapsight::analyzer {
namespace {

std::string FrameLine(size_t index, const LeakFrame& f) {
  std::string where;
  if (!f.file.empty()) {
    where = f.line > 0 ? absl::StrFormat(" %s:%d", f.file, f.line) : absl::StrCat(" ", f.file);
  } else if (!f.module.empty()) {
    where = absl::StrFormat(" (%s+0x%x)", f.module, f.offset);
  }
  if (!f.function.empty()) {
    return absl::StrFormat("    #%d 0x%x in %s%s\n", index, f.address, f.function, where);
  }
  return absl::StrFormat("    #%d 0x%x%s\n", index, f.address, where);
}

nlohmann::json GroupJson(const LeakGroup& g, const LeakReport& report) {
  nlohmann::json frames = LeakFramesJson(g.frames);
  nlohmann::json j = {{"kind", g.kind},
                      {"bytes", g.bytes},
                      {"blocks", g.blocks},
                      {"api", format::ApiName(g.api) ? format::ApiName(g.api) : "unknown"},
                      {"pid", report.processes[g.process].pid},
                      {"frames", std::move(frames)}};
  if (!g.suppressed_by.empty()) j["suppressed_by"] = g.suppressed_by;
  return j;
}

}  // namespace

std::vector<LeakFrame> ToLeakFrames(const std::vector<const SymbolizedLocation*>& stack) {
  std::vector<LeakFrame> frames;
  for (const SymbolizedLocation* loc : stack) {
    for (const SourceFrame& f : loc->frames) {
      LeakFrame frame;
      frame.address = loc->address;
      frame.function = f.function;
      frame.file = f.file;
      frame.line = f.line;
      frame.module = loc->module != nullptr ? loc->module->path : "";
      frame.offset = loc->module_offset;
      frame.inlined = f.inlined;
      frames.push_back(std::move(frame));
    }
  }
  return frames;
}

std::string FormatLeakFrames(const std::vector<LeakFrame>& frames) {
  std::string out;
  for (size_t i = 0; i < frames.size(); ++i) out += FrameLine(i, frames[i]);
  return out;
}

nlohmann::json LeakFramesJson(const std::vector<LeakFrame>& frames) {
  nlohmann::json out = nlohmann::json::array();
  for (const LeakFrame& f : frames) {
    out.push_back({{"address", f.address},
                   {"function", f.function},
                   {"file", f.file},
                   {"line", f.line},
                   {"module", f.module},
                   {"offset", f.offset},
                   {"inlined", f.inlined}});
  }
  return out;
}

std::string KindHeading(const std::string& kind) {
  if (kind == "indirect") return "Indirect leak";
  if (kind == "possible") return "Possible leak";
  if (kind == "reachable") return "Still reachable";
  // "definite" and, until reachability analysis exists, "unfreed".
  return "Direct leak";
}

LeakReport BuildLeakReport(const std::vector<const ProcessProfile*>& profiles,
                           const Suppressions& suppressions) {
  LeakReport report;
  for (size_t pi = 0; pi < profiles.size(); ++pi) {
    const ProcessProfile& p = *profiles[pi];
    LeakProcess proc;
    proc.pid = p.pid;
    proc.ppid = p.ppid;
    proc.exe = p.exe;
    proc.trace = p.trace_path;
    proc.complete = p.complete;
    proc.truncated = p.truncated;
    std::vector<LeakGroup> groups;
    for (const Site& site : p.sites) {
      if (site.stats.leaked_count == 0) continue;
      if (site.kind == SiteKind::kRuntime) {
        proc.runtime_bytes += site.stats.leaked_bytes;
        proc.runtime_blocks += site.stats.leaked_count;
        continue;
      }
      LeakGroup g;
      g.bytes = site.stats.leaked_bytes;
      g.blocks = site.stats.leaked_count;
      g.api = site.api;
      g.stack = site.stack;
      g.process = pi;
      std::vector<const SymbolizedLocation*> stack =
          p.symbolizer->SymbolizeStack(p.StackIps(site.stack));
      if (const std::string* pattern = suppressions.Match(stack)) g.suppressed_by = *pattern;
      g.frames = ToLeakFrames(stack);
      groups.push_back(std::move(g));
    }
    std::sort(groups.begin(), groups.end(), [](const LeakGroup& a, const LeakGroup& b) {
      if (a.bytes != b.bytes) return a.bytes > b.bytes;
      if (a.blocks != b.blocks) return a.blocks > b.blocks;
      if (a.stack != b.stack) return a.stack < b.stack;
      return a.api < b.api;
    });
    for (LeakGroup& g : groups) {
      if (g.suppressed_by.empty()) {
        proc.leaked_bytes += g.bytes;
        proc.leaked_blocks += g.blocks;
        report.groups.push_back(std::move(g));
      } else {
        proc.suppressed_bytes += g.bytes;
        proc.suppressed_blocks += g.blocks;
        report.suppressed.push_back(std::move(g));
      }
    }
    report.leaked_bytes += proc.leaked_bytes;
    report.leaked_blocks += proc.leaked_blocks;
    report.suppressed_bytes += proc.suppressed_bytes;
    report.suppressed_blocks += proc.suppressed_blocks;
    report.runtime_bytes += proc.runtime_bytes;
    report.runtime_blocks += proc.runtime_blocks;
    report.complete = report.complete && proc.complete;
    report.processes.push_back(std::move(proc));
  }
  return report;
}

std::string FormatLeakText(const LeakReport& report) {
  std::string out;
  for (size_t pi = 0; pi < report.processes.size(); ++pi) {
    const LeakProcess& proc = report.processes[pi];
    std::string name = proc.exe.empty() ? proc.trace : BaseName(proc.exe);
    if (!proc.complete) {
      absl::StrAppend(&out, "==", proc.pid, "==WARNING: heapsight: trace ", proc.trace,
                      " was cut short (", proc.truncated ? "file ends mid-block" : "no end record",
                      "); blocks freed after the cut show as not freed.\n");
    }
    bool any = false;
    for (const LeakGroup& g : report.groups) {
      if (g.process != pi) continue;
      if (!any) {
        absl::StrAppend(&out, "=================================================================\n",
                        "==", proc.pid, "==ERROR: heapsight: detected memory leaks in ", name,
                        " (blocks not freed at exit)\n\n");
        any = true;
      }
      absl::StrAppend(&out, KindHeading(g.kind), " of ", g.bytes, " byte(s) in ", g.blocks,
                      " object(s) allocated from:\n");
      if (g.frames.empty()) absl::StrAppend(&out, "    <empty stack>\n");
      out += FormatLeakFrames(g.frames);
      out += "\n";
    }
    if (!any) {
      absl::StrAppend(&out, "==", proc.pid, "==heapsight: no leaks in ", name, "\n");
    }
    if (proc.suppressed_blocks != 0) {
      absl::StrAppend(&out, "==", proc.pid, "==heapsight: suppressed ", proc.suppressed_bytes,
                      " byte(s) in ", proc.suppressed_blocks, " allocation(s).\n");
    }
    if (proc.runtime_blocks != 0) {
      absl::StrAppend(&out, "==", proc.pid, "==heapsight: not counted: ", proc.runtime_bytes,
                      " byte(s) in ", proc.runtime_blocks,
                      " allocation(s) held by the C/C++ runtime.\n");
    }
    if (report.processes.size() > 1) {
      absl::StrAppend(&out, "==", proc.pid, "==SUMMARY: heapsight: ", proc.leaked_bytes,
                      " byte(s) leaked in ", proc.leaked_blocks, " allocation(s).\n\n");
    }
  }
  absl::StrAppend(&out, "SUMMARY: heapsight: ", report.leaked_bytes, " byte(s) leaked in ",
                  report.leaked_blocks, " allocation(s).\n");
  return out;
}

nlohmann::json LeakReportToJson(const LeakReport& report) {
  nlohmann::json processes = nlohmann::json::array();
  for (const LeakProcess& p : report.processes) {
    processes.push_back({{"pid", p.pid},
                         {"ppid", p.ppid},
                         {"exe", p.exe},
                         {"trace", p.trace},
                         {"complete", p.complete},
                         {"truncated", p.truncated},
                         {"leaked_bytes", p.leaked_bytes},
                         {"leaked_blocks", p.leaked_blocks},
                         {"suppressed_bytes", p.suppressed_bytes},
                         {"suppressed_blocks", p.suppressed_blocks},
                         {"runtime_bytes", p.runtime_bytes},
                         {"runtime_blocks", p.runtime_blocks}});
  }
  nlohmann::json groups = nlohmann::json::array();
  for (const LeakGroup& g : report.groups) groups.push_back(GroupJson(g, report));
  nlohmann::json suppressed = nlohmann::json::array();
  for (const LeakGroup& g : report.suppressed) suppressed.push_back(GroupJson(g, report));
  return {{"schema", "heapsight-leaks/1"},
          {"totals",
           {{"leaked_bytes", report.leaked_bytes},
            {"leaked_blocks", report.leaked_blocks},
            {"suppressed_bytes", report.suppressed_bytes},
            {"suppressed_blocks", report.suppressed_blocks},
            {"runtime_bytes", report.runtime_bytes},
            {"runtime_blocks", report.runtime_blocks},
            {"processes", report.processes.size()},
            {"complete", report.complete}}},
          {"processes", std::move(processes)},
          {"groups", std::move(groups)},
          {"suppressed", std::move(suppressed)}};
}

}  // namespace heapsight::analyzer

namespace heapsight::analyzer {

std::string FormatLeakJson(const LeakReport& report) {
  return LeakReportToJson(report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n";
}

}  // namespace heapsight::analyzer
