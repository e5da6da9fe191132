// analyzer/output/html_selection_script.cc: the page's script for the heap
// chart's selection and its stacked bands (declared in html_flame.h), run
// before FlameScript. No trace string is in it; the trace's strings reach
// the page only through textContent and attributes.
//
// From the per-site series in a process's views table ("series", see
// html_flame.cc and model/site_timeline.h) it
//  - adds two metrics to the views' switch: the bytes live at the selected
//    moment (each kept site's live bytes after the bucket holding the
//    moment, the other sites' sum on the root) and the bytes allocated in
//    the selected range (the buckets the range touches);
//  - lets the user pick a moment (click, or focus the chart, move the
//    cursor with the arrow keys and press Enter; the arrow keys then move
//    the moment) or a range (drag) on the chart; Escape or the button
//    clears it (back to the moment of the highest total and the whole trace);
//    the views switch to the matching metric and redraw;
//  - stacks the chart by call site on request: the 8 functions (innermost
//    frame that is not library plumbing) with the most live bytes at any
//    bucket's end as bands, every other site as "other", with a legend; the
//    exact step line stays drawn on top.
#include "analyzer/output/html_flame.h"

namespace heapsight::analyzer::output {

const char* SelectionScript() {
  return R"JS(
(function () {
  'use strict';
  var SVG = 'http://www.w3.org/2000/svg';
  var BANDS = 8;
  var COLORS = ['#4e79a7', '#f28e2b', '#59a14f', '#e15759', '#76b7b2', '#edc948', '#b07aa1',
                '#ff9da7', '#bab0ac'];
  function time(us) {
    if (us < 2000) return us.toFixed(0) + ' us';
    if (us < 2e6) return (us / 1000).toFixed(1) + ' ms';
    return (us / 1e6).toFixed(3) + ' s';
  }
  function svgEl(tag, attrs) {
    var e = document.createElementNS(SVG, tag);
    for (var k in attrs) e.setAttribute(k, attrs[k]);
    return e;
  }
  // The series' value at the end of bucket k (the last bucket <= k).
  function liveAt(s, k) {
    var lo = 0, hi = s.idx.length;
    while (lo < hi) { var mid = (lo + hi) >> 1; if (s.idx[mid] <= k) lo = mid + 1; else hi = mid; }
    return lo > 0 ? s.live[lo - 1] : 0;
  }
  function dense(s, nb) {
    var out = new Float64Array(nb), j = 0, v = 0;
    for (var k = 0; k < nb; k++) {
      while (j < s.idx.length && s.idx[j] === k) v = s.live[j++];
      out[k] = v;
    }
    return out;
  }

  window.heapsightSeries = {
    init: function (model, varints) {
      var S = model.d.series, w = Math.max(1, S.w), nb = Math.floor(S.end / w) + 1;
      function dec(str, node) {
        var r = varints(str), s = { node: node, idx: [], live: [], alloc: [] }, at = -1;
        for (var j = 0; j + 2 < r.length; j += 3) {
          at += r[j]; s.idx.push(at); s.live.push(r[j + 1]); s.alloc.push(r[j + 2]);
        }
        return s;
      }
      var list = [dec(S.other, -1)];
      S.sites.forEach(function (x) { list.push(dec(x[1], x[0])); });
      var total = new Float64Array(nb);
      list.forEach(function (s) {
        var d = dense(s, nb);
        for (var k = 0; k < nb; k++) total[k] += d[k];
      });
      var best = 0;
      for (var k = 1; k < nb; k++) if (total[k] > total[best]) best = k;
      var ms = model.d.metrics;
      model.series = { w: w, end: S.end, nb: nb, list: list, best: best,
                       moment: ms.length, range: ms.length + 1, sel: null };
      ms.push({ key: 'live_moment', label: 'bytes live at the selected moment (chart)',
                unit: 'bytes', total: 0, v: new Float64Array(0) });
      ms.push({ key: 'alloc_range', label: 'bytes allocated in the selected range (chart)',
                unit: 'bytes', total: 0, v: new Float64Array(0) });
      this.apply(model, null);
    },
    // Fills the two metrics for `sel` ({moment} or {a, b} in us; null: the
    // moment of the highest total and the whole trace).
    apply: function (model, sel) {
      var T = model.series, w = T.w;
      var k = sel && sel.moment !== undefined ? Math.floor(sel.moment / w) : T.best;
      var ka = sel && sel.a !== undefined ? Math.floor(sel.a / w) : 0;
      var kb = sel && sel.b !== undefined ? Math.floor(sel.b / w) : T.nb;
      var live = [], alloc = [];
      T.list.forEach(function (s) {
        var v = liveAt(s, k);
        if (v > 0) live.push(s.node, v);
        var a = 0;
        for (var j = 0; j < s.idx.length; j++) if (s.idx[j] >= ka && s.idx[j] <= kb) a += s.alloc[j];
        if (a > 0) alloc.push(s.node, a);
      });
      var ms = model.d.metrics;
      ms[T.moment].v = Float64Array.from(live);
      ms[T.range].v = Float64Array.from(alloc);
      [T.moment, T.range].forEach(function (mi) {
        ['L', 'F'].forEach(function (l) { delete model.cache[mi + l]; delete model.cache['B' + mi + l]; });
      });
      T.sel = sel;
      T.k = k; T.ka = ka; T.kb = Math.min(kb, T.nb - 1);
    },
    attach: function (views) {
      var self = this;
      views.forEach(function (v) {
        var section = v.root.closest('section.process');
        var svg = section && section.querySelector('svg.timeline');
        var data = document.getElementById(v.root.getAttribute('data-flame'));
        if (!svg || !data || data.textContent.indexOf('"series":') < 0) return;
        self.chart(v, svg);
      });
    },
    chart: function (v, svg) {
      var self = this;
      var left = +svg.dataset.plotLeft, right = +svg.dataset.plotRight;
      var top = +svg.dataset.plotTop, bottom = +svg.dataset.plotBottom;
      var end = +svg.dataset.endUs, ytop = +svg.dataset.yTop;
      var area = svg.querySelector('rect.hover-area'), cursor = svg.querySelector('g.cursor line');
      function X(us) { return left + (right - left) * Math.min(us, end) / end; }
      function toUs(x) { return Math.max(0, Math.min(end, (x - left) / (right - left) * end)); }
      function Y(b) { return bottom - (bottom - top) * b / ytop; }
      var p = document.createElement('p');
      p.className = 'controls chart-controls';
      var stackBox = document.createElement('input');
      stackBox.type = 'checkbox'; stackBox.className = 'chart-stacked';
      var label = document.createElement('label');
      label.appendChild(stackBox);
      label.appendChild(document.createTextNode(' stacked by call site (top ' + BANDS + ' + other)'));
      var clear = document.createElement('button');
      clear.type = 'button'; clear.className = 'chart-clear'; clear.textContent = 'clear selection';
      var status = document.createElement('span');
      status.className = 'chart-selection'; status.setAttribute('aria-live', 'polite');
      p.appendChild(label); p.appendChild(document.createTextNode(' '));
      p.appendChild(clear); p.appendChild(document.createTextNode(' '));
      p.appendChild(status);
      var hint = document.createElement('span');
      hint.className = 'note';
      hint.textContent = ' Click the chart for a moment, drag for a range (Escape clears; ' +
          'focused: arrow keys and Enter); the views below follow.';
      p.appendChild(hint);
      svg.parentNode.insertBefore(p, svg);
      var legend = document.createElement('div');
      legend.className = 'site-legend';
      legend.hidden = true;
      svg.parentNode.insertBefore(legend, svg.nextSibling);
      var g = svgEl('g', { 'class': 'selection', 'pointer-events': 'none' });
      var rect = svgEl('rect', { 'class': 'sel-range', y: top, height: bottom - top, x: 0, width: 0,
                                 fill: '#e67e22', 'fill-opacity': '0.12', stroke: '#e67e22', visibility: 'hidden' });
      var mline = svgEl('line', { 'class': 'sel-moment', y1: top, y2: bottom, x1: 0, x2: 0,
                                  stroke: '#e67e22', 'stroke-width': '2', visibility: 'hidden' });
      g.appendChild(rect); g.appendChild(mline);
      svg.insertBefore(g, area);
      var bands = null;

      function model() { var m = v.load(); return m.series ? m : null; }
      function show(sel) {
        var m = model();
        if (!m) return;
        self.apply(m, sel);
        var T = m.series, w = T.w;
        status.dataset.bucketUs = String(w);
        if (sel && sel.moment !== undefined) {
          mline.setAttribute('x1', X(sel.moment)); mline.setAttribute('x2', X(sel.moment));
          mline.setAttribute('visibility', 'visible'); rect.setAttribute('visibility', 'hidden');
          status.textContent = 'Moment: ' + time(sel.moment) + ' (live bytes as of the end of its ' +
              time(w) + ' bucket)';
          status.dataset.momentUs = String(sel.moment);
          delete status.dataset.rangeA; delete status.dataset.rangeB;
        } else if (sel) {
          rect.setAttribute('x', X(sel.a)); rect.setAttribute('width', Math.max(1, X(sel.b) - X(sel.a)));
          rect.setAttribute('visibility', 'visible'); mline.setAttribute('visibility', 'hidden');
          status.textContent = 'Range: ' + time(T.ka * w) + ' to ' + time((T.kb + 1) * w) +
              ' (whole ' + time(w) + ' buckets)';
          status.dataset.rangeA = String(sel.a); status.dataset.rangeB = String(sel.b);
          delete status.dataset.momentUs;
        } else {
          rect.setAttribute('visibility', 'hidden'); mline.setAttribute('visibility', 'hidden');
          status.textContent = 'No selection: moment of the highest total, whole trace.';
          delete status.dataset.momentUs; delete status.dataset.rangeA;
          delete status.dataset.rangeB;
        }
        var want = !sel ? null : sel.moment !== undefined ? 'live_moment' : 'alloc_range';
        if (want && v.select.value !== want) {
          v.select.value = want;
          v.select.dispatchEvent(new Event('change'));
        } else {
          v.render();
        }
      }
      function svgX(e) {
        var pt = svg.createSVGPoint();
        pt.x = e.clientX; pt.y = e.clientY;
        return pt.matrixTransform(svg.getScreenCTM().inverse()).x;
      }
      var x0 = null;
      area.addEventListener('mousedown', function (e) {
        if (e.button !== 0) return;
        x0 = svgX(e);
        e.preventDefault();
      });
      area.addEventListener('mousemove', function (e) {
        if (x0 === null) return;
        var x1 = svgX(e);
        rect.setAttribute('x', Math.min(x0, x1)); rect.setAttribute('width', Math.abs(x1 - x0));
        rect.setAttribute('visibility', 'visible');
      });
      document.addEventListener('mouseup', function (e) {
        if (x0 === null) return;
        var x1 = svgX(e), a = x0;
        x0 = null;
        if (Math.abs(x1 - a) < 3) show({ moment: toUs(x1) });
        else show({ a: toUs(Math.min(a, x1)), b: toUs(Math.max(a, x1)) });
      });
      // After the chart's own handler (HeapChartScript) moved its cursor.
      svg.addEventListener('keydown', function (e) {
        if (e.key === 'Escape') { show(null); e.preventDefault(); return; }
        // Enter or Space picks the cursor's moment; once a moment is
        // picked, the arrow keys move it with the cursor.
        var picked = v.model && v.model.series && v.model.series.sel &&
            v.model.series.sel.moment !== undefined;
        if (e.key === 'Enter' || e.key === ' ' ||
            (picked && (e.key === 'ArrowLeft' || e.key === 'ArrowRight'))) {
          show({ moment: toUs(+cursor.getAttribute('x1')) });
          e.preventDefault();
        }
      });
      clear.addEventListener('click', function () { show(null); });
      stackBox.addEventListener('change', function () {
        var m = model();
        if (!m) return;
        if (!bands) bands = self.bands(m, svg, legend, X, Y);
        bands.setAttribute('visibility', stackBox.checked ? 'visible' : 'hidden');
        legend.hidden = !stackBox.checked;
        var heapArea = svg.querySelector('path.heap-area');
        if (heapArea) heapArea.setAttribute('visibility', stackBox.checked ? 'hidden' : 'visible');
        svg.classList.toggle('stacked', stackBox.checked);
      });
    },
    // The stacked bands: per function (the innermost frame that is not
    // library plumbing) the sum of its sites' live bytes per bucket.
    bands: function (m, svg, legend, X, Y) {
      var T = m.series, nb = T.nb, w = T.w;
      var groups = new Map(), other = new Float64Array(nb);
      T.list.forEach(function (s) {
        var d = dense(s, nb);
        if (s.node < 0) { for (var k = 0; k < nb; k++) other[k] += d[k]; return; }
        var name = m.label(m.target(s.node + 1, false));
        var gv = groups.get(name);
        if (!gv) groups.set(name, gv = new Float64Array(nb));
        for (var k2 = 0; k2 < nb; k2++) gv[k2] += d[k2];
      });
      var list = Array.from(groups.entries()).map(function (e) {
        var mx = 0;
        for (var k = 0; k < nb; k++) mx = Math.max(mx, e[1][k]);
        return { name: e[0], v: e[1], max: mx };
      }).sort(function (a, b) { return b.max - a.max || (a.name < b.name ? -1 : 1); });
      list.slice(BANDS).forEach(function (b) { for (var k = 0; k < nb; k++) other[k] += b.v[k]; });
      list = list.slice(0, BANDS).filter(function (b) { return b.max > 0; });
      var omax = 0;
      for (var k = 0; k < nb; k++) omax = Math.max(omax, other[k]);
      if (omax > 0) list.push({ name: 'other', v: other, max: omax, other: true });
      var g = svgEl('g', { 'class': 'site-bands' });
      var below = new Float64Array(nb);
      list.forEach(function (b, i) {
        var hi = new Float64Array(nb);
        for (var k = 0; k < nb; k++) hi[k] = below[k] + b.v[k];
        var d = 'M' + X(0).toFixed(2) + ',' + Y(hi[0]).toFixed(2);
        for (k = 1; k < nb; k++) d += 'H' + X(k * w).toFixed(2) + 'V' + Y(hi[k]).toFixed(2);
        d += 'H' + X(T.end).toFixed(2) + 'V' + Y(below[nb - 1]).toFixed(2);
        for (k = nb - 1; k >= 1; k--) d += 'H' + X(k * w).toFixed(2) + 'V' + Y(below[k - 1]).toFixed(2);
        d += 'H' + X(0).toFixed(2) + 'Z';
        var color = b.other ? '#c8c8c8' : COLORS[i % COLORS.length];
        var path = svgEl('path', { 'class': 'site-band', d: d, fill: color, 'fill-opacity': '0.75',
                                   stroke: 'none', 'data-max': String(b.max), 'data-rank': String(i) });
        path.setAttribute('data-name', b.name);
        var title = svgEl('title', {});
        title.textContent = b.name + ': up to ' + String(b.max).replace(/\B(?=(\d{3})+(?!\d))/g, ',') + ' bytes live';
        path.appendChild(title);
        g.appendChild(path);
        var item = document.createElement('span');
        item.className = 'legend-item';
        item.title = b.name;
        var sw = document.createElement('span');
        sw.className = 'swatch';
        sw.style.background = color;
        item.appendChild(sw);
        item.appendChild(document.createTextNode(b.name));
        legend.insertBefore(item, legend.firstChild);  // the top band first
        below = hi;
      });
      var line = svg.querySelector('path.heap-line');
      svg.insertBefore(g, line);
      return g;
    }
  };
})();
)JS";
}

}  // namespace heapsight::analyzer::output
