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

nlohmann::json ValuesJson(const DiffValues& v) {
  return {{"allocations", v.allocs},
          {"bytes", v.bytes},
          {"peak_bytes", v.peak_bytes},
          {"leaked_bytes", v.leaked_bytes},
          {"leaked_blocks", v.leaked_blocks}};
}

const char* MetricName(DiffMetric m) {
  switch (m) {
    case DiffMetric::kBytes: return "bytes";
    case DiffMetric::kAllocs: return "allocations";
    case DiffMetric::kPeakBytes: return "peak_bytes";
    case DiffMetric::kLeakedBytes: return "leaked_bytes";
  }
  return "?";
}

}  // namespace

absl::StatusOr<DiffMetric> ParseDiffMetric(const std::string& name) {
  for (DiffMetric m : {DiffMetric::kBytes, DiffMetric::kAllocs, DiffMetric::kPeakBytes,
                       DiffMetric::kLeakedBytes}) {
    if (name == MetricName(m)) return m;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown metric '", name, "' (bytes, allocations, peak_bytes or leaked_bytes)"));
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
      if (inserted) diff.entries.push_back({api, std::move(functions), first_own, {}, {}, {}});
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
  for (const DiffEntry* e : ranked) {
    absl::StrAppend(&out, "  ", e->api, ": ", Change(e->base.bytes, e->current.bytes),
                    " bytes in ", Change(e->base.allocs, e->current.allocs), " allocations");
    if (options.metric == DiffMetric::kPeakBytes) {
      absl::StrAppend(&out, "; at the peak ", Change(e->base.peak_bytes, e->current.peak_bytes));
    } else if (options.metric == DiffMetric::kLeakedBytes) {
      absl::StrAppend(&out, "; not freed ",
                      Change(e->base.leaked_bytes, e->current.leaked_bytes));
    }
    absl::StrAppend(&out, "\n      ");
    // The program's own frames first; the library plumbing above them is
    // counted (JSON has every frame).
    size_t from = e->first_own;
    size_t shown = std::min(options.frames, e->functions.size() - from);
    absl::StrAppend(&out, absl::StrJoin(e->functions.begin() + from,
                                        e->functions.begin() + from + shown, " <- "));
    if (from + shown < e->functions.size()) {
      absl::StrAppend(&out, " <- ... (", e->functions.size() - from - shown, " more)");
    }
    if (from != 0) {
      absl::StrAppend(&out, " (below ", from, from == 1 ? " library frame)" : " library frames)");
    }
    if (e->cut.cut) absl::StrAppend(&out, shown != 0 ? " <- " : "", StackCutText(e->cut, ""));
    if (e->functions.empty() && !e->cut.cut) absl::StrAppend(&out, "(no stack)");
    absl::StrAppend(&out, "\n");
  }
  return out;
}

std::string FormatDiffJson(const TraceDiff& diff, const DiffOptions& options,
                           const std::string& base_path, const std::string& current_path) {
  nlohmann::json sites = nlohmann::json::array();
  for (const DiffEntry* e : RankChanges(diff, options)) {
    sites.push_back({{"api", e->api},
                     {"functions", e->functions},
                     {"base", ValuesJson(e->base)},
                     {"new", ValuesJson(e->current)}});
    if (e->cut.cut) {  // the recorder cut the stack: the callers are missing
      sites.back()["frames_not_recorded"] =
          e->cut.missing == 0 ? nlohmann::json("unknown") : nlohmann::json(e->cut.missing);
    }
  }
  nlohmann::json doc = {{"base", base_path},
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
