// analyzer/report/text_report.cc: see text_report.h.
#include "analyzer/report/text_report.h"

#include <algorithm>
#include <functional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analyzer/model/family_totals.h"
#include "analyzer/model/site_ranking.h"
#include "analyzer/output/attach_window.h"
#include "analyzer/output/site_estimate.h"
#include "analyzer/output/stack_text.h"
#include "analyzer/output/text_util.h"
#include "analyzer/output/totals_text.h"

namespace heapsight::analyzer {
namespace {

std::string Plural(uint64_t n, const char* one, const char* many) {
  return absl::StrCat(Thousands(n), " ", n == 1 ? one : many);
}

std::string StatusLine(const ProcessProfile& p) {
  if (!p.complete) {
    // The trace cannot tell these causes apart: a killed process, one still
    // running, and a failed write (full disk: the preload cannot write its
    // end record either) all leave a trace without kEnd. Name them all.
    return absl::StrCat(
        "TRACE CUT SHORT: ",
        p.truncated ? "the file ends inside a block" : "the trace ends without an end record",
        " (the process was killed, is still running, or writing the trace failed); numbers "
        "cover the recorded part only");
  }
  switch (p.end_reason) {
    case format::EndReason::kExit:
      return absl::StrCat("complete, exit status ", p.exit_status);
    case format::EndReason::kUnderscoreExit:
      return absl::StrCat("complete, _exit status ", p.exit_status);
    case format::EndReason::kExec:
      return "complete, replaced by exec";
    case format::EndReason::kDisabled:
      return "INCOMPLETE: the recorder stepped aside (see its messages); numbers cover the "
             "recorded part only";
    case format::EndReason::kDetach:
      return "complete, detached (the process ran on)";
    case format::EndReason::kRotated:
      return absl::StrCat("complete, segment closed by rotation; the run continues in ",
                          NextSegmentName(p));
  }
  return "complete";
}

std::string BucketLabel(int b) {
  if (b == 0) return "0";
  uint64_t lo = uint64_t{1} << (b - 1);
  if (b == 1) return "1";
  uint64_t hi = b == 64 ? UINT64_MAX : (uint64_t{1} << b) - 1;
  return absl::StrCat(Thousands(lo), "..", Thousands(hi));
}

// The sites of the report's lists (RankSites), ranked in one pass over
// the sites (RankSitesByKeys): each list a sweep of its own was a fifth
// of the main thread's time after a cc1plus trace's pass.
struct SiteLists {
  std::vector<const Site*> peak;       // by bytes live at the peak
  std::vector<const Site*> allocs;     // by allocations
  std::vector<const Site*> bytes;      // by bytes allocated
  std::vector<const Site*> leaked;     // by bytes not freed at exit
  std::vector<const Site*> temporary;  // by temporary allocations (exact traces only)
};

SiteLists RankLists(const ProcessProfile& p, const ReportOptions& options) {
  using Key = std::function<uint64_t(const SiteStats&)>;
  std::vector<Key> keys = {
      [](const SiteStats& s) { return s.peak_bytes; },
      [](const SiteStats& s) { return s.alloc_count; },
      [](const SiteStats& s) { return s.alloc_bytes; },
      [](const SiteStats& s) { return s.leaked_bytes; },
  };
  // heaptrack_print's "most temporary allocations": exact traces only (a
  // sampled trace does not record the calls that decide it).
  const bool temporary = (p.header.flags & format::kFileFlagSampled) == 0;
  if (temporary) keys.push_back([](const SiteStats& s) { return s.temporary_count; });
  // A sampled trace's lists rank each site's estimate (site_estimate.h).
  // An exact trace's estimate is its stats: ranked by the key itself, not
  // through a copy of each site's stats (cc1plus: 93 k sites, six lists).
  if (p.totals.estimated) {
    for (Key& key : keys) {
      key = [&p, key](const SiteStats& s) { return key(EstimatedSiteStats(s, p.totals)); };
    }
  }
  std::vector<std::vector<const Site*>> lists = RankSitesByKeys(p, options.top_sites, keys);
  SiteLists out;
  out.peak = std::move(lists[0]);
  out.allocs = std::move(lists[1]);
  out.bytes = std::move(lists[2]);
  out.leaked = std::move(lists[3]);
  if (temporary) out.temporary = std::move(lists[4]);
  return out;
}

void TopSites(std::string& out, const ProcessProfile& p, const ReportOptions& options,
              const char* title, const std::vector<const Site*>& sites,
              const std::function<std::string(const SiteStats&)>& label) {
  // A sampled trace's lists show each site's estimate (site_estimate.h).
  auto estimated = [&p](const SiteStats& s) { return EstimatedSiteStats(s, p.totals); };
  if (sites.empty()) return;
  std::string heading = title;
  if (p.totals.estimated && !heading.empty() && heading.back() == ':') {
    heading.pop_back();
    heading += " (estimates):";
  }
  absl::StrAppend(&out, heading, "\n");
  for (const Site* s : sites) {
    absl::StrAppend(&out, "  ", label(estimated(s->stats)), "  ", format::ApiName(s->api), "\n      ",
                    DescribeStack(p, s->stack, options.frames_per_site), "\n");
  }
}

// The trace's markers with the live heap (all blocks) at each, and the
// moment the preload's heap limit was first hit.
void Markers(std::string& out, const ProcessProfile& p) {
  if (p.markers.empty()) return;
  constexpr size_t kMaxListed = 50;
  absl::StrAppend(&out, "markers (time since the start, live heap then):\n");
  for (size_t i = 0; i < p.markers.size() && i < kMaxListed; ++i) {
    const Marker& m = p.markers[i];
    absl::StrAppend(&out, "  \"", m.name, "\" at ", Seconds(m.time_us, ResolutionOf(p.header.flags)), ": ", Bytes(m.heap_bytes),
                    " in ", Plural(m.heap_blocks, "block", "blocks"), "\n");
  }
  if (p.markers.size() > kMaxListed) {
    absl::StrAppend(&out, "  ... (", Thousands(p.markers.size() - kMaxListed), " more)\n");
  }
  for (const Marker& m : p.markers) {
    if (m.name != kHeapLimitMarker) continue;
    absl::StrAppend(&out, "heap limit hit at ", Seconds(m.time_us, ResolutionOf(p.header.flags)), ": live heap ",
                    Bytes(m.heap_bytes), " in ", Plural(m.heap_blocks, "block", "blocks"), "\n");
    break;
  }
}

// The C/C++ runtime's own blocks, which no total above counts
// (trace_model.h, docs/glossary.md "Runtime blocks").
void RuntimeLine(std::string& out, const Totals& t, const RuntimeTotals& rt) {
  if (rt.allocs == 0 && rt.leaked_blocks == 0) return;
  absl::StrAppend(&out, "C/C++ runtime (not counted above): ", TotalCount(t, rt.allocs),
                  rt.allocs == 1 ? " allocation" : " allocations", ", ",
                  TotalBytes(t, rt.bytes_allocated), "; ", TotalBytes(t, rt.leaked_bytes), " in ",
                  Plural(rt.leaked_blocks, "block", "blocks"), " held at exit\n");
}

void ProcessSection(std::string& out, const ProcessProfile& p, const ReportOptions& options) {
  std::string command = p.exe.empty() ? "(unknown program)" : p.exe;
  if (p.argv.size() > 1) {
    for (size_t i = 1; i < p.argv.size(); ++i) absl::StrAppend(&command, " ", p.argv[i]);
  }
  absl::StrAppend(&out, "== process ", p.pid, " (parent ", p.ppid, "): ", command, "\n");
  absl::StrAppend(&out, "trace: ", p.trace_path, "\n");
  absl::StrAppend(&out, "status: ", StatusLine(p), "\n");
  if (std::string window = AttachWindowText(p); !window.empty()) {
    absl::StrAppend(&out, "window: ", window, "\n");
  }
  const Totals& t = p.totals;
  if (t.estimated) absl::StrAppend(&out, EstimateNote(t), "\n");
  if (t.compact_frees) absl::StrAppend(&out, CompactNote(t), "\n");
  absl::StrAppend(&out, "duration: ", Seconds(p.duration_us, ResolutionOf(p.header.flags)), ", ", Plural(p.threads, "thread", "threads"), "\n");
  absl::StrAppend(&out, t.estimated ? "allocation calls (estimates):\n" : "allocation calls:\n");
  for (size_t api = 0; api < t.allocs_by_api.size(); ++api) {
    if (t.allocs_by_api[api] == 0) continue;
    absl::StrAppendFormat(&out, "  %-50s %12s\n", format::ApiName(static_cast<format::Api>(api)),
                          Thousands(t.allocs_by_api[api]));
  }
  absl::StrAppendFormat(&out, "  %-50s %12s\n", "blocks freed", Thousands(t.frees));
  absl::StrAppend(&out, "bytes allocated: ", TotalBytes(t, t.bytes_allocated, t.bytes_allocated_error),
                  " in ", TotalCount(t, t.allocs, t.allocs_error),
                  t.allocs == 1 ? " allocation" : " allocations", "\n");
  absl::StrAppend(&out, "peak heap: ", TotalBytes(t, t.peak_bytes, t.peak_bytes_error), " in ",
                  Plural(t.peak_blocks, "block", "blocks"), " at ",
                  Seconds(t.peak_time_us, ResolutionOf(p.header.flags)), "\n");
  const SiteLists lists = RankLists(p, options);
  TopSites(out, p, options, "top call sites live at the peak:", lists.peak,
           [](const SiteStats& s) {
             return absl::StrCat(Bytes(s.peak_bytes), " in ", Plural(s.peak_count, "block", "blocks"));
           });
  // An image replaced by exec has no exit: the kernel discarded its heap.
  // A segment closed by rotation has none either: the process ran on.
  absl::StrAppend(&out,
                  p.EndedInExec()       ? "ended in exec: "
                  : p.EndedInRotation() ? "live at the segment's end: "
                                        : "not freed at exit: ",
                  TotalBytes(t, t.leaked_bytes, t.leaked_bytes_error), " in ",
                  Plural(t.leaked_blocks, "block", "blocks"),
                  p.EndedInExec()       ? " discarded by exec (not leaks)\n"
                  : p.EndedInRotation() ? " carried into the next segment (not leaks)\n"
                                        : "\n");
  Markers(out, p);
  if (!p.rss_timeline.empty()) {
    TimePoint max_rss = p.rss_timeline[0];
    for (const TimePoint& tp : p.rss_timeline) {
      if (tp.value > max_rss.value) max_rss = tp;
    }
    absl::StrAppend(&out, "peak RSS sampled: ", Bytes(max_rss.value), " at ",
                    Seconds(max_rss.time_us, ResolutionOf(p.header.flags)), " (includes heapsight's own memory)\n");
  }
  if (t.inherited_blocks != 0) {
    absl::StrAppend(&out, "inherited from the parent at fork: ", TotalBytes(t, t.inherited_bytes), " in ",
                    Plural(t.inherited_blocks, "block", "blocks"), "\n");
  }
  if (t.temporary_known) {
    absl::StrAppendFormat(&out, "temporary allocations: %s of %s (%.1f%%)\n",
                          Thousands(t.temporary), Thousands(t.allocs),
                          t.allocs == 0 ? 0.0 : 100.0 * static_cast<double>(t.temporary) /
                                                    static_cast<double>(t.allocs));
  } else {
    absl::StrAppend(&out, "temporary allocations: not known in a sampled trace\n");
  }
  RuntimeLine(out, t, p.runtime_totals);
  if (t.failed_allocs != 0) absl::StrAppend(&out, "failed allocations: ", Thousands(t.failed_allocs), "\n");
  if (t.bad_frees != 0) absl::StrAppend(&out, "invalid or double frees: ", Thousands(t.bad_frees), "\n");
  if (t.unmatched_frees != 0) {
    absl::StrAppend(&out, "frees of unknown blocks: ", Thousands(t.unmatched_frees), "\n");
  }
  if (t.lost_events != 0) {
    absl::StrAppend(&out, "WARNING: the recorder lost ", Thousands(t.lost_events), " events\n");
  }
  for (const std::string& w : p.warnings) absl::StrAppend(&out, "warning: ", w, "\n");

  TopSites(out, p, options, "top call sites by allocations:", lists.allocs,
           [](const SiteStats& s) { return Plural(s.alloc_count, "allocation", "allocations"); });
  TopSites(out, p, options, "top call sites by bytes allocated:", lists.bytes,
           [](const SiteStats& s) { return Bytes(s.alloc_bytes); });
  TopSites(out, p, options, "top call sites by peak heap:", lists.peak,
           [](const SiteStats& s) { return Bytes(s.peak_bytes); });
  // heaptrack_print's "most temporary allocations": a sampled trace's list
  // is empty (RankLists), so it prints nothing.
  TopSites(out, p, options, "most temporary allocations:", lists.temporary,
           [](const SiteStats& s) {
             return absl::StrFormat(
                 "%s temporary of %s (%.1f%%), %s", Thousands(s.temporary_count),
                 Plural(s.alloc_count, "allocation", "allocations"),
                 s.alloc_count == 0 ? 0.0
                                    : 100.0 * static_cast<double>(s.temporary_count) /
                                          static_cast<double>(s.alloc_count),
                 Bytes(s.temporary_bytes));
           });
  TopSites(out, p, options,
           p.EndedInRotation() ? "top call sites by bytes live at the segment's end:"
                               : "top call sites by bytes not freed at exit:",
           lists.leaked, [](const SiteStats& s) {
             return absl::StrCat(Bytes(s.leaked_bytes), " in ", Plural(s.leaked_count, "block", "blocks"));
           });

  uint64_t max_count = 0;
  for (uint64_t c : p.size_histogram) max_count = std::max(max_count, c);
  if (max_count != 0) {
    absl::StrAppend(&out, t.estimated ? "allocation sizes (bytes: sampled allocations):\n"
                                      : "allocation sizes (bytes: allocations):\n");
    for (int b = 0; b < kSizeBuckets; ++b) {
      uint64_t c = p.size_histogram[b];
      if (c == 0) continue;
      size_t bar = static_cast<size_t>((c * 40 + max_count - 1) / max_count);
      absl::StrAppendFormat(&out, "  %28s: %12s %s\n", BucketLabel(b), Thousands(c),
                            std::string(bar, '#'));
    }
  }
  out += "\n";
}

}  // namespace

std::string FormatReport(const std::vector<const ProcessProfile*>& profiles,
                         const ReportOptions& options) {
  std::string out;
  for (const ProcessProfile* p : profiles) ProcessSection(out, *p, options);
  if (profiles.size() > 1) {
    FamilyTotals f = SumTotals(profiles);
    const Totals& sum = f.sum;
    absl::StrAppend(&out, "== total (", profiles.size(), " processes)\n");
    if (f.incomplete != 0) {
      absl::StrAppend(&out, "TRACE CUT SHORT: ", Plural(f.incomplete, "trace", "traces"),
                      " without an end record\n");
    }
    absl::StrAppend(&out, "allocations: ", TotalCount(sum, sum.allocs, sum.allocs_error),
                    ", blocks freed: ", TotalCount(sum, sum.frees), "\n");
    absl::StrAppend(&out, "bytes allocated: ",
                    TotalBytes(sum, sum.bytes_allocated, sum.bytes_allocated_error), "\n");
    absl::StrAppend(&out, "largest peak heap of one process: ",
                    TotalBytes(sum, sum.peak_bytes, sum.peak_bytes_error));
    if (f.peak != nullptr) {
      absl::StrAppend(&out, " (pid ", f.peak->pid, " at ",
                      Seconds(sum.peak_time_us, ResolutionOf(f.peak->header.flags)), ")");
    }
    absl::StrAppend(&out, "\n");
    absl::StrAppend(&out, "not freed at exit: ", TotalBytes(sum, sum.leaked_bytes, sum.leaked_bytes_error),
                    " in ", Plural(sum.leaked_blocks, "block", "blocks"), "\n");
    if (f.execs != 0) {
      absl::StrAppend(&out, "ended in exec: ", Plural(f.execs, "process image", "process images"),
                      "; ", TotalBytes(sum, f.discarded_bytes), " in ",
                      Plural(f.discarded_blocks, "block", "blocks"), " discarded by exec (not leaks)\n");
    }
    if (f.rotations != 0) {
      absl::StrAppend(&out, "closed by rotation: ", Plural(f.rotations, "segment", "segments"),
                      "; ", TotalBytes(sum, f.carried_bytes), " in ",
                      Plural(f.carried_blocks, "block", "blocks"),
                      " carried into later segments (not leaks)\n");
    }
    if (sum.temporary_known) {
      absl::StrAppend(&out, "temporary allocations: ", Thousands(sum.temporary), "\n");
    } else {
      absl::StrAppend(&out, "temporary allocations: not known in a sampled trace\n");
    }
    RuntimeLine(out, sum, f.runtime);
  }
  // Once, after every stack above was symbolized (leaks says it the same
  // way; its JSON has the counts under "symbols").
  if (std::string u = UnsymbolizedText(SymbolStatsOf(profiles)); !u.empty()) {
    absl::StrAppend(&out, "symbols: ", u, "\n");
  }
  return out;
}

}  // namespace heapsight::analyzer
