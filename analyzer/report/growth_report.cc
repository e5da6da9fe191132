// analyzer/report/growth_report.cc: see growth_report.h.
#include "analyzer/report/growth_report.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analyzer/output/attach_window.h"
#include "analyzer/output/stack_text.h"
#include "analyzer/symbols/symbolizer.h"
#include "analyzer/output/text_util.h"
#include "analyzer/output/totals_text.h"
#include "analyzer/report/site_json.h"
#include "fmt/format.h"
#include "format/trace_format.h"
#include "nlohmann/json.hpp"

namespace heapsight::analyzer {
namespace {

std::string Rate(double bytes_per_second) {
  double v = bytes_per_second;
  const char* unit = "B/s";
  if (v >= 1024.0 * 1024 * 1024) {
    v /= 1024.0 * 1024 * 1024;
    unit = "GiB/s";
  } else if (v >= 1024.0 * 1024) {
    v /= 1024.0 * 1024;
    unit = "MiB/s";
  } else if (v >= 1024.0) {
    v /= 1024.0;
    unit = "KiB/s";
  }
  return fmt::format("{:.1f} {}", v, unit);
}

}  // namespace

std::string FormatGrowthText(const std::vector<const ProcessProfile*>& profiles,
                             const GrowthOptions& options) {
  std::string out;
  for (const ProcessProfile* p : profiles) {
    absl::StrAppend(&out, "== process ", p->pid, ": ", p->exe.empty() ? "(unknown)" : p->exe,
                    "\n");
    absl::StrAppend(&out, "window: ", Seconds(p->growth_window_begin_us, ResolutionOf(p->header.flags)),
                    " to ", Seconds(p->growth_window_end_us, ResolutionOf(p->header.flags)),
                    " (the last allocation or free); each site's live bytes are fitted by a "
                    "line up to their highest point\n");
    // The process's totals, as every command prints them (trace_model.h).
    const Totals& t = p->totals;
    absl::StrAppend(&out, "heap: ", TotalBytes(t, t.bytes_allocated, t.bytes_allocated_error),
                    " allocated; peak ", TotalBytes(t, t.peak_bytes, t.peak_bytes_error), " at ",
                    Seconds(t.peak_time_us, ResolutionOf(p->header.flags)),
                    p->EndedInExec()       ? "; discarded by exec "
                    : p->EndedInRotation() ? "; live at the segment's end "
                                           : "; not freed at exit ",
                    TotalBytes(t, t.leaked_bytes, t.leaked_bytes_error), " in ",
                    Thousands(t.leaked_blocks), t.leaked_blocks == 1 ? " block\n" : " blocks\n");
    if (p->EndedInRotation()) {
      // As `report` and `leaks` say it (text_report.cc, leak_report.cc).
      absl::StrAppend(&out, "segment closed by rotation; the run continues in ",
                      NextSegmentName(*p),
                      ": the blocks live at its end are carried into it (not leaks)\n");
    }
    if (t.estimated) {
      absl::StrAppend(&out, "sampled trace: the heap line is estimated; the call sites' bytes "
                            "are those of sampled allocations\n");
    }
    std::vector<GrowingSite> ranked = RankGrowth(*p, options);
    if (ranked.empty()) {
      absl::StrAppend(&out, "no call site's live memory grew in the window\n\n");
      continue;
    }
    absl::StrAppendFormat(&out, "%12s %5s %14s %14s %14s  %s\n", "growth", "fit", "live at start",
                          "most live", "live at end", "call site");
    for (const GrowingSite& g : ranked) {
      const Site& site = p->sites[g.site];
      const char* api = format::ApiName(site.api);
      absl::StrAppendFormat(&out, "%12s %5.2f %14s %14s %14s  %s\n",
                            Rate(g.growth.bytes_per_second), g.growth.fit,
                            Thousands(g.growth.live_at_begin), Thousands(g.growth.live_max),
                            Thousands(g.growth.live_at_end), api != nullptr ? api : "?");
      absl::StrAppend(&out, "      ", DescribeStack(*p, site.stack, options.frames), "\n");
    }
    absl::StrAppend(&out, "\n");
  }
  return out;
}

std::string FormatGrowthJson(const std::vector<const ProcessProfile*>& profiles,
                             const GrowthOptions& options) {
  nlohmann::json processes = nlohmann::json::array();
  for (const ProcessProfile* p : profiles) {
    nlohmann::json sites = nlohmann::json::array();
    for (const GrowingSite& g : RankGrowth(*p, options)) {
      const Site& site = p->sites[g.site];
      // The shared call-site shape (site_json.h), then the growth.
      nlohmann::json j = CallSiteJson(*p, site.stack, site.api);
      j.update(nlohmann::json{{"bytes_per_second", g.growth.bytes_per_second},
                              {"fit", g.growth.fit},
                              {"rise", g.growth.rise},
                              {"live_at_begin", g.growth.live_at_begin},
                              {"live_max", g.growth.live_max},
                              {"live_at_end", g.growth.live_at_end}});
      sites.push_back(std::move(j));
    }
    nlohmann::json process = {{"pid", p->pid},
                         {"exe", p->exe},
                         {"trace", p->trace_path},
                         {"sampled", (p->header.flags & format::kFileFlagSampled) != 0},
                         {"totals",
                          {{"bytes_allocated", p->totals.bytes_allocated},
                           {"allocations", p->totals.allocs},
                           {"peak_bytes", p->totals.peak_bytes},
                           {"peak_time_us", p->totals.peak_time_us},
                           {"not_freed_bytes", p->totals.leaked_bytes},
                           {"not_freed_blocks", p->totals.leaked_blocks},
                           {"ended_in_exec", p->EndedInExec()},
                           {"estimated", p->totals.estimated}}},
                         {"window_begin_us", p->growth_window_begin_us},
                         {"end_us", p->growth_window_end_us},
                         {"sites", sites}};
    if (p->EndedInRotation()) {
      // The fields, names and numbers of the leaks JSON (leak_report.cc):
      // every block live at the segment's end, the runtime's too, goes on
      // in the next segment.
      process["rotated"] = true;
      process["next_segment"] = NextSegmentName(*p);
      process["totals"]["carried_by_rotation_bytes"] =
          p->totals.leaked_bytes + p->runtime_totals.leaked_bytes;
      process["totals"]["carried_by_rotation_blocks"] =
          p->totals.leaked_blocks + p->runtime_totals.leaked_blocks;
    }
    processes.push_back(std::move(process));
  }
  nlohmann::json doc = {{"schema", "heapsight-growth/1"}, {"processes", processes}};
  // Symbols come from untrusted ELF files: replace invalid UTF-8 rather
  // than throw.
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace heapsight::analyzer
