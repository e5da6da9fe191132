// analyzer/output/html_timeline.cc: see html_timeline.h.
#include "analyzer/output/html_timeline.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analyzer/output/flamegraph_svg.h"
#include "analyzer/output/text_util.h"
#include "format/trace_format.h"

namespace heapsight::analyzer::output {
namespace {

// Geometry of the SVG, in CSS pixels. One column per pixel of the plot.
constexpr double kPlotWidth = 900;
constexpr double kPlotHeight = 240;
constexpr double kLeft = 80;    // heap axis labels
constexpr double kRight = 80;   // RSS axis labels
constexpr double kTop = 24;     // marker labels
constexpr double kBottom = 40;  // time labels and axis title
constexpr size_t kMaxMarkersDrawn = 100;
constexpr size_t kMaxMarkerLabel = 32;  // characters of a marker name on the chart

std::string E(std::string_view text) { return XmlEscape(text); }

// 1, 2 or 5 times a power of ten, at least `raw`.
double NiceStep(double raw) {
  if (!(raw > 0)) return 1;
  double power = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0}) {
    if (m * power >= raw * (1 - 1e-9)) return m * power;
  }
  return 10 * power;
}

struct Scale {
  double t_end;   // us at the right edge
  double v_top;   // bytes at the top edge
  double X(uint64_t t) const {
    return kLeft + kPlotWidth * std::min(1.0, static_cast<double>(t) / t_end);
  }
  double Y(uint64_t v) const {
    return kTop + kPlotHeight * (1.0 - static_cast<double>(v) / v_top);
  }
};

std::string Num(double v) { return absl::StrFormat("%.2f", v); }

// The heap's step path: M, then H and V commands only.
std::string StepPath(const std::vector<ChartColumn>& columns, const Scale& s, uint64_t end_us,
                     uint64_t start_value) {
  std::string d = absl::StrCat("M", Num(s.X(0)), ",", Num(s.Y(start_value)));
  uint64_t level = start_value;
  double last_y = s.Y(start_value);
  auto v_to = [&](uint64_t value) {
    double y = s.Y(value);
    if (y != last_y) absl::StrAppend(&d, "V", Num(y));
    last_y = y;
  };
  for (const ChartColumn& c : columns) {
    if (!c.used) continue;
    const HeapBucket& b = c.envelope;
    // A column whose changes all left the heap at its level draws nothing
    // new: the horizontal line goes on.
    if (b.open == level && b.min == level && b.max == level && b.close == level) continue;
    if (b.open != level) v_to(b.open);  // (never: each column opens at the last close)
    absl::StrAppend(&d, "H", Num(s.X(b.max_time_us)));
    v_to(b.max);
    v_to(b.min);
    v_to(b.close);
    level = b.close;
  }
  absl::StrAppend(&d, "H", Num(s.X(end_us)));
  return d;
}

void YAxis(std::string& out, const AxisTicks& ticks, const char* css_class, bool right) {
  double x = right ? kLeft + kPlotWidth : kLeft;
  absl::StrAppendFormat(&out, "<g class=\"%s\" data-unit=\"%s\" data-unit-bytes=\"%.0f\">\n",
                        css_class, ticks.unit_name, ticks.unit);
  int n = static_cast<int>(std::lround(ticks.top / ticks.step));
  for (int i = 0; i <= n; ++i) {
    double value = i * ticks.step;
    double y = kTop + kPlotHeight * (1.0 - value / ticks.top);
    absl::StrAppendFormat(
        &out,
        "<g class=\"tick\" data-value=\"%.17g\" data-pos=\"%.2f\"><line x1=\"%.2f\" x2=\"%.2f\" "
        "y1=\"%.2f\" y2=\"%.2f\" stroke=\"%s\"/><text x=\"%.2f\" y=\"%.2f\" "
        "text-anchor=\"%s\">%s</text></g>\n",
        value * ticks.unit, y, right ? x : x - 5, right ? x + 5 : x, y, y, "#888",
        right ? x + 8 : x - 8, y + 4, right ? "start" : "end", E(TickLabel(value, ticks)));
    if (!right && i != 0) {
      absl::StrAppendFormat(&out,
                            "<line class=\"grid\" x1=\"%.2f\" x2=\"%.2f\" y1=\"%.2f\" y2=\"%.2f\" "
                            "stroke=\"#eee\"/>\n",
                            kLeft, kLeft + kPlotWidth, y, y);
    }
  }
  absl::StrAppend(&out, "</g>\n");
}

void XAxis(std::string& out, const AxisTicks& ticks, const Scale& s) {
  absl::StrAppendFormat(&out, "<g class=\"x-axis\" data-unit=\"%s\" data-unit-us=\"%.0f\">\n",
                        ticks.unit_name, ticks.unit);
  int n = static_cast<int>(std::floor(ticks.top / ticks.step + 1e-9));
  double y = kTop + kPlotHeight;
  for (int i = 0; i <= n; ++i) {
    double value = i * ticks.step;
    double x = s.X(static_cast<uint64_t>(std::llround(value * ticks.unit)));
    absl::StrAppendFormat(&out,
                          "<g class=\"tick\" data-value=\"%.17g\" data-pos=\"%.2f\"><line "
                          "x1=\"%.2f\" x2=\"%.2f\" y1=\"%.2f\" y2=\"%.2f\" stroke=\"#888\"/><text "
                          "x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text></g>\n",
                          value * ticks.unit, x, x, x, y, y + 5, x, y + 18,
                          E(TickLabel(value, ticks)));
  }
  absl::StrAppendFormat(&out,
                        "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">time since the "
                        "program started</text>\n</g>\n",
                        kLeft + kPlotWidth / 2, y + 34);
}

void Markers(std::string& out, const ProcessProfile& p, const Scale& s, ClockResolution res) {
  size_t drawn = 0;
  for (const Marker& m : p.markers) {
    if (drawn++ == kMaxMarkersDrawn) break;
    double x = s.X(m.time_us);
    std::string label = m.name.size() > kMaxMarkerLabel
                            ? absl::StrCat(m.name.substr(0, kMaxMarkerLabel), "...")
                            : m.name;
    absl::StrAppendFormat(
        &out,
        "<g class=\"marker\" data-time-us=\"%d\"><title>marker %s at %s: heap %s</title>"
        "<line x1=\"%.2f\" x2=\"%.2f\" y1=\"%.2f\" y2=\"%.2f\" stroke=\"#b5651d\" "
        "stroke-dasharray=\"4 3\"/><text x=\"%.2f\" y=\"%.2f\" font-size=\"11\" "
        "fill=\"#b5651d\">%s</text></g>\n",
        m.time_us, E(m.name), E(Seconds(m.time_us, res)), E(Bytes(m.heap_bytes)), x, x, kTop,
        kTop + kPlotHeight, x + 3, kTop - 6 - 10.0 * static_cast<double>((drawn - 1) % 2),
        E(label));
  }
}

void Rss(std::string& out, const ProcessProfile& p, const Scale& s) {
  uint64_t max_rss = 1;
  for (const TimePoint& t : p.rss_timeline) max_rss = std::max(max_rss, t.value);
  AxisTicks ticks = ByteTicks(max_rss);
  double top = ticks.top * ticks.unit;
  auto y = [&](uint64_t v) { return kTop + kPlotHeight * (1.0 - static_cast<double>(v) / top); };
  absl::StrAppend(&out, "<g class=\"rss\">\n");
  YAxis(out, ticks, "rss-axis", /*right=*/true);
  // A sample holds until the next one: steps here too.
  std::string d;
  for (size_t i = 0; i < p.rss_timeline.size(); ++i) {
    const TimePoint& t = p.rss_timeline[i];
    if (i == 0) {
      absl::StrAppend(&d, "M", Num(s.X(t.time_us)), ",", Num(y(t.value)));
    } else {
      absl::StrAppend(&d, "H", Num(s.X(t.time_us)), "V", Num(y(t.value)));
    }
  }
  absl::StrAppend(&d, "H", Num(s.X(p.duration_us)));
  absl::StrAppend(&out, "<path class=\"rss-line\" fill=\"none\" stroke=\"#999\" "
                        "stroke-width=\"1\" d=\"", d, "\"/>\n</g>\n");
}

// Hover (or focus and arrow keys) reads the heap at a moment from the
// columns' numbers on the hover area. No trace string is in here.
constexpr char kChartScript[] = R"(
(function () {
  function bytes(b) {
    return String(b).replace(/\B(?=(\d{3})+(?!\d))/g, ',') + ' bytes';
  }
  function time(us) {
    if (us < 2000) return us.toFixed(0) + ' us';
    if (us < 2e6) return (us / 1000).toFixed(1) + ' ms';
    return (us / 1e6).toFixed(3) + ' s';
  }
  var charts = document.querySelectorAll('svg.timeline');
  for (var n = 0; n < charts.length; n++) (function (svg) {
    var area = svg.querySelector('rect.hover-area');
    var cursor = svg.querySelector('g.cursor');
    if (!area || !cursor) return;
    var line = cursor.querySelector('line');
    var text = cursor.querySelector('text');
    var left = +svg.dataset.plotLeft, right = +svg.dataset.plotRight;
    var end = +svg.dataset.endUs, start = area.dataset.start;
    var cols = area.dataset.columns.split(' ').filter(Boolean).map(function (c) {
      return c.split(':');  // x, max, min, close (bytes as strings: exact)
    });
    var at = left;
    function show(x) {
      at = x = Math.max(left, Math.min(right, x));
      var lo = 0, hi = cols.length;  // the columns drawn at or before x
      while (lo < hi) {
        var mid = (lo + hi) >> 1;
        if (+cols[mid][0] <= x + 0.5) lo = mid + 1; else hi = mid;
      }
      var c = lo > 0 ? cols[lo - 1] : null, value;
      if (c && x - c[0] < 0.5 && c[1] !== c[2]) {
        value = bytes(c[2]) + ' to ' + bytes(c[1]);
      } else if (c && x - c[0] < 0.5) {
        value = bytes(c[1]);
      } else {
        value = bytes(c ? c[3] : start);
      }
      line.setAttribute('x1', x);
      line.setAttribute('x2', x);
      text.textContent = time((x - left) / (right - left) * end) + ': ' + value;
      var wide = x > (left + right) / 2;
      text.setAttribute('x', wide ? x - 4 : x + 4);
      text.setAttribute('text-anchor', wide ? 'end' : 'start');
      cursor.setAttribute('visibility', 'visible');
    }
    function hide() { cursor.setAttribute('visibility', 'hidden'); }
    function pointer(e) {
      var p = svg.createSVGPoint();
      p.x = e.clientX;
      p.y = e.clientY;
      show(p.matrixTransform(svg.getScreenCTM().inverse()).x);
    }
    area.addEventListener('mousemove', pointer);
    area.addEventListener('mouseleave', hide);
    svg.addEventListener('focus', function () { show(at); });
    svg.addEventListener('blur', hide);
    svg.addEventListener('keydown', function (e) {
      var step = e.shiftKey ? 10 : 1;
      if (e.key === 'ArrowLeft') show(at - step);
      else if (e.key === 'ArrowRight') show(at + step);
      else return;
      e.preventDefault();
    });
  })(charts[n]);
})();
)";

}  // namespace

const char* HeapChartScript() { return kChartScript; }

std::vector<ChartColumn> ColumnsOf(const HeapTimeline& series, uint64_t end_us, size_t columns) {
  std::vector<ChartColumn> out(std::max<size_t>(columns, 1));
  double span = static_cast<double>(std::max<uint64_t>(end_us, 1));
  for (const HeapBucket& b : series.buckets) {
    size_t c = static_cast<size_t>(static_cast<double>(b.first_us) / span *
                                   static_cast<double>(out.size()));
    c = std::min(c, out.size() - 1);
    if (out[c].used) {
      out[c].envelope = MergeBuckets(out[c].envelope, b);
    } else {
      out[c].used = true;
      out[c].envelope = b;
    }
  }
  return out;
}

AxisTicks ByteTicks(uint64_t max_bytes) {
  AxisTicks t;
  static constexpr const char* kNames[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (u < 4 && static_cast<double>(max_bytes) >= std::pow(1024.0, u + 1)) ++u;
  t.unit = std::pow(1024.0, u);
  t.unit_name = kNames[u];
  double v = std::max(1.0, static_cast<double>(max_bytes) / t.unit);
  t.step = NiceStep(v / 5);
  if (u == 0) t.step = std::max(1.0, t.step);  // no fractions of a byte
  t.top = std::ceil(v / t.step - 1e-9) * t.step;
  if (t.top < v) t.top += t.step;
  return t;
}

AxisTicks TimeTicks(uint64_t end_us) {
  AxisTicks t;
  double end = static_cast<double>(std::max<uint64_t>(end_us, 1));
  if (end < 2000) {
    t.unit = 1, t.unit_name = "us";
  } else if (end < 2'000'000) {
    t.unit = 1000, t.unit_name = "ms";
  } else {
    t.unit = 1'000'000, t.unit_name = "s";
  }
  double v = end / t.unit;
  t.step = NiceStep(v / 8);
  if (t.unit == 1) t.step = std::max(1.0, t.step);
  t.top = std::floor(v / t.step + 1e-9) * t.step;
  return t;
}

std::string TickLabel(double value, const AxisTicks& ticks) {
  // As many decimals as the step has.
  int decimals = 0;
  for (double s = ticks.step; decimals < 6 && std::fabs(s - std::round(s)) > 1e-9; s *= 10) {
    ++decimals;
  }
  return absl::StrFormat("%.*f %s", decimals, value, ticks.unit_name);
}

std::string RenderHeapChart(const ProcessProfile& p, std::string_view id) {
  std::string out = "<figure class=\"heap-chart\">\n";
  const HeapTimeline& series = p.heap_series;
  uint64_t end_us = std::max(p.duration_us, series.end_us);
  if (series.buckets.empty() || end_us == 0) {
    absl::StrAppend(&out, "<p class=\"note\">The heap never changed: nothing to chart.</p>\n"
                          "</figure>\n");
    return out;
  }
  ClockResolution res = ResolutionOf(p.header.flags);
  // The series' own maximum: the same number and time as Totals::peak_*
  // (both follow the analysis' heap counter; heap_timeline_test checks it),
  // and the chart stays self-consistent whatever else the summary prints.
  const HeapBucket* top = series.PeakBucket();
  uint64_t peak = top->max;
  uint64_t peak_time = top->max_time_us;
  AxisTicks yt = ByteTicks(peak);
  AxisTicks xt = TimeTicks(end_us);
  Scale s{static_cast<double>(end_us), yt.top * yt.unit};
  bool has_rss = !p.rss_timeline.empty();
  if (has_rss) {
    // The checkbox is the SVG's sibling: `.rss-toggle:checked ~ svg .rss`
    // shows the RSS without script.
    std::string rss_id = absl::StrCat("rss-", std::string(id));
    absl::StrAppend(&out, "<input type=\"checkbox\" class=\"rss-toggle\" id=\"", rss_id,
                    "\"/><label for=\"", rss_id,
                    "\"> show RSS (includes heapsight&apos;s own memory)</label><br/>\n");
  }
  absl::StrAppendFormat(
      &out,
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"timeline\" width=\"%.0f\" "
      "height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\" font-size=\"12\" "
      "data-plot-left=\"%.0f\" data-plot-right=\"%.0f\" data-plot-top=\"%.0f\" "
      "data-plot-bottom=\"%.0f\" data-end-us=\"%d\" data-y-top=\"%.0f\" tabindex=\"0\" "
      "aria-label=\"live heap over time; arrow keys move a cursor that reads the heap\">\n",
      kLeft + kPlotWidth + kRight, kTop + kPlotHeight + kBottom, kLeft + kPlotWidth + kRight,
      kTop + kPlotHeight + kBottom, kLeft, kLeft + kPlotWidth, kTop, kTop + kPlotHeight, end_us, yt.top * yt.unit);
  // A sampled trace's series is the estimated heap (trace_model.h), as its
  // peak is; say so wherever the chart gives a number.
  const bool estimated = p.totals.estimated;
  absl::StrAppend(&out, "<title>Live heap over time", estimated ? " (estimate)" : "", ": peak ",
                  E(Bytes(peak)), " at ", E(Seconds(peak_time, res)), "</title>\n");
  absl::StrAppendFormat(&out,
                        "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" "
                        "fill=\"#fcfcfc\" stroke=\"#ccc\"/>\n",
                        kLeft, kTop, kPlotWidth, kPlotHeight);
  YAxis(out, yt, "heap-axis", /*right=*/false);
  XAxis(out, xt, s);
  if (has_rss) Rss(out, p, s);

  std::vector<ChartColumn> columns =
      ColumnsOf(series, end_us, static_cast<size_t>(kPlotWidth));
  uint64_t start = series.buckets.front().open;
  std::string d = StepPath(columns, s, end_us, start);
  absl::StrAppendFormat(&out,
                        "<path class=\"heap-area\" fill=\"#1f62b4\" fill-opacity=\"0.12\" "
                        "stroke=\"none\" d=\"%sV%.2fH%.2fZ\"/>\n",
                        d, s.Y(0), s.X(0));
  absl::StrAppend(&out, "<path class=\"heap-line\" fill=\"none\" stroke=\"#1f62b4\" "
                        "stroke-width=\"1.5\" d=\"", d, "\"/>\n");
  Markers(out, p, s, res);
  absl::StrAppendFormat(
      &out,
      "<g class=\"peak\" data-bytes=\"%d\" data-time-us=\"%d\"><title>peak heap %s at %s</title>"
      "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"4\" fill=\"#c0392b\"/><text x=\"%.2f\" y=\"%.2f\" "
      "text-anchor=\"%s\" fill=\"#c0392b\">peak %s at %s</text></g>\n",
      peak, peak_time, E(Bytes(peak)), E(Seconds(peak_time, res)), s.X(peak_time), s.Y(peak),
      s.X(peak_time) + (s.X(peak_time) > kLeft + kPlotWidth * 0.7 ? -8 : 8), s.Y(peak) + 14,
      s.X(peak_time) > kLeft + kPlotWidth * 0.7 ? "end" : "start",
      E(TickLabel(static_cast<double>(peak) / yt.unit,
                  AxisTicks{yt.unit, yt.unit_name, 0.01, yt.top})),
      E(Seconds(peak_time, res)));
  // The hover readout (HeapChartScript): each drawn column's x and exact
  // numbers, numbers only.
  std::string data;
  for (const ChartColumn& c : columns) {
    if (!c.used) continue;
    const HeapBucket& b = c.envelope;
    absl::StrAppendFormat(&data, "%.2f:%d:%d:%d ", s.X(b.max_time_us), b.max, b.min, b.close);
  }
  absl::StrAppendFormat(&out,
                        "<g class=\"cursor\" visibility=\"hidden\" pointer-events=\"none\">"
                        "<line x1=\"0\" x2=\"0\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#555\"/>"
                        "<text class=\"cursor-text\" x=\"0\" y=\"%.0f\"></text></g>\n",
                        kTop, kTop + kPlotHeight, kTop + 14);
  absl::StrAppendFormat(&out,
                        "<rect class=\"hover-area\" x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" "
                        "height=\"%.0f\" fill=\"transparent\" pointer-events=\"all\" "
                        "data-start=\"%d\" data-columns=\"%s\"/>\n",
                        kLeft, kTop, kPlotWidth, kPlotHeight, start, data);
  absl::StrAppendFormat(&out,
                        "<text x=\"%.0f\" y=\"%.0f\" transform=\"rotate(-90 %.0f %.0f)\" "
                        "text-anchor=\"middle\">%s</text>\n",
                        16.0, kTop + kPlotHeight / 2, 16.0, kTop + kPlotHeight / 2,
                        estimated ? "live heap (estimate)" : "live heap");
  absl::StrAppend(&out, "</svg>\n<figcaption class=\"note\">Blue: bytes live in the "
                        "program&apos;s heap (the C/C++ runtime&apos;s own blocks left out, as in "
                        "every total), exact at every allocation and free; where a pixel holds "
                        "several changes its line spans their lowest to highest value. Red dot: "
                        "the peak. Dashed: markers set by the program (heapsight_marker).");
  if (has_rss) {
    absl::StrAppend(&out, " Grey (right axis, behind the checkbox): resident set size of the "
                          "whole process, heapsight&apos;s own memory included, sampled.");
  } else {
    absl::StrAppend(&out, " RSS was not sampled.");
  }
  if (estimated) {
    absl::StrAppend(&out, " <span class=\"estimate\">Sampled trace: the line is the estimated "
                          "heap (each call site&apos;s sampled live blocks scaled up, the way "
                          "the peak and every total are), an estimate, not a measurement.</span>");
  }
  absl::StrAppend(&out, "</figcaption>\n</figure>\n");
  return out;
}

}  // namespace heapsight::analyzer::output
