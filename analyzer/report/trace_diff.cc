// analyzer/report/trace_diff.cc: see trace_diff.h.
#include "analyzer/report/trace_diff.h"

#include <algorithm>
#include <cstdlib>
#include <map>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "analyzer/symbols/symbolizer.h"
#include "analyzer/output/site_metric.h"
#include "analyzer/output/stack_text.h"
#include "analyzer/output/text_util.h"
#include "format/trace_format.h"
#include "nlohmann/json.hpp"

namespace heapsight::analyzer {
namespace {

int64_t Signed(uint64_t v) {
  return v > static_cast<uint64_t>(INT64_MAX) ? INT64_MAX : static_cast<int64_t>(v);
}

// The key's function names, leaf first; an unsymbolized frame is its
// module's file name (or "?"). *first_own: the first frame that is not the
// standard library's or the allocator's (IsLibraryFrame), 0 if none is.
std::vector<std::string> FunctionsOf(const ProcessProfile& p, uint64_t stack, size_t* first_own) {
  std::vector<std::string> out;
  *first_own = SIZE_MAX;
  for (const SymbolizedLocation* loc : p.symbolizer->SymbolizeStack(p.StackIps(stack))) {
    for (const SourceFrame& f : loc->frames) {
      if (*first_own == SIZE_MAX && !IsLibraryFrame(f, *loc)) *first_own = out.size();
      if (!f.function.empty()) {
        out.push_back(f.function);
      } else if (loc->module != nullptr) {
        out.push_back(BaseName(loc->module->path));
      } else {
        out.push_back("?");
      }
    }
  }
  if (*first_own == SIZE_MAX) *first_own = 0;
  return out;
}

// Saturating: a hostile trace's counters may be near 2^64.
void AddTo(int64_t& to, uint64_t v) {
  if (__builtin_add_overflow(to, Signed(v), &to)) to = INT64_MAX;
}

void Add(DiffValues& to, const SiteStats& s) {
  AddTo(to.allocs, s.alloc_count);
  AddTo(to.bytes, s.alloc_bytes);
  AddTo(to.peak_bytes, s.peak_bytes);
  AddTo(to.leaked_bytes, s.leaked_bytes);
  AddTo(to.leaked_blocks, s.leaked_count);
}

std::string SignedThousands(int64_t v) {
  if (v == 0) return "0";
  return (v > 0 ? "+" : "-") + Thousands(static_cast<uint64_t>(v > 0 ? v : -v));
}

std::string Change(int64_t base, int64_t current) {
  std::string out = absl::StrCat(Thousands(static_cast<uint64_t>(std::max<int64_t>(base, 0))),
                                 " -> ", Thousands(static_cast<uint64_t>(std::max<int64_t>(current, 0))),
                                 " (", SignedThousands(current - base));
  if (base > 0) {
    absl::StrAppendFormat(&out, ", %+.1f%%", 100.0 * static_cast<double>(current - base) /
                                                 static_cast<double>(base));
  }
  return out + ")";
}

// The names of the report's call sites (report_json.h).
nlohmann::json ValuesJson(const DiffValues& v) {
  return {{"alloc_count", v.allocs},
          {"alloc_bytes", v.bytes},
          {"peak_bytes", v.peak_bytes},
          {"not_freed_bytes", v.leaked_bytes},
          {"not_freed_count", v.leaked_blocks}};
}

const char* MetricName(DiffMetric m) { return DiffMetricName(m); }

// The frames a text line shows: from `start` (the program's own first
// frame, or the library frame that tells the line from another), at most
// `own` frames after the first own one, with the counted rest.
// `counted`: with the "(below N library frames)" note; without it, the
// line's frames alone, what tells two rows apart.
std::string StackLine(const DiffEntry& e, size_t start, size_t own, bool counted = true) {
  size_t end = std::min(e.functions.size(), e.first_own + own);
  if (end < start) end = start;
  std::string out = absl::StrJoin(e.functions.begin() + start, e.functions.begin() + end, " <- ");
  if (end < e.functions.size()) {
    absl::StrAppend(&out, " <- ... (", e.functions.size() - end, " more)");
  }
  if (start != 0 && counted) {
    absl::StrAppend(&out, " (below ", start, start == 1 ? " library frame)" : " library frames)");
  }
  if (e.cut.cut) absl::StrAppend(&out, end != start ? " <- " : "", StackCutText(e.cut, ""));
  if (e.functions.empty() && !e.cut.cut) absl::StrAppend(&out, "(no stack)");
  return out;
}

}  // namespace

const char* DiffMetricName(DiffMetric m) {
  switch (m) {
    case DiffMetric::kBytes: return "alloc_bytes";
    case DiffMetric::kAllocs: return "alloc_count";
    case DiffMetric::kPeakBytes: return "peak_bytes";
    case DiffMetric::kLeakedBytes: return "not_freed_bytes";
  }
  return "?";
}

absl::StatusOr<DiffMetric> ParseDiffMetric(const std::string& name) {
  absl::StatusOr<output::SiteMetric> m = output::ParseSiteMetric(name);
  if (!m.ok()) return m.status();
  switch (*m) {
    case output::SiteMetric::kAllocBytes: return DiffMetric::kBytes;
    case output::SiteMetric::kAllocCount: return DiffMetric::kAllocs;
    case output::SiteMetric::kPeakBytes: return DiffMetric::kPeakBytes;
    case output::SiteMetric::kLeakedBytes: return DiffMetric::kLeakedBytes;
    default: break;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "diff does not compare --metric ", name,
      " (alloc_bytes, alloc_count, peak_bytes or not_freed_bytes)"));
}

int64_t MetricOf(const DiffValues& v, DiffMetric metric) {
  switch (metric) {
    case DiffMetric::kBytes: return v.bytes;
    case DiffMetric::kAllocs: return v.allocs;
    case DiffMetric::kPeakBytes: return v.peak_bytes;
    case DiffMetric::kLeakedBytes: return v.leaked_bytes;
  }
  return 0;
}

TraceDiff DiffProfiles(const ProcessProfile& base, const ProcessProfile& current) {
  TraceDiff diff;
  std::map<std::pair<std::string, std::vector<std::string>>, size_t> index;
  auto collect = [&](const ProcessProfile& p, bool is_base) {
    for (const Site& site : p.sites) {
      if (site.kind != SiteKind::kProgram) continue;
      const char* api_name = format::ApiName(site.api);
      std::string api = api_name != nullptr ? api_name : "?";
      size_t first_own = 0;
      std::vector<std::string> functions = FunctionsOf(p, site.stack, &first_own);
      auto [it, inserted] = index.try_emplace({api, functions}, diff.entries.size());
      if (inserted) {
        DiffEntry e;
        e.api = api;
        e.api_id = site.api;
        e.functions = std::move(functions);
        e.frames = SiteFramesOf(p, site.stack);
        e.first_own = first_own;
        diff.entries.push_back(std::move(e));
      }
      DiffEntry& e = diff.entries[it->second];
      if (!e.cut.cut) e.cut = p.StackCutOf(site.stack);
      Add(is_base ? e.base : e.current, site.stats);
    }
  };
  collect(base, true);
  collect(current, false);
  // The totals are the traces' own (trace_model.h: runtime blocks
  // included, estimates in a sampled trace), the numbers `report` prints;
  // the heap's peak is one moment, not a sum of the sites' own peaks.
  auto totals = [](const Totals& t) {
    DiffValues v;
    v.allocs = Signed(t.allocs);
    v.bytes = Signed(t.bytes_allocated);
    v.peak_bytes = Signed(t.peak_bytes);
    v.leaked_bytes = Signed(t.leaked_bytes);
    v.leaked_blocks = Signed(t.leaked_blocks);
    return v;
  };
  diff.base_total = totals(base.totals);
  diff.current_total = totals(current.totals);
  diff.estimated = base.totals.estimated || current.totals.estimated;
  return diff;
}

std::vector<const DiffEntry*> RankChanges(const TraceDiff& diff, const DiffOptions& options) {
  std::vector<const DiffEntry*> out;
  for (const DiffEntry& e : diff.entries) {
    if (MetricOf(e.current, options.metric) != MetricOf(e.base, options.metric)) out.push_back(&e);
  }
  auto change = [&](const DiffEntry* e) {
    int64_t d = MetricOf(e->current, options.metric) - MetricOf(e->base, options.metric);
    return d < 0 ? -d : d;
  };
  std::sort(out.begin(), out.end(), [&](const DiffEntry* a, const DiffEntry* b) {
    int64_t ca = change(a), cb = change(b);
    if (ca != cb) return ca > cb;
    int64_t na = MetricOf(a->current, options.metric), nb = MetricOf(b->current, options.metric);
    if (na != nb) return na > nb;
    return std::tie(a->api, a->functions) < std::tie(b->api, b->functions);
  });
  if (out.size() > options.top) out.resize(options.top);
  return out;
}

std::string FormatDiffText(const TraceDiff& diff, const DiffOptions& options,
                           const std::string& base_path, const std::string& current_path) {
  std::string out;
  absl::StrAppend(&out, "base: ", base_path, "\nnew:  ", current_path, "\n");
  if (diff.estimated) {
    absl::StrAppend(&out, "sampled trace(s): the totals are estimates of the unsampled program; "
                          "call sites count sampled allocations (docs/glossary.md)\n");
  }
  const DiffValues& b = diff.base_total;
  const DiffValues& c = diff.current_total;
  absl::StrAppend(&out, "allocations:     ", Change(b.allocs, c.allocs), "\n");
  absl::StrAppend(&out, "bytes allocated: ", Change(b.bytes, c.bytes), "\n");
  absl::StrAppend(&out, "peak heap:       ", Change(b.peak_bytes, c.peak_bytes), "\n");
  absl::StrAppend(&out, "not freed:       ", Change(b.leaked_bytes, c.leaked_bytes), " bytes in ",
                  Change(b.leaked_blocks, c.leaked_blocks), " blocks\n");
  std::vector<const DiffEntry*> ranked = RankChanges(diff, options);
  if (ranked.empty()) {
    absl::StrAppend(&out, "no call site's ", MetricName(options.metric), " changed\n");
    return out;
  }
  absl::StrAppend(&out, "call sites whose ", MetricName(options.metric),
                  " changed most (base -> new):\n");
  // The program's own frames first; the library plumbing above them is
  // counted (JSON has every frame). Rows whose frames would read the same
  // (whatever the count of library frames below them) start one library
  // frame earlier, then another, until they differ.
  std::vector<size_t> start(ranked.size());
  std::vector<std::string> lines(ranked.size());
  for (size_t i = 0; i < ranked.size(); ++i) start[i] = ranked[i]->first_own;
  for (bool changed = true; changed;) {
    changed = false;
    std::map<std::pair<std::string, std::string>, std::vector<size_t>> same;
    for (size_t i = 0; i < ranked.size(); ++i) {
      lines[i] = StackLine(*ranked[i], start[i], options.frames);
      same[{ranked[i]->api, StackLine(*ranked[i], start[i], options.frames, false)}].push_back(i);
    }
    for (const auto& [line, rows] : same) {
      if (rows.size() < 2) continue;
      for (size_t i : rows) {
        if (start[i] == 0) continue;
        --start[i];
        changed = true;
      }
    }
  }
  for (size_t i = 0; i < ranked.size(); ++i) {
    const DiffEntry* e = ranked[i];
    absl::StrAppend(&out, "  ", e->api, ": ", Change(e->base.bytes, e->current.bytes),
                    " bytes in ", Change(e->base.allocs, e->current.allocs), " allocations");
    if (options.metric == DiffMetric::kPeakBytes) {
      absl::StrAppend(&out, "; at the peak ", Change(e->base.peak_bytes, e->current.peak_bytes));
    } else if (options.metric == DiffMetric::kLeakedBytes) {
      absl::StrAppend(&out, "; not freed ",
                      Change(e->base.leaked_bytes, e->current.leaked_bytes));
    }
    absl::StrAppend(&out, "\n      ", lines[i], "\n");
  }
  return out;
}

std::string FormatDiffJson(const TraceDiff& diff, const DiffOptions& options,
                           const std::string& base_path, const std::string& current_path) {
  nlohmann::json sites = nlohmann::json::array();
  for (const DiffEntry* e : RankChanges(diff, options)) {
    // The shared call-site shape (site_json.h); "functions" is the match key.
    nlohmann::json site = CallSiteJson(e->api_id, e->frames, e->first_own, e->cut);
    site["functions"] = e->functions;
    site["base"] = ValuesJson(e->base);
    site["new"] = ValuesJson(e->current);
    sites.push_back(std::move(site));
  }
  nlohmann::json doc = {{"schema", "heapsight-diff/1"},
                        {"base", base_path},
                        {"new", current_path},
                        {"metric", MetricName(options.metric)},
                        {"totals", {{"base", ValuesJson(diff.base_total)},
                                    {"new", ValuesJson(diff.current_total)},
                                    {"estimated", diff.estimated}}},
                        {"sites", sites}};
  // Symbols come from untrusted ELF files: replace invalid UTF-8.
  return doc.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace heapsight::analyzer
