// analyzer/report/leak_report.cc: see leak_report.h.
#include "analyzer/report/leak_report.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "analyzer/output/totals_text.h"
#include "analyzer/model/sample_estimate.h"
#include "analyzer/output/stack_text.h"
#include "analyzer/output/text_util.h"
#include "analyzer/symbols/symbolizer.h"

namespace heapsight::analyzer {
namespace {

using format::FreeError;

// ---- Building -------------------------------------------------------------

LeakStack Frames(const ProcessProfile& p, uint64_t stack) {
  if (stack == 0 || p.symbolizer == nullptr) return {};
  return LeakStack(p.symbolizer->SymbolizeStack(p.StackIps(stack)));
}

// Position of a class in the report: definite, indirect, possible,
// reachable, unfreed.
int ClassRank(LeakClass c) {
  for (int i = 0; i < static_cast<int>(std::size(kLeakClassesInOrder)); ++i) {
    if (kLeakClassesInOrder[i] == c) return i;
  }
  return static_cast<int>(std::size(kLeakClassesInOrder));
}

// Splits the blocks of one site into a group per class of the scan
// (`classes`); the blocks it did not classify stay kUnclassified. Adds each
// part to `counts` unless null (suppressed groups are not counted).
// Splits a site's group by the scan's classes: a group per class into
// *out (if not null), the counts added to *counts (if not null).
void SplitByClass(LeakGroup g, const LeakClassCounts& classes, std::vector<LeakGroup>* out,
                  LeakClassCounts* counts) {
  ClassCounts rest = g.counts;
  for (LeakClass c : kLeakClassesInOrder) {
    if (c == LeakClass::kUnclassified) continue;
    const ClassCounts& in_class = classes[c];
    if (in_class.blocks == 0 || in_class.blocks > rest.blocks) continue;
    ClassCounts part_counts = {std::min(in_class.bytes, rest.bytes), in_class.blocks};
    rest.bytes -= part_counts.bytes;
    rest.blocks -= part_counts.blocks;
    if (counts != nullptr) (*counts)[c] += part_counts;
    if (out == nullptr) continue;
    LeakGroup part = g;
    part.kind = c;
    part.counts = part_counts;
    out->push_back(std::move(part));
  }
  if (rest.blocks != 0) {
    if (counts != nullptr) (*counts)[LeakClass::kUnclassified] += rest;
    if (out == nullptr) return;
    g.kind = LeakClass::kUnclassified;
    g.counts = rest;
    out->push_back(std::move(g));
  }
}

void SortGroups(std::vector<LeakGroup>* groups) {
  std::stable_sort(groups->begin(), groups->end(), [](const LeakGroup& a, const LeakGroup& b) {
    if (a.process != b.process) return a.process < b.process;
    int ra = ClassRank(a.kind), rb = ClassRank(b.kind);
    if (ra != rb) return ra < rb;
    return a.counts.bytes > b.counts.bytes;
  });
}

// ---- Text -----------------------------------------------------------------

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

// LeakSanitizer's frame lines, or a note for an empty stack; a stack the
// preload cut ends with a line saying so.
std::string FramesText(const LeakStack& frames, const StackCut& cut) {
  std::string out;
  if (frames.empty() && !cut.cut) return "    <empty stack>\n";
  for (size_t i = 0; i < frames.size(); ++i) out += FrameLine(i, frames[i]);
  if (cut.cut) out += StackCutText(cut, "    ") + "\n";
  return out;
}

// The group's heading. A block no scan judged is a leak only when the trace
// has no scan at all (as the summary counts it, LeakClassCounts::Lost); after
// a scan (blocks allocated in at_quick_exit handlers, late destructors or
// other threads after the exit scan) it is listed as what the summary calls
// it, "not classified", and is not counted as leaked.
std::string KindHeading(LeakClass kind, bool scanned) {
  switch (kind) {
    case LeakClass::kIndirect: return "Indirect leak";
    case LeakClass::kPossible: return "Possible leak";
    case LeakClass::kReachable: return "Still reachable";
    case LeakClass::kUnclassified:
      return scanned ? "Not classified (allocated after the leak scan)" : "Direct leak";
    default: return "Direct leak";
  }
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

constexpr const char* kClassLabels[] = {"definitely lost", "indirectly lost", "  possibly lost",
                                        "still reachable"};

// memcheck's LEAK SUMMARY lines of one process.
std::string SummaryLines(const std::string& prefix, const LeakClassCounts& classes) {
  std::string out = absl::StrCat(prefix, "LEAK SUMMARY:\n");
  for (int i = 0; i < format::kLeakClassCount; ++i) {
    const ClassCounts& c = classes[kLeakClassesInOrder[i]];
    absl::StrAppend(&out, prefix, "   ", kClassLabels[i], ": ", Thousands(c.bytes), " bytes in ",
                    Thousands(c.blocks), " blocks\n");
  }
  const ClassCounts& unfreed = classes[LeakClass::kUnclassified];
  if (unfreed.blocks != 0) {
    absl::StrAppend(&out, prefix, "   not classified: ", Thousands(unfreed.bytes), " bytes in ",
                    Thousands(unfreed.blocks),
                    " blocks (allocated after the scan, or no scan; counted as leaked only "
                    "without a scan)\n");
  }
  return out;
}

std::string FreeErrorText(const LeakFreeError& e, const std::string& tag) {
  const FreeErrorEvent& ev = e.event;
  std::string what;
  if (ev.error == FreeError::kMismatchedFree) {
    what = absl::StrCat("mismatched free (", ApiShortName(ev.free_api), " of a block from ",
                        ev.alloc_known ? ApiShortName(ev.alloc_api) : "another API", ")");
  } else {
    what = absl::StrCat(ev.error == FreeError::kDoubleFree ? "double free" : "invalid free", " (",
                        ApiShortName(ev.free_api), ")");
  }
  std::string out =
      absl::StrCat("=================================================================\n", tag,
                   "ERROR: heapsight: ", what, " of address 0x", absl::Hex(ev.address));
  if (ev.alloc_known) absl::StrAppend(&out, " (", ev.alloc_size, " byte(s))");
  const char* action = ev.action == format::FreeAction::kSkipped   ? "; not performed"
                       : ev.action == format::FreeAction::kAborted ? "; process aborted"
                                                                   : "";
  absl::StrAppend(&out, action, "\n", FramesText(e.free_frames, e.free_cut));
  if (ev.alloc_known) {
    absl::StrAppend(&out, "  block allocated by ", ApiShortName(ev.alloc_api), " from:\n",
                    FramesText(e.alloc_frames, e.alloc_cut));
  }
  return out + "\n";
}

// ---- JSON -----------------------------------------------------------------

// The shared frame shape (site_json.h).
nlohmann::json LeakFramesJson(const LeakStack& frames) {
  nlohmann::json out = nlohmann::json::array();
  for (const LeakFrame& f : frames) out.push_back(FrameJson(f.ToSiteFrame()));
  return out;
}

// "truncated": true (and "frames_not_recorded": N when known) for a stack
// the preload cut; nothing for a whole one.
void AddCutJson(const StackCut& cut, const std::string& prefix, nlohmann::json* j) {
  if (!cut.cut) return;
  (*j)[prefix + "truncated"] = true;
  if (cut.missing != 0) (*j)[prefix + "frames_not_recorded"] = cut.missing;
}

nlohmann::json GroupJson(const LeakGroup& g, const LeakReport& report) {
  nlohmann::json j = {{"kind", LeakKindName(g.kind)},
                      {"bytes", g.counts.bytes},
                      {"blocks", g.counts.blocks},
                      {"api", ApiText(g.api)},
                      {"pid", report.processes[g.process].pid},
                      {"frames", LeakFramesJson(g.frames)}};
  AddCutJson(g.cut, "", &j);
  if (!g.suppressed_by.empty()) j["suppressed_by"] = g.suppressed_by;
  return j;
}

nlohmann::json CountsJson(const ClassCounts& c) {
  return {{"bytes", c.bytes}, {"blocks", c.blocks}};
}

nlohmann::json ClassesJson(const LeakClassCounts& classes) {
  nlohmann::json j = {{"definitely_lost", CountsJson(classes[LeakClass::kDefinite])},
                      {"indirectly_lost", CountsJson(classes[LeakClass::kIndirect])},
                      {"possibly_lost", CountsJson(classes[LeakClass::kPossible])},
                      {"still_reachable", CountsJson(classes[LeakClass::kReachable])}};
  const ClassCounts& unfreed = classes[LeakClass::kUnclassified];
  if (unfreed.blocks != 0) j["unclassified"] = CountsJson(unfreed);
  return j;
}

// The leaked/suppressed/runtime numbers of a process or of the report.
void AddTotalsJson(const LeakTotals& t, nlohmann::json* j) {
  (*j)["leaked_bytes"] = t.leaked.bytes;
  (*j)["leaked_blocks"] = t.leaked.blocks;
  (*j)["suppressed_bytes"] = t.suppressed.bytes;
  (*j)["suppressed_blocks"] = t.suppressed.blocks;
  (*j)["runtime_bytes"] = t.runtime.bytes;
  (*j)["runtime_blocks"] = t.runtime.blocks;
  (*j)["not_freed_bytes"] = t.not_freed.bytes;
  (*j)["not_freed_blocks"] = t.not_freed.blocks;
  if (t.estimated) (*j)["estimated"] = true;
  if (t.compact_frees) (*j)["compact_frees"] = true;
  (*j)["classes"] = ClassesJson(t.classes);
  if (t.discarded_by_exec.blocks != 0) {
    (*j)["discarded_by_exec_bytes"] = t.discarded_by_exec.bytes;
    (*j)["discarded_by_exec_blocks"] = t.discarded_by_exec.blocks;
  }
  if (t.carried_by_rotation.blocks != 0) {
    (*j)["carried_by_rotation_bytes"] = t.carried_by_rotation.bytes;
    (*j)["carried_by_rotation_blocks"] = t.carried_by_rotation.blocks;
  }
}

nlohmann::json FreeErrorJson(const LeakFreeError& e, const LeakReport& report) {
  const FreeErrorEvent& ev = e.event;
  nlohmann::json err = {{"kind", FreeErrorName(ev.error)},
                        {"pid", report.processes[e.process].pid},
                        {"address", ev.address},
                        {"free_fn", ApiShortName(ev.free_api)},
                        {"action", ev.action == format::FreeAction::kSkipped   ? "skipped"
                                   : ev.action == format::FreeAction::kAborted ? "aborted"
                                                                               : "performed"},
                        {"free_frames", LeakFramesJson(e.free_frames)}};
  AddCutJson(e.free_cut, "free_", &err);
  if (ev.alloc_known) {
    err["alloc_fn"] = ApiShortName(ev.alloc_api);
    err["bytes"] = ev.alloc_size;
    err["alloc_frames"] = LeakFramesJson(e.alloc_frames);
    AddCutJson(e.alloc_cut, "alloc_", &err);
  }
  return err;
}

}  // namespace

LeakStack::LeakStack(const std::vector<const SymbolizedLocation*>& locations) {
  size_t n = 0;
  for (const SymbolizedLocation* loc : locations) n += loc->frames.size();
  refs_.reserve(n);
  for (const SymbolizedLocation* loc : locations) {
    for (size_t i = 0; i < loc->frames.size(); ++i) refs_.push_back({loc, i});
  }
}

LeakFrame LeakStack::operator[](size_t i) const {
  static const std::string kNoModule;
  const Ref& r = refs_[i];
  const SourceFrame& f = r.location->frames[r.index];
  return {r.location->address,
          f.function,
          f.file,
          f.line,
          r.location->module != nullptr ? r.location->module->path : kNoModule,
          r.location->module_offset,
          f.inlined};
}

SiteFrame LeakFrame::ToSiteFrame() const {
  SiteFrame s;
  s.address = address;
  s.function = function;
  s.file = file;
  s.line = line;
  s.module = module;
  s.offset = offset;
  s.inlined = inlined;
  return s;
}

const char* LeakKindName(LeakClass c) {
  switch (c) {
    case LeakClass::kDefinite: return "definite";
    case LeakClass::kIndirect: return "indirect";
    case LeakClass::kPossible: return "possible";
    case LeakClass::kReachable: return "reachable";
    case LeakClass::kUnclassified: break;
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

absl::StatusOr<LeakKinds> ParseLeakKinds(const std::string& list) {
  LeakKinds kinds;
  for (absl::string_view part : absl::StrSplit(list, ',', absl::SkipEmpty())) {
    if (part == "all") {
      kinds.insert({LeakClass::kDefinite, LeakClass::kIndirect, LeakClass::kPossible,
                    LeakClass::kReachable});
      continue;
    }
    if (part == "none") continue;
    bool known = false;
    for (LeakClass c : kLeakClassesInOrder) {
      if (part == LeakKindName(c)) {
        kinds.insert(c);
        known = true;
      }
    }
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "unknown leak kind '", part,
          "' (expected a comma-separated list of definite, indirect, possible, reachable, "
          "or all, none)"));
    }
  }
  kinds.insert(LeakClass::kUnclassified);
  return kinds;
}

LeakTotals& LeakTotals::operator+=(const LeakTotals& o) {
  classes += o.classes;
  leaked += o.leaked;
  suppressed += o.suppressed;
  runtime += o.runtime;
  discarded_by_exec += o.discarded_by_exec;
  carried_by_rotation += o.carried_by_rotation;
  not_freed += o.not_freed;
  estimated = estimated || o.estimated;
  compact_frees = compact_frees || o.compact_frees;
  for (int i = 0; i < 4; ++i) free_errors[i] += o.free_errors[i];
  return *this;
}

uint64_t LeakTotals::FreeErrorCount() const {
  return free_errors[0] + free_errors[1] + free_errors[2] + free_errors[3];
}

std::string NoScanReason(const ProcessProfile& p) {
  if (p.leak_classes.scanned) return "";
  // In the order the preload decides: it never scans at exec nor with
  // sampling (leak_check.cc), and scans at exit unless HEAPSIGHT_LEAK_SCAN=0.
  if (p.EndedInExec()) return "the image ended in exec, which discards its heap";
  if ((p.header.flags & format::kFileFlagSampled) != 0) {
    return "the trace is sampled (HEAPSIGHT_SAMPLE_BYTES); the preload scans only traces of "
           "every allocation";
  }
  if (!p.complete) {
    return "the trace was cut short before the scan at exit: the process was killed, is still "
           "running, or could not write";
  }
  if (p.end_reason == format::EndReason::kDisabled) {
    return "the preload stepped aside before the process ended (see its messages)";
  }
  if (p.end_reason == format::EndReason::kDetach) {
    return "the window ended with detach, the process ran on: scans run at exit only";
  }
  if (p.end_reason == format::EndReason::kRotated) {
    return "the segment was closed by rotation, the process ran on: scans run at exit only";
  }
  return "recorded with HEAPSIGHT_LEAK_SCAN=0";
}

namespace {

// BuildLeakReport, and with `with_groups` false BuildLeakTotals (then
// `suppressions` is empty and `with_frames` false).
LeakReport BuildReport(const std::vector<const ProcessProfile*>& profiles,
                       const Suppressions& suppressions, bool with_frames, bool with_groups) {
  LeakReport report;
  for (size_t pi = 0; pi < profiles.size(); ++pi) {
    const ProcessProfile& p = *profiles[pi];
    const LeakClassData& data = p.leak_classes;
    LeakProcess proc;
    proc.pid = p.pid;
    proc.ppid = p.ppid;
    proc.exe = p.exe;
    proc.trace = p.trace_path;
    proc.complete = p.complete;
    proc.truncated = p.truncated;
    proc.scanned = data.scanned;
    proc.scan_duration_us = data.duration_us;
    proc.threads_missed = data.threads_missed;
    proc.ended_in_exec = p.EndedInExec();
    proc.exec_path = p.exec_path;
    proc.rotated = p.EndedInRotation();
    if (proc.rotated) proc.next_segment = NextSegmentName(p);
    proc.no_scan_reason = NoScanReason(p);
    proc.window = AttachWindowText(p);
    if (!proc.window.empty()) {
      proc.window_info = AttachWindowOf(p);
      if (p.leak_classes.scanned) proc.window_leak_note = AttachWindowLeakNote(p);
    }
    LeakTotals& totals = proc.totals;
    // One group per site (stack, api) with blocks not freed at exit.
    std::vector<LeakGroup> sites;
    // An image replaced by exec has no exit: its blocks are discarded.
    // Nor a segment closed by rotation: its blocks go on in the next one.
    if (!proc.ended_in_exec && !proc.rotated) {
      totals.not_freed = {p.totals.leaked_bytes, p.totals.leaked_blocks};
    }
    totals.estimated = p.totals.estimated;
    totals.compact_frees = p.totals.compact_frees;
    // The classes' totals look every site with blocks not freed up in the
    // classes map, in site order, each a wait for its slot (cc1plus: 54 k
    // sites): each slot is loaded kAhead sites ahead.
    constexpr size_t kAhead = 8;
    const bool prefetch = !with_groups && !data.sites.empty();
    for (size_t index = 0; index < p.sites.size(); ++index) {
      const Site& site = p.sites[index];
      if (prefetch && index + kAhead < p.sites.size()) {
        const Site& ahead = p.sites[index + kAhead];
        if (ahead.stats.leaked_count != 0) {
          data.sites.prefetch({ahead.stack, static_cast<uint8_t>(ahead.api)});
        }
      }
      if (site.stats.leaked_count == 0) continue;
      ClassCounts counts{site.stats.leaked_bytes, site.stats.leaked_count};
      if (p.totals.estimated) {
        // A sampled trace: each site's blocks become the estimate the
        // totals sum (trace_model.h), so groups, classes and "not freed"
        // add up. Such traces have no scan (the preload scans exact traces
        // only), so a group is never split by class.
        ScaledBlocks e = ScaleLiveBlocks(static_cast<int64_t>(counts.blocks),
                                         static_cast<int64_t>(counts.bytes),
                                         static_cast<int64_t>(p.totals.sample_period));
        counts = {static_cast<uint64_t>(e.bytes), static_cast<uint64_t>(e.count)};
      }
      if (proc.ended_in_exec) {
        // The kernel freed them with the image: no group, no class, no leak.
        totals.discarded_by_exec += counts;
        continue;
      }
      if (proc.rotated) {
        // Still live when the segment was closed: not leaks.
        totals.carried_by_rotation += counts;
        continue;
      }
      if (site.kind == SiteKind::kRuntime) {
        totals.runtime += counts;
        continue;
      }
      if (!with_groups) {
        // The classes' totals only: the same sums as the groups below give,
        // in any order, without a group, its stack's cut or the sort.
        LeakClassCounts classes;
        if (auto it = data.sites.find({site.stack, static_cast<uint8_t>(site.api)});
            it != data.sites.end()) {
          classes = it->second;
        }
        LeakGroup g;
        g.counts = counts;
        SplitByClass(std::move(g), classes, nullptr, &totals.classes);
        continue;
      }
      LeakGroup g;
      g.counts = counts;
      g.api = site.api;
      g.stack = site.stack;
      g.process = pi;
      // Without frames to show or rules to match, the stack is not
      // symbolized: `report` prints the classes' totals only, and on cc1plus
      // symbolizing its 54 k leaked sites' stacks read libc's DWARF (10 MB)
      // for frames nothing prints.
      if (with_frames || !suppressions.empty()) {
        std::vector<const SymbolizedLocation*> stack =
            p.symbolizer->SymbolizeStack(p.StackIps(site.stack));
        if (const std::string* pattern = suppressions.Match(stack)) g.suppressed_by = *pattern;
        if (with_frames) g.frames = LeakStack(stack);
      }
      g.cut = p.StackCutOf(site.stack);
      sites.push_back(std::move(g));
    }
    std::sort(sites.begin(), sites.end(), [](const LeakGroup& a, const LeakGroup& b) {
      if (a.counts.bytes != b.counts.bytes) return a.counts.bytes > b.counts.bytes;
      if (a.counts.blocks != b.counts.blocks) return a.counts.blocks > b.counts.blocks;
      if (a.stack != b.stack) return a.stack < b.stack;
      return a.api < b.api;
    });
    // Then one group per class of the scan.
    for (LeakGroup& g : sites) {
      LeakClassCounts classes;
      if (auto it = data.sites.find({g.stack, static_cast<uint8_t>(g.api)});
          it != data.sites.end()) {
        classes = it->second;
      }
      if (g.suppressed_by.empty()) {
        SplitByClass(std::move(g), classes, &report.groups, &totals.classes);
      } else {
        totals.suppressed += g.counts;
        SplitByClass(std::move(g), classes, &report.suppressed, nullptr);
      }
    }
    totals.leaked = totals.classes.Lost(proc.scanned);
    for (const FreeErrorEvent& e : data.errors) {
      LeakFreeError err;
      err.process = pi;
      err.event = e;
      if (with_frames) err.free_frames = Frames(p, e.free_stack);
      err.free_cut = p.StackCutOf(e.free_stack);
      if (e.alloc_known) {
        if (with_frames) err.alloc_frames = Frames(p, e.alloc_stack);
        err.alloc_cut = p.StackCutOf(e.alloc_stack);
      }
      uint8_t k = static_cast<uint8_t>(e.error);
      ++totals.free_errors[k < 4 ? k : 0];
      report.errors.push_back(std::move(err));
    }
    report.totals += totals;
    report.complete = report.complete && proc.complete;
    report.processes.push_back(std::move(proc));
    // The addresses of the stacks above, each symbolized once, and why some
    // stayed without a name.
    if (with_frames && p.symbolizer != nullptr) report.symbols += p.symbolizer->Stats();
  }
  SortGroups(&report.groups);
  SortGroups(&report.suppressed);
  return report;
}

}  // namespace

LeakReport BuildLeakReport(const std::vector<const ProcessProfile*>& profiles,
                           const Suppressions& suppressions, bool with_frames) {
  return BuildReport(profiles, suppressions, with_frames, /*with_groups=*/true);
}

LeakReport BuildLeakTotals(const std::vector<const ProcessProfile*>& profiles) {
  return BuildReport(profiles, Suppressions(), /*with_frames=*/false, /*with_groups=*/false);
}

ClassCounts CountedLeaks(const LeakReport& report, const LeakKinds& kinds) {
  ClassCounts counted;
  for (const LeakProcess& proc : report.processes) {
    for (LeakClass c : kinds) {
      // Blocks allocated after the scan are not judged.
      if (c == LeakClass::kUnclassified && proc.scanned) continue;
      counted += proc.totals.classes[c];
    }
  }
  return counted;
}

std::string FormatLeakText(const LeakReport& report) {
  std::string out;
  for (size_t pi = 0; pi < report.processes.size(); ++pi) {
    const LeakProcess& proc = report.processes[pi];
    std::string name = proc.exe.empty() ? proc.trace : BaseName(proc.exe);
    std::string tag = absl::StrCat("==", proc.pid, "==");
    if (!proc.complete) {
      absl::StrAppend(&out, tag, "WARNING: heapsight: trace ", proc.trace, " was cut short (",
                      proc.truncated ? "file ends mid-block" : "no end record",
                      "); blocks freed after the cut show as not freed.\n");
    }
    if (proc.ended_in_exec) {
      absl::StrAppend(&out, tag, "heapsight: ", name, " ended in exec",
                      proc.exec_path.empty() ? "" : absl::StrCat(" of ", proc.exec_path), ": ",
                      proc.totals.discarded_by_exec.bytes, " byte(s) in ",
                      proc.totals.discarded_by_exec.blocks,
                      " block(s) discarded by exec (the kernel frees the image's heap; not "
                      "leaks).\n");
    } else if (proc.rotated) {
      absl::StrAppend(&out, tag, "heapsight: ", name,
                      ": segment closed by rotation; the run continues in ", proc.next_segment,
                      ": ", proc.totals.carried_by_rotation.bytes, " byte(s) in ",
                      proc.totals.carried_by_rotation.blocks,
                      " block(s) live at the cut carried into it (not leaks).\n");
    } else if (!proc.scanned) {
      absl::StrAppend(&out, tag, "WARNING: heapsight: no reachability scan in this trace (",
                      proc.no_scan_reason, "): blocks are only \"not freed\".\n");
    } else if (proc.threads_missed != 0) {
      absl::StrAppend(&out, tag, "WARNING: heapsight: ", proc.threads_missed,
                      " thread(s) did not stop for the scan; their registers were not "
                      "scanned.\n");
    }
    if (!proc.window.empty()) {
      absl::StrAppend(&out, tag, "NOTE: heapsight: ", name, ": ", proc.window, ".\n");
      if (!proc.window_leak_note.empty()) {
        absl::StrAppend(&out, tag, "NOTE: heapsight: ", proc.window_leak_note, ".\n");
      }
    }
    // Free errors first, as memcheck reports them when they happen.
    for (const LeakFreeError& e : report.errors) {
      if (e.process == pi) out += FreeErrorText(e, tag);
    }
    bool any = false, lost = false;
    for (const LeakGroup& g : report.groups) {
      if (g.process == pi && g.kind != LeakClass::kReachable &&
          !(g.kind == LeakClass::kUnclassified && proc.scanned)) {
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
      absl::StrAppend(&out, KindHeading(g.kind, proc.scanned), " of ", g.counts.bytes, " byte(s) in ",
                      g.counts.blocks, " object(s) allocated from:\n", FramesText(g.frames, g.cut),
                      "\n");
    }
    if (!any) absl::StrAppend(&out, tag, "heapsight: no leaks in ", name, "\n");
    const LeakTotals& t = proc.totals;
    if (t.suppressed.blocks != 0) {
      absl::StrAppend(&out, tag, "heapsight: suppressed ", t.suppressed.bytes, " byte(s) in ",
                      t.suppressed.blocks, " allocation(s).\n");
    }
    if (t.runtime.blocks != 0) {
      absl::StrAppend(&out, tag, "heapsight: not counted: ", t.runtime.bytes, " byte(s) in ",
                      t.runtime.blocks, " allocation(s) held by the C/C++ runtime.\n");
    }
    if (t.estimated) {
      absl::StrAppend(&out, tag,
                      "heapsight: sampled trace: every byte and block count above is an "
                      "estimate of the unsampled program (docs/glossary.md).\n");
    }
    if (t.compact_frees) absl::StrAppend(&out, tag, "heapsight: ", kCompactNoteText, ".\n");
    out += SummaryLines(tag, t.classes);
    if (report.processes.size() > 1) {
      absl::StrAppend(&out, tag, "SUMMARY: heapsight: ", t.leaked.bytes, " byte(s) leaked in ",
                      t.leaked.blocks, " allocation(s).\n\n");
    }
  }
  // Once for the whole report, as the JSON's "symbols" counts it.
  if (std::string u = UnsymbolizedText(report.symbols); !u.empty()) {
    absl::StrAppend(&out, "heapsight: ", u, ".\n");
  }
  const LeakTotals& t = report.totals;
  if (!report.errors.empty()) {
    absl::StrAppend(&out, "ERROR SUMMARY: ", report.errors.size(), " free error(s): ",
                    t.free_errors[1], " invalid, ", t.free_errors[2], " double, ",
                    t.free_errors[3], " mismatched.\n");
  }
  absl::StrAppend(&out, "SUMMARY: heapsight: ", t.leaked.bytes, " byte(s) leaked in ",
                  t.leaked.blocks, " allocation(s).\n");
  return out;
}

nlohmann::json LeakReportToJson(const LeakReport& report) {
  nlohmann::json processes = nlohmann::json::array();
  for (const LeakProcess& p : report.processes) {
    nlohmann::json j = {{"pid", p.pid},
                        {"ppid", p.ppid},
                        {"exe", p.exe},
                        {"trace", p.trace},
                        {"complete", p.complete},
                        {"truncated", p.truncated},
                        {"scanned", p.scanned},
                        {"scan_duration_us", p.scan_duration_us},
                        {"errors",
                         {{"invalid_free", p.totals.free_errors[1]},
                          {"double_free", p.totals.free_errors[2]},
                          {"mismatched_free", p.totals.free_errors[3]}}}};
    if (p.ended_in_exec) {
      j["ended_in_exec"] = true;
      j["exec_path"] = p.exec_path;
    }
    if (p.rotated) {
      j["rotated"] = true;
      j["next_segment"] = p.next_segment;
    }
    if (!p.window.empty()) {
      j["window"] = {{"attach_time", p.window_info.attach_time},
                     {"end", p.window_info.end},
                     {"end_time", p.window_info.end_time},
                     {"text", p.window}};
      if (!p.window_leak_note.empty()) j["window"]["leak_scan"] = p.window_leak_note;
    }
    AddTotalsJson(p.totals, &j);
    processes.push_back(std::move(j));
  }
  nlohmann::json groups = nlohmann::json::array();
  for (const LeakGroup& g : report.groups) groups.push_back(GroupJson(g, report));
  nlohmann::json suppressed = nlohmann::json::array();
  for (const LeakGroup& g : report.suppressed) suppressed.push_back(GroupJson(g, report));
  nlohmann::json errors = nlohmann::json::array();
  for (const LeakFreeError& e : report.errors) errors.push_back(FreeErrorJson(e, report));
  const LeakTotals& t = report.totals;
  nlohmann::json totals = {{"processes", report.processes.size()},
                           {"complete", report.complete},
                           {"errors",
                            {{"invalid_free", t.free_errors[1]},
                             {"double_free", t.free_errors[2]},
                             {"mismatched_free", t.free_errors[3]},
                             {"total", report.errors.size()}}}};
  AddTotalsJson(t, &totals);
  return {{"schema", "heapsight-leaks/1"},
          {"totals", std::move(totals)},
          {"processes", std::move(processes)},
          {"groups", std::move(groups)},
          {"suppressed", std::move(suppressed)},
          {"errors", std::move(errors)},
          {"symbols",
           {{"addresses", report.symbols.addresses},
            {"unsymbolized", report.symbols.unsymbolized()},
            {"no_module", report.symbols.no_module},
            {"module_unreadable", report.symbols.module_unreadable},
            {"no_debug_info", report.symbols.no_debug_info},
            {"no_symbol", report.symbols.no_symbol}}}};
}

std::string FormatLeakJson(const LeakReport& report) {
  return LeakReportToJson(report).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n";
}

std::string FormatLeakClassSummary(const LeakReport& report) {
  std::string out;
  for (const LeakProcess& proc : report.processes) {
    std::string tag = report.processes.size() > 1 ? absl::StrCat("pid ", proc.pid, " ")
                                                  : std::string();
    if (proc.ended_in_exec) {
      absl::StrAppend(&out, tag, "leaks: none, the image ended in exec (",
                      Thousands(proc.totals.discarded_by_exec.blocks),
                      " blocks discarded by exec)\n");
      continue;
    }
    if (proc.rotated) {
      absl::StrAppend(&out, tag, "leaks: none, segment closed by rotation; the run continues in ",
                      proc.next_segment, " (",
                      Thousands(proc.totals.carried_by_rotation.blocks),
                      " blocks carried into it)\n");
      continue;
    }
    if (!proc.scanned) {
      absl::StrAppend(&out, tag, "leaks: no reachability scan in the trace (",
                      proc.no_scan_reason, ")\n");
      continue;
    }
    if (!proc.window_leak_note.empty()) {
      absl::StrAppend(&out, tag, "window: ", proc.window, "; ", proc.window_leak_note, "\n");
    }
    absl::StrAppend(&out, "\n", tag, "leaks by reachability (scan at exit: ",
                    absl::StrFormat("%.1f", proc.scan_duration_us / 1000.0), " ms):\n");
    for (int i = 0; i < format::kLeakClassCount; ++i) {
      const ClassCounts& c = proc.totals.classes[kLeakClassesInOrder[i]];
      absl::StrAppend(&out, "  ", kClassLabels[i], ": ", Thousands(c.bytes), " bytes in ",
                      Thousands(c.blocks), " blocks\n");
    }
    const uint64_t* errors = proc.totals.free_errors;
    if (errors[1] + errors[2] + errors[3] != 0) {
      absl::StrAppend(&out, tag, "free errors: ", errors[1], " invalid, ", errors[2],
                      " double, ", errors[3], " mismatched (`heapsight leaks` shows both stacks)\n");
    }
  }
  return out;
}

absl::StatusOr<LeakClassData> ReadLeakClasses(const std::string& path) {
  AnalyzeOptions options;
  options.classify_runtime = false;
  absl::StatusOr<ProcessProfile> profile = AnalyzeTrace(path, options);
  if (!profile.ok()) return profile.status();
  return std::move(profile->leak_classes);
}

absl::Status RestrictToLeakKinds(ProcessProfile* profile, const LeakClassData& data,
                                 const LeakKinds& kinds, bool live_is_end) {
  bool wants_class = std::any_of(kinds.begin(), kinds.end(),
                                 [](LeakClass c) { return c != LeakClass::kUnclassified; });
  if (wants_class && !data.scanned) {
    return absl::FailedPreconditionError(absl::StrCat(
        profile->trace_path,
        ": no reachability scan in this trace (", NoScanReason(*profile),
        "); --leak-kinds needs one"));
  }
  for (Site& site : profile->sites) {
    LeakClassCounts classes;
    if (auto it = data.sites.find({site.stack, static_cast<uint8_t>(site.api)});
        it != data.sites.end()) {
      classes = it->second;
    }
    ClassCounts classified = classes.Classified();
    ClassCounts keep;
    for (LeakClass c : kinds) {
      if (c != LeakClass::kUnclassified) keep += classes[c];
    }
    if (kinds.count(LeakClass::kUnclassified) != 0 &&
        site.stats.leaked_count > classified.blocks) {
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

}  // namespace heapsight::analyzer
