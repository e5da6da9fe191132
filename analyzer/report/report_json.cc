// analyzer/report/report_json.cc: see report_json.h.
#include "analyzer/report/report_json.h"

#include <algorithm>
#include <functional>

#include "analyzer/model/family_totals.h"
#include "analyzer/model/site_ranking.h"
#include "analyzer/output/attach_window.h"
#include "analyzer/report/site_json.h"
#include "format/trace_format.h"
#include "nlohmann/json.hpp"

namespace heapsight::analyzer {
namespace {

using Json = nlohmann::json;

Json SiteJson(const ProcessProfile& p, const Site& site) {
  const SiteStats& s = site.stats;
  // The shared call-site shape (site_json.h), then the site's numbers.
  Json out = CallSiteJson(p, site.stack, site.api);
  out.update(Json{{"alloc_count", s.alloc_count},
              {"alloc_bytes", s.alloc_bytes},
              {"peak_count", s.peak_count},
              {"peak_bytes", s.peak_bytes},
              {"not_freed_count", s.leaked_count},
              {"not_freed_bytes", s.leaked_bytes}});
  if ((p.header.flags & format::kFileFlagSampled) == 0) {
    out["temporary_count"] = s.temporary_count;
    out["temporary_bytes"] = s.temporary_bytes;
  }
  return out;
}

Json TopSites(const ProcessProfile& p, const ReportOptions& options,
              const std::function<uint64_t(const SiteStats&)>& key) {
  Json out = Json::array();
  for (const Site* site : RankSites(p, options.top_sites, key)) out.push_back(SiteJson(p, *site));
  return out;
}

Json ProcessJson(const ProcessProfile& p, const ReportOptions& options) {
  const Totals& t = p.totals;
  const bool sampled = (p.header.flags & format::kFileFlagSampled) != 0;
  Json totals = {{"allocations", t.allocs},
                 {"blocks_freed", t.frees},
                 {"bytes_allocated", t.bytes_allocated},
                 {"peak_bytes", t.peak_bytes},
                 {"peak_blocks", t.peak_blocks},
                 {"peak_time_us", t.peak_time_us},
                 {"not_freed_bytes", t.leaked_bytes},
                 {"not_freed_blocks", t.leaked_blocks},
                 {"temporary", t.temporary}};
  Json top = {
      {"by_allocations", TopSites(p, options, [](const SiteStats& s) { return s.alloc_count; })},
      {"by_bytes_allocated", TopSites(p, options, [](const SiteStats& s) { return s.alloc_bytes; })},
      {"by_peak_bytes", TopSites(p, options, [](const SiteStats& s) { return s.peak_bytes; })},
      {"by_not_freed_bytes", TopSites(p, options, [](const SiteStats& s) { return s.leaked_bytes; })}};
  if (!sampled) {
    top["most_temporary"] = TopSites(p, options, [](const SiteStats& s) { return s.temporary_count; });
  }
  Json out = {{"pid", p.pid},
              {"ppid", p.ppid},
              {"executable", p.exe},
              {"argv", p.argv},
              {"trace", p.trace_path},
              {"complete", p.complete},
              {"ended_in_exec", p.EndedInExec()},
              {"sample_period_bytes", sampled ? p.header.sample_period_bytes : 0},
              {"duration_us", p.duration_us},
              {"threads", p.threads},
              {"totals", totals},
              {"top_sites", top}};
  if (t.compact_frees) {
    // Once per process, not per site: what a compact trace leaves
    // approximate (trace_model.h, Totals::compact_frees).
    out["compact_frees"] = true;
    out["approximate"] = {"temporary", "lifetimes", "not_freed_allocation_times"};
  }
  if (p.EndedInRotation()) {
    out["rotated"] = true;
    out["next_segment"] = NextSegmentName(p);
  }
  if (IsAttachedWindow(p)) {
    AttachWindow w = AttachWindowOf(p);
    out["window"] = {{"attach_time", w.attach_time},
                     {"end", w.end},
                     {"end_time", w.end_time},
                     {"text", AttachWindowText(p)}};
  }
  return out;
}

}  // namespace

std::string FormatReportJson(const std::vector<const ProcessProfile*>& profiles,
                             const ReportOptions& options) {
  Json processes = Json::array();
  for (const ProcessProfile* p : profiles) processes.push_back(ProcessJson(*p, options));
  Json doc = {{"schema", "heapsight-report/2"}, {"processes", processes}};
  if (profiles.size() > 1) {
    // Summed as every command sums a family (family_totals.h): the blocks
    // of an image that ended in exec, or of a segment closed by rotation,
    // are not "not freed at exit".
    const FamilyTotals f = SumTotals(profiles);
    doc["total"] = {{"processes", profiles.size()},
                    {"allocations", f.sum.allocs},
                    {"blocks_freed", f.sum.frees},
                    {"bytes_allocated", f.sum.bytes_allocated},
                    {"largest_peak_bytes", f.sum.peak_bytes},
                    {"temporary", f.sum.temporary},
                    {"not_freed_bytes", f.sum.leaked_bytes},
                    {"not_freed_blocks", f.sum.leaked_blocks}};
    if (f.execs != 0) {
      doc["total"]["discarded_by_exec_bytes"] = f.discarded_bytes;
      doc["total"]["discarded_by_exec_blocks"] = f.discarded_blocks;
    }
    if (f.rotations != 0) {
      doc["total"]["carried_by_rotation_bytes"] = f.carried_bytes;
      doc["total"]["carried_by_rotation_blocks"] = f.carried_blocks;
    }
  }
  // Symbols and paths come from untrusted files: replace invalid UTF-8.
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace heapsight::analyzer
