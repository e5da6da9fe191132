// analyzer/output/flamegraph_svg.cc: see flamegraph_svg.h.
#include "analyzer/output/flamegraph_svg.h"

#include <algorithm>
#include <cstdint>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace heapsight::analyzer::output {
namespace {

constexpr double kPad = 10;          // left/right margin, pixels
constexpr double kTopPad = 56;       // title, subtitle, controls
constexpr double kBottomPad = 30;    // details line
constexpr double kFontSize = 12;
constexpr double kCharWidth = 0.59 * kFontSize;  // average glyph width estimate

// Length of the valid UTF-8 sequence at s[i], or 0 if it is invalid.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  unsigned char c = static_cast<unsigned char>(s[i]);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
    cp = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    cp = c & 0x0F;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF)) {
    return 0;  // overlong, out of range or a surrogate
  }
  // U+FFFE and U+FFFF are not XML characters.
  if (cp == 0xFFFE || cp == 0xFFFF) return 0;
  return n;
}

// `text` shortened to the code points that fit in `width_px` (estimated
// glyph width), ".." marking a cut; "" when fewer than 3 characters fit.
std::string FitLabel(std::string_view text, double width_px) {
  double fit = (width_px - 6) / kCharWidth;
  if (fit < 3) return "";
  size_t max_chars = static_cast<size_t>(fit);
  size_t chars = 0, i = 0, cut = std::string_view::npos;
  while (i < text.size()) {
    if (chars == max_chars - 2) cut = i;
    if (chars == max_chars) return std::string(text.substr(0, cut)) + "..";
    size_t n = Utf8SequenceLength(text, i);
    i += n == 0 ? 1 : n;
    ++chars;
  }
  return std::string(text);
}

// Thousands separators: 1234567 -> "1,234,567".
std::string WithCommas(int64_t v) {
  uint64_t magnitude = v < 0 ? 0 - static_cast<uint64_t>(v) : static_cast<uint64_t>(v);
  std::string digits = absl::StrCat(magnitude);
  std::string out = v < 0 ? "-" : "";
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

// FNV-1a; stable across platforms and runs.
uint64_t NameHash(std::string_view s) {
  uint64_t h = 1469598103934665603ull;
  for (char c : s) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ull;
  }
  return h;
}

// Warm palette (flamegraph.pl's "hot"), chosen by the name's hash.
std::string FrameColor(std::string_view name) {
  uint64_t h = NameHash(name);
  int r = 205 + static_cast<int>((h >> 8) % 51);
  int g = static_cast<int>((h >> 24) % 231);
  int b = static_cast<int>((h >> 40) % 56);
  return absl::StrFormat("rgb(%d,%d,%d)", r, g, b);
}

struct Node {
  std::string_view name;
  int64_t value = 0;
  std::map<std::string_view, uint32_t> children;  // sorted by name
};

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return INT64_MAX;
  return r;
}

constexpr std::string_view kScript = R"JS(
(function () {
  var svg = document.documentElement;
  var W = +svg.getAttribute('width'), PAD = 10, CW = 0.59 * 12;
  var frames = [].slice.call(document.querySelectorAll('g.f'));
  var details = document.getElementById('details');
  var matchedText = document.getElementById('matched');
  var searchText = document.getElementById('search');
  var root = frames.length ? frames[0] : null;
  var searching = false;
  function num(e, n) { return +e.getAttribute(n); }
  function title(g) { return g.querySelector('title').textContent; }
  function nameOf(g) { var t = title(g), i = t.lastIndexOf(' ('); return i < 0 ? t : t.substring(0, i); }
  function fit(g) {
    var r = g.querySelector('rect'), t = g.querySelector('text');
    var n = Math.floor((num(r, 'width') - 6) / CW), s = nameOf(g);
    t.setAttribute('x', (num(r, 'x') + 3).toFixed(2));
    t.textContent = n < 3 ? '' : (s.length <= n ? s : s.substring(0, n - 2) + '..');
  }
  function zoom(z) {
    var x0 = num(z, 'data-x'), w0 = num(z, 'data-w'), d0 = num(z, 'data-d');
    var k = (W - 2 * PAD) / w0;
    frames.forEach(function (g) {
      var x = num(g, 'data-x'), w = num(g, 'data-w'), d = num(g, 'data-d');
      var r = g.querySelector('rect');
      if (d >= d0 && x >= x0 && x + w <= x0 + w0) {
        g.style.display = ''; g.style.opacity = '';
        r.setAttribute('x', (PAD + (x - x0) * k).toFixed(2));
        r.setAttribute('width', (w * k).toFixed(2));
        fit(g);
      } else if (d < d0 && x <= x0 && x + w >= x0 + w0) {
        g.style.display = ''; g.style.opacity = '0.5';
        r.setAttribute('x', PAD.toFixed(2));
        r.setAttribute('width', (W - 2 * PAD).toFixed(2));
        fit(g);
      } else {
        g.style.display = 'none';
      }
    });
  }
  function clearSearch() {
    frames.forEach(function (g) {
      var r = g.querySelector('rect'), c = g.getAttribute('data-c');
      if (c) { r.setAttribute('fill', c); g.removeAttribute('data-c'); }
    });
    matchedText.textContent = '';
    searching = false;
  }
  function commas(v) { return String(Math.round(v)).replace(/\B(?=(\d{3})+(?!\d))/g, ','); }
  // Marks the frames matching `term` and writes the matched share and total
  // (each stack counted once, however many of its frames match). Returns
  // the match, or null for a bad expression.
  function search(term, quiet) {
    var re;
    try { re = new RegExp(term); } catch (e) { if (!quiet) alert('Bad regular expression: ' + e.message); return null; }
    clearSearch();
    var spans = [];
    frames.forEach(function (g) {
      if (g === root || !re.test(nameOf(g))) return;
      var r = g.querySelector('rect');
      g.setAttribute('data-c', r.getAttribute('fill'));
      r.setAttribute('fill', 'rgb(230,0,230)');
      spans.push([num(g, 'data-x'), num(g, 'data-w')]);
    });
    spans.sort(function (a, b) { return a[0] - b[0] || b[1] - a[1]; });
    var covered = 0, end = -1;
    spans.forEach(function (s) {
      if (s[0] >= end) { covered += s[1]; end = s[0] + s[1]; }
      else if (s[0] + s[1] > end) { covered += s[0] + s[1] - end; end = s[0] + s[1]; }
    });
    var total = root ? num(root, 'data-w') : 0;
    var unit = matchedText.getAttribute ? matchedText.getAttribute('data-unit') || '' : '';
    matchedText.textContent = 'Matched: ' + (total ? (100 * covered / total).toFixed(2) : '0.00') + '%' +
        (unit ? ' (' + commas(covered) + ' ' + unit + ')' : '');
    searching = true;
    return { value: covered, total: total, frames: spans.length, text: matchedText.textContent };
  }
  // A page that embeds the graph (heapsight html) searches it by message:
  // {heapsightSearch: term, seq} ('' clears), answered with {heapsightMatched}
  // (the match, and the same seq).
  if (typeof window !== 'undefined' && window.addEventListener) {
    window.addEventListener('message', function (e) {
      var d = e.data;
      if (!d || typeof d.heapsightSearch !== 'string') return;
      var m = null;
      if (d.heapsightSearch) m = search(d.heapsightSearch, true); else clearSearch();
      m = m || { value: 0, total: 0, frames: 0, text: '' };
      m.seq = d.seq;  // which search this answers
      if (e.source) e.source.postMessage({ heapsightMatched: m }, '*');
    });
    // A graph loads when the page first shows it: tell the page, which
    // then sends the search already typed.
    if (window.parent && window.parent !== window) window.parent.postMessage({ heapsightReady: true }, '*');
  }
  frames.forEach(function (g) {
    g.addEventListener('click', function () { zoom(g); });
    g.addEventListener('mouseover', function () { details.textContent = title(g); });
    g.addEventListener('mouseout', function () { details.textContent = ' '; });
  });
  document.getElementById('unzoom').addEventListener('click', function () { if (root) zoom(root); });
  searchText.addEventListener('click', function () {
    if (searching) { clearSearch(); return; }
    var term = prompt('Search for (regular expression):', '');
    if (term) search(term);
  });
})();
)JS";

}  // namespace

std::string XmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  for (size_t i = 0; i < text.size();) {
    unsigned char c = static_cast<unsigned char>(text[i]);
    size_t n = Utf8SequenceLength(text, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
      continue;
    }
    if (n > 1) {
      out.append(text.substr(i, n));
      i += n;
      continue;
    }
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&apos;"; break;
      default:
        out.push_back(c < 0x20 || c == 0x7f ? ' ' : static_cast<char>(c));
    }
    ++i;
  }
  return out;
}

std::string RenderFlameGraphSvg(const std::vector<FoldedStack>& stacks,
                                const FlameGraphOptions& options) {
  // Merge the stacks into a tree; node 0 is the root ("all").
  std::vector<Node> nodes(1);
  nodes[0].name = "all";
  size_t max_depth = 0;
  for (const FoldedStack& s : stacks) {
    if (s.value <= 0) continue;
    uint32_t cur = 0;
    nodes[0].value = SaturatingAdd(nodes[0].value, s.value);
    for (const std::string& frame : s.frames) {
      auto [it, inserted] =
          nodes[cur].children.try_emplace(frame, static_cast<uint32_t>(nodes.size()));
      if (inserted) {
        nodes.emplace_back();
        nodes.back().name = frame;
      }
      cur = it->second;
      nodes[cur].value = SaturatingAdd(nodes[cur].value, s.value);
    }
    max_depth = std::max(max_depth, s.frames.size());
  }

  const int width = std::max(options.width, 100);
  const int frame_height = std::clamp(options.frame_height, 4, 200);
  const double usable = width - 2 * kPad;
  const int64_t total = nodes[0].value;
  const double height = kTopPad + static_cast<double>(max_depth + 1) * frame_height + kBottomPad;
  const std::string unit = XmlEscape(options.unit);

  std::string out;
  out.reserve(4096 + nodes.size() * 256);
  absl::StrAppend(&out, "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n");
  absl::StrAppendFormat(
      &out,
      "<svg version=\"1.1\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%.0f\" "
      "viewBox=\"0 0 %d %.0f\">\n",
      width, height, width, height);
  absl::StrAppend(&out,
                  "<style type=\"text/css\">\n"
                  "text { font-family: Verdana, sans-serif; font-size: 12px; fill: rgb(0,0,0); }\n"
                  "#title { font-size: 17px; text-anchor: middle; }\n"
                  "#subtitle { text-anchor: middle; fill: rgb(110,110,110); }\n"
                  "#unzoom, #search { cursor: pointer; }\n"
                  "#search, #matched { text-anchor: end; }\n"
                  "g.f { cursor: pointer; }\n"
                  "g.f text { pointer-events: none; }\n"
                  "g.f:hover rect { stroke: rgb(0,0,0); stroke-width: 0.5; }\n"
                  "</style>\n");
  absl::StrAppendFormat(&out,
                        "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%.0f\" "
                        "fill=\"rgb(248,248,248)\"/>\n",
                        width, height);
  absl::StrAppendFormat(&out, "<text id=\"title\" x=\"%.2f\" y=\"24\">%s</text>\n", width / 2.0,
                        XmlEscape(options.title));
  if (!options.subtitle.empty()) {
    absl::StrAppendFormat(&out, "<text id=\"subtitle\" x=\"%.2f\" y=\"42\">%s</text>\n",
                          width / 2.0, XmlEscape(options.subtitle));
  }
  absl::StrAppendFormat(&out, "<text id=\"unzoom\" x=\"%.2f\" y=\"24\">Reset Zoom</text>\n", kPad);
  absl::StrAppendFormat(&out, "<text id=\"search\" x=\"%.2f\" y=\"24\">Search</text>\n",
                        width - kPad);
  absl::StrAppendFormat(&out, "<text id=\"matched\" x=\"%.2f\" y=\"%.0f\" data-unit=\"%s\"> </text>\n",
                        width - kPad, height - 10, unit);
  absl::StrAppendFormat(&out, "<text id=\"details\" x=\"%.2f\" y=\"%.0f\"> </text>\n", kPad,
                        height - 10);

  if (total <= 0) {
    absl::StrAppendFormat(&out, "<text x=\"%.2f\" y=\"%.0f\" text-anchor=\"middle\">No data</text>\n",
                          width / 2.0, height - kBottomPad - frame_height / 2.0);
  } else {
    // Depth-first, parents before children (the script takes the first
    // frame as the root). Iterative: stacks may be arbitrarily deep.
    struct Item {
      uint32_t node;
      uint32_t depth;
      int64_t offset;  // value units from the left edge
    };
    std::vector<Item> todo = {{0, 0, 0}};
    const double px_per_unit = usable / static_cast<double>(total);
    std::vector<Item> children;
    while (!todo.empty()) {
      Item item = todo.back();
      todo.pop_back();
      const Node& n = nodes[item.node];
      double w = static_cast<double>(n.value) * px_per_unit;
      if (w < options.min_frame_width) continue;
      double x = kPad + static_cast<double>(item.offset) * px_per_unit;
      double y = height - kBottomPad - static_cast<double>(item.depth + 1) * frame_height;
      std::string name = XmlEscape(n.name);
      double pct = 100.0 * static_cast<double>(n.value) / static_cast<double>(total);
      absl::StrAppendFormat(&out,
                            "<g class=\"f\" data-x=\"%d\" data-w=\"%d\" data-d=\"%d\">"
                            "<title>%s (%s %s, %.2f%%)</title>"
                            "<rect x=\"%.2f\" y=\"%.0f\" width=\"%.2f\" height=\"%d\" "
                            "fill=\"%s\" rx=\"2\" ry=\"2\"/>"
                            "<text x=\"%.2f\" y=\"%.1f\">%s</text></g>\n",
                            item.offset, n.value, item.depth, name, WithCommas(n.value), unit,
                            pct, x, y, w, frame_height - 1,
                            item.node == 0 ? "rgb(200,200,200)" : FrameColor(n.name), x + 3,
                            y + frame_height - 4.5, XmlEscape(FitLabel(n.name, w)));
      // Push children in reverse so they come out in name order.
      children.clear();
      int64_t offset = item.offset;
      for (const auto& [child_name, child] : n.children) {
        children.push_back({child, item.depth + 1, offset});
        offset = SaturatingAdd(offset, nodes[child].value);
      }
      for (auto it = children.rbegin(); it != children.rend(); ++it) todo.push_back(*it);
    }
  }
  absl::StrAppend(&out, "<script type=\"text/ecmascript\"><![CDATA[", std::string(kScript),
                  "]]></script>\n");
  absl::StrAppend(&out, "</svg>\n");
  return out;
}

}  // namespace heapsight::analyzer::output
