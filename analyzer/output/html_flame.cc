// analyzer/output/html_flame.cc: see html_flame.h.
#include "analyzer/output/html_flame.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analyzer/model/sample_estimate.h"
#include "analyzer/output/flamegraph_svg.h"
#include "analyzer/output/site_estimate.h"
#include "analyzer/output/text_util.h"
#include "analyzer/symbols/symbol_names.h"
#include "analyzer/symbols/symbolizer.h"

namespace heapsight::analyzer::output {
namespace {

// The length of the valid UTF-8 sequence at text[i], or 0 if it is not one.
size_t Utf8Length(std::string_view text, size_t i) {
  auto c = static_cast<unsigned char>(text[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > text.size()) return 0;
  uint32_t cp = n == 1 ? c : n == 2 ? (c & 0x1f) : n == 3 ? (c & 0x0f) : (c & 0x07);
  for (size_t k = 1; k < n; ++k) {
    auto b = static_cast<unsigned char>(text[i + k]);
    if ((b >> 6) != 2) return 0;
    cp = (cp << 6) | (b & 0x3f);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kMin[n] || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff) return 0;
  return n;
}

}  // namespace

void AppendVarint(std::string& out, uint64_t value) {
  static constexpr char kDigits[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  do {
    uint64_t digit = value & 31;
    value >>= 5;
    if (value != 0) digit |= 32;
    out += kDigits[digit];
  } while (value != 0);
}

namespace {

// The C libraries' "allocate or die" wrappers (libiberty, GLib, CPython's
// allocator entry points): plumbing like operator new, folded into their
// caller with the standard library's frames.
bool IsMallocWrapper(const std::string& name) {
  static const absl::flat_hash_set<std::string> kNames = {
      "xmalloc", "xcalloc", "xrealloc", "xstrdup", "xmemdup", "xstrndup",
      "g_malloc", "g_malloc0", "g_realloc", "g_try_malloc", "g_try_malloc0", "g_try_realloc",
      "g_malloc_n", "g_malloc0_n", "g_realloc_n", "g_strdup", "g_memdup", "g_memdup2",
      "PyMem_Malloc", "PyMem_Calloc", "PyMem_Realloc", "PyMem_RawMalloc", "PyMem_RawCalloc",
      "PyMem_RawRealloc", "PyObject_Malloc", "PyObject_Calloc", "PyObject_Realloc",
      "_PyMem_RawMalloc", "_PyMem_RawRealloc", "_PyMem_RawCalloc", "_PyObject_Malloc",
      "_PyObject_Calloc", "_PyObject_Realloc", "_PyMem_DebugRawAlloc", "_PyMem_DebugRawRealloc"};
  return kNames.contains(BareFunctionName(name));
}

// Interns strings; -1 stands for "unknown".
class StringTable {
 public:
  int Intern(const std::string& s) {
    auto [it, added] = index_.try_emplace(s, static_cast<int>(strings_.size()));
    if (added) strings_.push_back(s);
    return it->second;
  }
  const std::vector<std::string>& strings() const { return strings_; }

 private:
  absl::flat_hash_map<std::string, int> index_;
  std::vector<std::string> strings_;
};

struct Metric {
  std::string key;
  std::string label;
  std::string unit;
  absl::flat_hash_map<int, uint64_t> by_node;  // innermost node -> value
  uint64_t total = 0;
};

// Builds the frame table and the call tree: the stacks' frames, outermost
// first, merged by function name under the same caller (a function called
// from two lines of its caller is one node, as in any flame graph).
class TableBuilder {
 public:
  explicit TableBuilder(const ProcessProfile& p) : p_(p) {}

  // The innermost node of `stack` (-1: no frames), memoized per stack.
  int NodeOf(uint64_t stack) {
    auto [it, added] = node_of_stack_.try_emplace(stack, -1);
    if (!added) return it->second;
    // Innermost first, as recorded; the tree wants the outermost first.
    std::vector<int> frames;
    if (stack != 0 && p_.symbolizer != nullptr) {
      for (const SymbolizedLocation* loc : p_.symbolizer->SymbolizeStack(p_.StackIps(stack))) {
        for (const analyzer::SourceFrame& f : loc->frames) frames.push_back(FrameOf(f, *loc));
      }
    }
    int node = -1;
    for (size_t i = frames.size(); i-- > 0;) {
      const int frame = frames[i];
      const int name = frames_[4 * frame];
      auto [n, fresh] =
          child_.try_emplace(std::make_pair(node, name), static_cast<int>(nodes_.size()));
      if (fresh) {
        nodes_.push_back(Node{node, frame, false});
      } else if (frames_[4 * nodes_[n->second].frame + 2] != frames_[4 * frame + 2]) {
        nodes_[n->second].several = true;  // reached from several places
      }
      node = n->second;
    }
    it->second = node;
    return node;
  }

  // Numbers the nodes in depth-first order, children by name, so that a
  // parent comes before its children, siblings are in the order a flame
  // graph draws them, and most nodes' parent is the node just before.
  void Finish() {
    std::vector<std::vector<int>> children(nodes_.size() + 1);  // [0]: the roots
    for (size_t i = 0; i < nodes_.size(); ++i) children[nodes_[i].parent + 1].push_back(static_cast<int>(i));
    const auto& strings = strings_.strings();
    for (std::vector<int>& c : children) {
      std::sort(c.begin(), c.end(), [&](int a, int b) {
        return strings[frames_[4 * nodes_[a].frame]] < strings[frames_[4 * nodes_[b].frame]];
      });
    }
    new_id_.assign(nodes_.size(), -1);
    order_.clear();
    std::vector<int> todo(children[0].rbegin(), children[0].rend());
    while (!todo.empty()) {
      int n = todo.back();
      todo.pop_back();
      new_id_[n] = static_cast<int>(order_.size());
      order_.push_back(n);
      const std::vector<int>& c = children[n + 1];
      todo.insert(todo.end(), c.rbegin(), c.rend());
    }
  }

  // A node's number in the output (-1 stays -1). After Finish().
  int Id(int node) const { return node < 0 ? -1 : new_id_[node]; }

  void Write(std::string& out) const {
    out += "\"strings\":[";
    for (size_t i = 0; i < strings_.strings().size(); ++i) {
      if (i != 0) out += ',';
      out += HtmlJsonString(strings_.strings()[i]);
    }
    out += "],\n\"frames\":[";
    for (size_t i = 0; i < frames_.size(); ++i) absl::StrAppend(&out, i ? "," : "", frames_[i]);
    // Most nodes' parent is the node before them: those are one number,
    // frame * 2; the others frame * 2 + 1 and how far back their parent is
    // (node + 1 for an outermost frame).
    out += "],\n\"nodes\":\"";
    std::string several;
    int last_several = -1;
    for (size_t i = 0; i < order_.size(); ++i) {
      const Node& node = nodes_[order_[i]];
      const int parent = Id(node.parent);
      const auto frame = static_cast<uint64_t>(node.frame);
      if (parent == static_cast<int>(i) - 1) {
        AppendVarint(out, frame * 2);
      } else {
        AppendVarint(out, frame * 2 + 1);
        AppendVarint(out, static_cast<uint64_t>(static_cast<int>(i) - parent));
      }
      if (node.several) {
        AppendVarint(several, static_cast<uint64_t>(static_cast<int>(i) - last_several));
        last_several = static_cast<int>(i);
      }
    }
    absl::StrAppend(&out, "\",\n\"several\":\"", several, "\"");
  }

 private:
  int FrameOf(const analyzer::SourceFrame& f, const SymbolizedLocation& loc) {
    // A frame's name is the function as the text reports name it (no
    // parameters); its place is told apart by file and line.
    std::string name = f.function.empty() ? UnknownFrameName(loc) : f.function;
    std::string where;
    std::string path;
    if (!f.file.empty()) {
      where = absl::StrCat(BaseName(f.file), ":", f.line);
      path = absl::StrCat(f.file, ":", f.line);
    } else if (loc.module != nullptr) {
      path = loc.module->path;
    }
    std::string key = name;
    key.push_back('\0');
    key += path;
    auto [it, added] = frame_of_.try_emplace(key, static_cast<int>(frames_.size() / 4));
    if (added) {
      frames_.push_back(strings_.Intern(name));
      frames_.push_back(where.empty() ? -1 : strings_.Intern(where));
      frames_.push_back(path.empty() ? -1 : strings_.Intern(path));
      frames_.push_back(IsLibraryFrame(f, loc) || IsMallocWrapper(name) ? 1 : 0);
    }
    return it->second;
  }

  struct Node {
    int parent;    // -1: an outermost frame
    int frame;     // the first frame seen here (its name is the node's)
    bool several;  // frames of other places were merged into it
  };

  const ProcessProfile& p_;
  StringTable strings_;
  std::vector<int> frames_;  // 4 per frame
  std::vector<Node> nodes_;
  std::vector<int> order_;   // output position -> node
  std::vector<int> new_id_;  // node -> output position
  absl::flat_hash_map<std::string, int> frame_of_;
  absl::flat_hash_map<std::pair<int, int>, int> child_;
  absl::flat_hash_map<uint64_t, int> node_of_stack_;
};

const char* ClassKey(LeakClass c) {
  switch (c) {
    case LeakClass::kDefinite: return "definite_bytes";
    case LeakClass::kIndirect: return "indirect_bytes";
    case LeakClass::kPossible: return "possible_bytes";
    case LeakClass::kReachable: return "reachable_bytes";
    default: return "unclassified_bytes";
  }
}

const char* ClassLabel(LeakClass c) {
  switch (c) {
    case LeakClass::kDefinite: return "leaks: definitely lost bytes";
    case LeakClass::kIndirect: return "leaks: indirectly lost bytes";
    case LeakClass::kPossible: return "leaks: possibly lost bytes";
    case LeakClass::kReachable: return "leaks: still reachable bytes";
    default: return "leaks: not freed bytes (no scan)";
  }
}

}  // namespace

std::string HtmlJsonString(std::string_view text) {
  std::string out = "\"";
  out.reserve(text.size() + 2);
  for (size_t i = 0; i < text.size();) {
    size_t n = Utf8Length(text, i);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
      continue;
    }
    if (n == 3 && text.compare(i, 3, "\xe2\x80\xa8") == 0) {
      out += "\\u2028";
    } else if (n == 3 && text.compare(i, 3, "\xe2\x80\xa9") == 0) {
      out += "\\u2029";
    } else if (n > 1) {
      out.append(text.substr(i, n));
    } else {
      char c = text[i];
      auto u = static_cast<unsigned char>(c);
      if (u < 0x20 || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' || c == '\'' ||
          u == 0x7f) {
        absl::StrAppendFormat(&out, "\\u%04x", u);
      } else {
        out += c;
      }
    }
    i += n;
  }
  return out + "\"";
}

namespace {

// A kept site of the per-site series, on its node of the views table, and
// the factor from its sampled bytes to the estimate (1 in an exact trace).
struct SeriesOnNode {
  int node;
  const SiteSeries* series;
  double scale;
};

// estimate / raw, or 1 when nothing was sampled.
double SampleScale(double raw, double estimate) {
  return raw > 0 && estimate > raw ? estimate / raw : 1.0;
}

uint64_t ScaleBytes(uint64_t bytes, double scale) {
  if (scale == 1.0) return bytes;
  return static_cast<uint64_t>(TruncateSaturating(std::round(static_cast<double>(bytes) * scale)));
}

}  // namespace

std::string FlameData(const ProcessProfile& p, const HtmlLeaks& leaks) {
  const Totals& t = p.totals;
  const bool exec = p.EndedInExec();
  TableBuilder table(p);
  std::vector<Metric> metrics;
  auto add = [&](std::string key, std::string label, std::string unit) -> Metric& {
    metrics.push_back(Metric{std::move(key), std::move(label), std::move(unit), {}, 0});
    return metrics.back();
  };
  // The order of the page's metric switch.
  add("alloc_bytes", "bytes allocated", "bytes");
  add("alloc_count", "allocations", "allocations");
  add("peak_bytes", "bytes live at the peak", "bytes");
  add("peak_count", "blocks live at the peak", "blocks");
  add("not_freed_bytes",
      exec ? "bytes discarded by exec (live at the end)" : "bytes not freed at exit", "bytes");
  add("not_freed_count",
      exec ? "blocks discarded by exec (live at the end)" : "blocks not freed at exit",
      "blocks");
  if (t.temporary_known) {
    add("temporary_count", "temporary allocations", "allocations");
    add("temporary_bytes", "temporary bytes", "bytes");
  }
  auto put = [](Metric& m, int node, uint64_t v) {
    if (v == 0) return;
    m.by_node[node] += v;
    m.total += v;
  };
  for (const Site& site : p.sites) {
    if (site.kind != SiteKind::kProgram) continue;
    SiteStats s = EstimatedSiteStats(site.stats, t);
    if (s.alloc_count == 0 && s.peak_count == 0 && s.leaked_count == 0) continue;
    int node = table.NodeOf(site.stack);
    put(metrics[0], node, s.alloc_bytes);
    put(metrics[1], node, s.alloc_count);
    put(metrics[2], node, s.peak_bytes);
    put(metrics[3], node, s.peak_count);
    put(metrics[4], node, s.leaked_bytes);
    put(metrics[5], node, s.leaked_count);
    if (t.temporary_known) {
      put(metrics[6], node, s.temporary_count);
      put(metrics[7], node, s.temporary_bytes);
    }
  }
  if (leaks.known && !exec) {
    absl::flat_hash_map<int, size_t> class_metric;  // LeakClass -> index in metrics
    for (LeakClass c : kLeakClassesInOrder) {
      if (leaks.classes[c].blocks == 0) continue;
      class_metric[static_cast<int>(c)] = metrics.size();
      add(ClassKey(c), ClassLabel(c), "bytes");
    }
    for (const HtmlLeakGroup& g : leaks.groups) {
      auto it = class_metric.find(static_cast<int>(g.kind));
      if (it == class_metric.end()) continue;
      put(metrics[it->second], table.NodeOf(g.stack), g.counts.bytes);
    }
  }
  // The kept sites of the per-site series (site_timeline.h), on their
  // nodes, for the views of a selected moment or range. A sampled trace's
  // series holds raw sampled bytes: each kept site's buckets are scaled by
  // that site's own estimate / sampled ratio of bytes allocated (the ratio
  // its bytes-allocated estimate already carries), and "other" by the same
  // ratio over every site not kept, so the moment's and the range's views
  // are estimates made the way the page's other numbers are.
  std::vector<SeriesOnNode> series;
  const SiteTimeline& st = p.site_series;
  double other_scale = 1.0;
  if (t.estimated) {
    std::vector<bool> kept(p.sites.size(), false);
    for (const SiteSeries& s : st.sites) {
      if (s.site < kept.size()) kept[s.site] = true;
    }
    double raw = 0, estimate = 0;
    for (size_t i = 0; i < p.sites.size(); ++i) {
      if (kept[i] || p.sites[i].kind != SiteKind::kProgram) continue;
      raw += static_cast<double>(p.sites[i].stats.alloc_bytes);
      estimate += p.sites[i].stats.alloc_bytes_estimate;
    }
    other_scale = SampleScale(raw, estimate);
  }
  for (const SiteSeries& s : st.sites) {
    if (s.site >= p.sites.size() || p.sites[s.site].kind != SiteKind::kProgram) continue;
    const SiteStats& stats = p.sites[s.site].stats;
    double scale = t.estimated ? SampleScale(static_cast<double>(stats.alloc_bytes),
                                             stats.alloc_bytes_estimate)
                               : 1.0;
    series.push_back(SeriesOnNode{table.NodeOf(p.sites[s.site].stack), &s, scale});
  }
  table.Finish();
  std::string out = "{\"v\":1,";
  table.Write(out);
  if (!series.empty() || !st.other.empty()) {
    // Per series (bucket number - previous, live, allocated) varints, the
    // first bucket's distance from -1.
    auto buckets = [&](const std::vector<SiteBucket>& v, double scale) {
      out += '"';
      int64_t previous = -1;
      for (const SiteBucket& b : v) {
        auto index = static_cast<int64_t>(b.begin_us / st.bucket_us);
        AppendVarint(out, static_cast<uint64_t>(index - previous));
        AppendVarint(out, ScaleBytes(b.live, scale));
        AppendVarint(out, ScaleBytes(b.allocated, scale));
        previous = index;
      }
      out += '"';
    };
    absl::StrAppend(&out, ",\n\"series\":{\"w\":", st.bucket_us,
                    ",\"end\":", std::max(st.end_us, p.duration_us), ",\"other\":");
    buckets(st.other, other_scale);
    out += ",\"sites\":[";
    for (size_t i = 0; i < series.size(); ++i) {
      absl::StrAppend(&out, i ? ",\n[" : "[", table.Id(series[i].node), ",");
      buckets(series[i].series->buckets, series[i].scale);
      out += "]";
    }
    out += "]}";
  }
  out += ",\n\"metrics\":[";
  for (size_t i = 0; i < metrics.size(); ++i) {
    const Metric& m = metrics[i];
    absl::StrAppend(&out, i ? ",\n" : "", "{\"key\":", HtmlJsonString(m.key),
                    ",\"label\":", HtmlJsonString(m.label), ",\"unit\":", HtmlJsonString(m.unit),
                    ",\"total\":", m.total, ",\"v\":\"");
    // Node order (the same page for the same trace), each node as the
    // distance from the one before (from -1 for the first).
    std::vector<std::pair<int, uint64_t>> values;
    values.reserve(m.by_node.size());
    for (const auto& [node, value] : m.by_node) values.emplace_back(table.Id(node), value);
    std::sort(values.begin(), values.end());
    int previous = -1;
    for (const auto& [node, value] : values) {
      AppendVarint(out, static_cast<uint64_t>(node - previous));
      AppendVarint(out, value);
      previous = node;
    }
    out += "\"}";
  }
  out += "]}";
  return out;
}

std::string FlameSection(const ProcessProfile& p, const HtmlLeaks& leaks,
                         std::string_view data_id) {
  const bool estimated = p.totals.estimated;
  std::string id = XmlEscape(data_id);
  std::string out = absl::StrCat(
      "<div class=\"views\" data-flame=\"", id, "\">\n<h3>Call sites: flame graph and trees</h3>\n",
      "<p class=\"controls\"><label>Metric: <select class=\"metric\"></select></label> "
      "<label>Search (regular expression): <input type=\"search\" class=\"flame-search\"/>"
      "</label> <span class=\"flame-matched\" aria-live=\"polite\"></span></p>\n"
      "<p class=\"controls\"><label><input type=\"checkbox\" class=\"flame-icicle\"/> icicle "
      "(callers on top)</label> <label><input type=\"checkbox\" class=\"flame-lib\"/> show the "
      "standard library&apos;s allocation plumbing (operator new, std::allocator, "
      "std::vector growth...; folded into the calling frame when hidden)</label> "
      "<button type=\"button\" class=\"flame-reset\">reset zoom</button>",
      estimated ? " <span class=\"note\">(estimates: a sampled trace; temporary allocations "
                  "are not known)</span>"
                : "",
      "</p>\n<div class=\"flame-graph\" tabindex=\"0\" role=\"application\" aria-label=\"flame "
      "graph: arrows move between frames, Enter zooms, Escape resets\"></div>\n"
      "<div class=\"flame-detail\" aria-live=\"polite\">&#160;</div>\n"
      "<p class=\"note\">Click a frame to zoom into it, its root or Escape to zoom out; hover "
      "or move with the arrow keys for its numbers. Width: the metric&apos;s share.</p>\n"
      "<div class=\"trees\"><p class=\"controls\"><label><input type=\"radio\" name=\"",
      id, "-tree\" class=\"tree-mode\" value=\"top\" checked=\"checked\"/> top-down</label> "
      "<label><input type=\"radio\" name=\"", id,
      "-tree\" class=\"tree-mode\" value=\"bottom\"/> bottom-up</label> <span class=\"note\">"
      "(click a header to sort, a row to see its callers and callees; arrows move, Enter or "
      "Right expands)</span></p>\n<div class=\"tree-box\" tabindex=\"0\"></div>\n"
      "<div class=\"relations\"></div></div>\n");
  absl::StrAppend(&out, "<script type=\"application/json\" id=\"", id, "\">", FlameData(p, leaks),
                  "</script>\n</div>\n");
  return out;
}

}  // namespace heapsight::analyzer::output
