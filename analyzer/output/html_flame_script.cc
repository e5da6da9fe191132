// analyzer/output/html_flame_script.cc: the script and style of the page's
// call-site views (html_flame.h). The script reads each process's JSON
// table (html_flame.h's schema), merges the stacks into a call tree by
// function name and draws, in plain DOM:
//  - the flame graph (root at the bottom) or icicle (root on top): click to
//    zoom, hover or arrow keys for exact numbers, a regular-expression
//    search that highlights the matching frames and totals them (a stack
//    counts once however many of its frames match);
//  - the standard library's allocation plumbing at the innermost end of a
//    stack (IsLibraryFrame) folded into the program frame that called it,
//    or shown (a checkbox);
//  - top-down and bottom-up trees as tables with inclusive and self
//    columns, sortable, expandable, keyboard-driven, and the callers and
//    callees of the function in the selected row.
// Every trace string goes into the page through textContent or an
// attribute set by script, never through innerHTML.
#include "analyzer/output/html_flame.h"

namespace heapsight::analyzer::output {

const char* FlameStyle() {
  return R"CSS(
div.flame-graph { position: relative; width: 100%; min-height: 40px; overflow: hidden;
  font: 11px sans-serif; border: 1px solid #ddd; outline-offset: 2px; }
div.flame-graph div.fr { position: absolute; height: 16px; line-height: 16px; overflow: hidden;
  white-space: nowrap; text-overflow: ellipsis; padding: 0 2px; box-sizing: border-box;
  border: 1px solid #fff; cursor: pointer; color: #000; }
div.flame-graph div.fr.lib { background: #b9c8dc !important; }
div.flame-graph div.fr.match { background: #e05ad0 !important; }
div.flame-graph div.fr.anc { opacity: 0.55; }
div.flame-graph div.fr.focus { outline: 2px solid #000; z-index: 1; }
div.flame-detail { font: 12px monospace; min-height: 2.6em; white-space: pre-wrap;
  overflow-wrap: anywhere; background: #f8f8f8; padding: 0.2em 0.4em; }
p.controls { margin: 0.3em 0; }
div.tree-box { max-height: 32em; overflow: auto; border: 1px solid #ddd; }
div.tree-box table, div.relations table { width: 100%; margin: 0; }
table.calltree th { cursor: pointer; user-select: none; }
table.calltree td.fn { font-family: monospace; font-size: 0.9em; overflow-wrap: anywhere; }
table.calltree tr.sel td { background: #dde8f8; }
table.calltree span.tw { display: inline-block; width: 1.1em; color: #555; }
div.relations { display: flex; gap: 1em; margin-top: 0.5em; }
div.relations > div { flex: 1; min-width: 0; }
div.site-legend { margin: 0.2em 0 0.6em 3em; font-size: 0.9em; }
div.site-legend span.legend-item { display: inline-block; margin-right: 1.2em; }
div.site-legend span.swatch { display: inline-block; width: 0.9em; height: 0.9em;
  margin-right: 0.3em; vertical-align: middle; }
)CSS";
}

const char* FlameScript() {
  return R"JS(
(function () {
  'use strict';
  var views = Array.prototype.slice.call(document.querySelectorAll('div.views[data-flame]'));
  if (!views.length) return;
  var shared = { metric: null, term: '', icicle: false, lib: false };
  var ROW = 17;

  function thousands(n) {
    return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  }
  function pct(v, all) { return all > 0 ? (100 * v / all).toFixed(2) + '%' : '0.00%'; }
  function hue(s) {
    var h = 0;
    for (var i = 0; i < s.length; i++) h = (h * 31 + s.charCodeAt(i)) | 0;
    h = Math.abs(h);
    return 'hsl(' + (h % 55) + ',' + (60 + (h >> 8) % 30) + '%,' + (55 + (h >> 4) % 15) + '%)';
  }
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }

  // html_flame.h's varints: 5 bits per base-64 digit, least significant
  // first, 32 added to every digit but a number's last.
  function varints(s) {
    var out = new Float64Array(s.length), k = 0, v = 0, mul = 1;
    for (var i = 0; i < s.length; i++) {
      var c = s.charCodeAt(i);
      var d = c >= 97 ? c - 71 : c === 95 ? 63 : c >= 65 ? c - 65 : c >= 48 ? c + 4 : 62;
      v += (d & 31) * mul;
      if (d & 32) { mul *= 32; continue; }
      out[k++] = v; v = 0; mul = 1;
    }
    return out.subarray(0, k);
  }
  // The call tree of one process (html_flame.h), node n of the table as
  // node n + 1 here, 0 the root ("all"): parents come before children and
  // siblings are in name order already.
  function Model(d) {
    var S = d.strings, F = d.frames, raw = varints(d.nodes), cap = raw.length + 1;
    var parent = new Int32Array(cap), frame = new Int32Array(cap), name = new Int32Array(cap);
    var firstKid = new Int32Array(cap), nextSib = new Int32Array(cap), lastKid = new Int32Array(cap);
    parent[0] = -1; frame[0] = -1; name[0] = -1;
    var m = 1;
    for (var i = 0; i < raw.length; m++) {
      var x = raw[i++], n = m - 1;
      var p = (x % 2 ? n - raw[i++] : n - 1) + 1, f = Math.floor(x / 2);
      parent[m] = p; frame[m] = f; name[m] = F[4 * f];
      if (lastKid[p]) nextSib[lastKid[p]] = m; else firstKid[p] = m;
      lastKid[p] = m;
    }
    parent = parent.subarray(0, m); frame = frame.subarray(0, m); name = name.subarray(0, m);
    this.firstKid = firstKid; this.nextSib = nextSib;
    var multi = new Uint8Array(parent.length), sev = varints(d.several || ''), at = -1;
    for (var k = 0; k < sev.length; k++) { at += sev[k]; multi[at + 1] = 1; }
    d.metrics.forEach(function (mt) {
      var r = varints(mt.v), node = -1;
      for (var j = 0; j < r.length; j += 2) { node += r[j]; r[j] = node; }
      mt.v = r;
    });
    this.d = d; this.S = S;
    this.name = name; this.parent = parent; this.frame = frame; this.multi = multi;
    this.cache = {};
    // The selection's metrics (html_selection_script.cc), from the per-site
    // series when the table has one.
    if (d.series && window.heapsightSeries) window.heapsightSeries.init(this, varints);
  }
  Model.prototype.kidsOf = function (m) {
    var out = [];
    for (var c = this.firstKid[m]; c; c = this.nextSib[c]) out.push(c);
    return out;
  };
  Model.prototype.label = function (m) { return m === 0 ? 'all' : this.S[this.name[m]]; };
  Model.prototype.isLib = function (m) {
    return m !== 0 && this.d.frames[4 * this.frame[m] + 3] === 1;
  };
  Model.prototype.where = function (m) {
    if (m === 0) return '';
    if (this.multi[m]) return 'several places';
    var w = this.d.frames[4 * this.frame[m] + 1];
    return w < 0 ? '' : this.S[w];
  };
  Model.prototype.path = function (m) {
    if (m === 0 || this.multi[m]) return '';
    var p = this.d.frames[4 * this.frame[m] + 2];
    return p < 0 ? '' : this.S[p];
  };
  // The node a value lands on: its own, or with the plumbing folded, the
  // innermost frame that is not library plumbing (the root if none).
  Model.prototype.target = function (m, lib) {
    if (!lib) while (m > 0 && this.isLib(m)) m = this.parent[m];
    return m;
  };
  // Self and inclusive values of every node for a metric.
  Model.prototype.values = function (mi, lib) {
    var key = mi + (lib ? 'L' : 'F');
    if (this.cache[key]) return this.cache[key];
    var M = this.name.length, self = new Float64Array(M), tot = new Float64Array(M);
    var v = this.d.metrics[mi].v;
    for (var j = 0; j < v.length; j += 2) self[this.target(v[j] + 1, lib)] += v[j + 1];
    for (var i = M - 1; i >= 0; i--) {
      tot[i] += self[i];
      if (i > 0) tot[this.parent[i]] += tot[i];
    }
    return (this.cache[key] = { self: self, tot: tot });
  };
  // The bottom-up tree: innermost frames at the top level.
  // The bottom-up tree: the innermost frames at the top level, their
  // callers below. Built lazily: a node holds the top-down nodes its stacks
  // are at (cursors) and their values; its children group the cursors'
  // callers by name when first asked for.
  Model.prototype.bottomUp = function (mi, lib) {
    var key = 'B' + mi + (lib ? 'L' : 'F');
    if (this.cache[key]) return this.cache[key];
    var model = this, v = this.d.metrics[mi].v;
    var name = [-1], parent = [-1], frame = [-1], tot = [0], self = [0];
    var cursors = [[]], values = [[]], kids = [null];
    for (var j = 0; j < v.length; j += 2) {
      cursors[0].push(this.target(v[j] + 1, lib));
      values[0].push(v[j + 1]);
    }
    function expand(id, up) {
      var groups = new Map(), cs = cursors[id], vs = values[id], out = [];
      for (var k = 0; k < cs.length; k++) {
        var n = up ? model.parent[cs[k]] : cs[k];
        if (n <= 0) { if (!up) self[0] += vs[k]; continue; }
        var c = groups.get(model.name[n]);
        if (c === undefined) {
          c = name.length;
          name.push(model.name[n]); parent.push(id); frame.push(model.frame[n]);
          tot.push(0); self.push(0); cursors.push([]); values.push([]); kids.push(null);
          groups.set(model.name[n], c);
          out.push(c);
        }
        cursors[c].push(n); values[c].push(vs[k]); tot[c] += vs[k];
        if (!up) self[c] += vs[k];  // allocated in this function itself
      }
      return out;
    }
    for (var k0 = 0; k0 < values[0].length; k0++) tot[0] += values[0][k0];
    kids[0] = expand(0, false);
    var t = { name: name, parent: parent, frame: frame, tot: tot, self: self,
              kidsOf: function (id) {
                if (kids[id] === null) kids[id] = expand(id, true);
                return kids[id];
              },
              // One place if every stack here is at the same one.
              where: function (id) {
                var w = null, cs = cursors[id];
                for (var k = 0; k < cs.length; k++) {
                  var x = model.multi[cs[k]] ? 'several places' : model.where(cs[k]);
                  if (w !== null && x !== w) return 'several places';
                  w = x;
                }
                return w || '';
              },
              path: function (id) {
                return this.where(id) === 'several places' ? '' : model.path(cursors[id][0]);
              },
              hasKids: function (id) {
                if (kids[id] !== null) return kids[id].length > 0;
                return cursors[id].some(function (n) { return model.parent[n] > 0; });
              } };
    return (this.cache[key] = t);
  };

  function View(root) {
    this.root = root;
    this.graph = root.querySelector('div.flame-graph');
    this.detail = root.querySelector('div.flame-detail');
    this.matched = root.querySelector('span.flame-matched');
    this.select = root.querySelector('select.metric');
    this.treeBox = root.querySelector('div.tree-box');
    this.relations = root.querySelector('div.relations');
    this.model = null;
    this.zoom = 0;
    this.focus = -1;
    this.width = 0;
    this.tree = { mode: 'top', sort: 'tot', dir: -1, open: new Set(), sel: -1, fn: -1 };
  }
  View.prototype.load = function () {
    if (this.model) return this.model;
    var data = document.getElementById(this.root.getAttribute('data-flame'));
    this.model = new Model(JSON.parse(data.textContent));
    var ms = this.model.d.metrics;
    for (var i = 0; i < ms.length; i++) {
      var o = el('option', null, ms[i].label);
      o.value = ms[i].key;
      this.select.appendChild(o);
    }
    return this.model;
  };
  View.prototype.metricIndex = function () {
    var ms = this.model.d.metrics;
    for (var i = 0; i < ms.length; i++) if (ms[i].key === shared.metric) return i;
    return 0;
  };
  View.prototype.visible = function () { return this.root.offsetParent !== null; };

  View.prototype.render = function () {
    if (!this.visible()) return;
    var model = this.load();
    var mi = this.metricIndex();
    this.mi = mi;
    this.metric = model.d.metrics[mi];
    this.select.value = this.metric.key;
    this.vals = model.values(mi, shared.lib);
    this.root.dataset.metric = this.metric.key;
    this.root.dataset.total = String(this.vals.tot[0]);
    this.root.querySelector('input.flame-search').value = shared.term;
    this.root.querySelector('input.flame-icicle').checked = shared.icicle;
    this.root.querySelector('input.flame-lib').checked = shared.lib;
    if (this.zoom !== 0 && !(this.vals.tot[this.zoom] > 0)) this.zoom = 0;
    this.search();
    this.draw();
    this.renderTree();
  };

  View.prototype.search = function () {
    var model = this.model, tot = this.vals.tot, M = model.name.length;
    var re = null;
    this.match = null;
    if (shared.term) {
      try { re = new RegExp(shared.term); } catch (e) { this.matched.textContent = 'invalid expression'; return; }
    }
    if (!re) {
      this.matched.textContent = '';
      delete this.root.dataset.matchedValue;
      return;
    }
    var byName = new Map(), match = new Uint8Array(M), under = new Uint8Array(M), sum = 0;
    for (var m = 1; m < M; m++) {
      if (!(tot[m] > 0)) continue;
      var nm = model.name[m], hit = byName.get(nm);
      if (hit === undefined) { hit = re.test(model.S[nm]); byName.set(nm, hit); }
      var p = model.parent[m];
      if (hit) {
        match[m] = 1;
        if (!under[p]) sum += tot[m];
      }
      under[m] = under[p] || hit ? 1 : 0;
    }
    this.match = match;
    this.root.dataset.matchedValue = String(sum);
    this.matched.textContent = 'Matched: ' + pct(sum, tot[0]) + ' (' + thousands(sum) + ' ' +
        this.metric.unit + ')';
  };

  View.prototype.draw = function () {
    var model = this.model, tot = this.vals.tot, g = this.graph;
    var W = g.clientWidth || 1200;
    this.width = W;
    while (g.firstChild) g.removeChild(g.firstChild);
    this.boxes = new Map();
    if (!(tot[0] > 0)) {
      g.appendChild(el('div', 'note', 'No data for this metric.'));
      g.style.height = '';
      return;
    }
    var z = this.zoom, boxes = [];
    // The zoomed frame's callers, each the whole width.
    var anc = [];
    for (var a = z; a !== 0; a = model.parent[a]) anc.push(model.parent[a]);
    anc.reverse();
    for (var k = 0; k < anc.length; k++) boxes.push([anc[k], 0, W, k, 1]);
    var base = anc.length, maxDepth = base, scale = W / tot[z];
    var stack = [[z, 0, base]];
    while (stack.length) {
      var it = stack.pop(), m = it[0], x = it[1], dep = it[2], w = tot[m] * scale;
      boxes.push([m, x, w, dep, 0]);
      if (dep > maxDepth) maxDepth = dep;
      var kids = model.kidsOf(m);
      for (var c = 0; c < kids.length; c++) {
        var kw = tot[kids[c]] * scale;
        if (kw >= 1) stack.push([kids[c], x, dep + 1]);
        x += kw;
      }
    }
    g.style.height = ((maxDepth + 1) * ROW + 2) + 'px';
    var frag = document.createDocumentFragment();
    for (var b = 0; b < boxes.length; b++) {
      var bx = boxes[b], id = bx[0];
      var div = el('div', 'fr');
      var y = shared.icicle ? bx[3] * ROW : (maxDepth - bx[3]) * ROW;
      div.style.left = bx[1].toFixed(1) + 'px';
      div.style.top = y + 'px';
      div.style.width = Math.max(bx[2], 1).toFixed(1) + 'px';
      var label = model.label(id);
      div.style.background = hue(label);
      if (model.isLib(id)) div.classList.add('lib');
      if (bx[4]) div.classList.add('anc');
      if (this.match && this.match[id]) div.classList.add('match');
      if (bx[2] > 24) div.textContent = label;
      div.setAttribute('data-id', id);
      frag.appendChild(div);
      this.boxes.set(id, div);
    }
    g.appendChild(frag);
    if (this.focus >= 0 && this.boxes.has(this.focus)) this.boxes.get(this.focus).classList.add('focus');
  };

  View.prototype.describe = function (m) {
    var model = this.model, v = this.vals, unit = this.metric.unit;
    var text = model.label(m);
    var where = model.where(m);
    if (where) text += ' (' + where + ')';
    text += '\n' + thousands(v.tot[m]) + ' ' + unit + ', ' + pct(v.tot[m], v.tot[0]) +
        ' of all; self ' + thousands(v.self[m]) + ' ' + unit;
    var path = model.path(m);
    if (path) text += '\n' + path;
    return text;
  };
  View.prototype.show = function (m) {
    this.detail.textContent = m >= 0 ? this.describe(m) : '\u00a0';
  };
  View.prototype.setFocus = function (m) {
    if (this.focus >= 0 && this.boxes.has(this.focus)) this.boxes.get(this.focus).classList.remove('focus');
    this.focus = m;
    if (m >= 0 && this.boxes.has(m)) this.boxes.get(m).classList.add('focus');
    this.show(m);
  };
  View.prototype.zoomTo = function (m) {
    this.zoom = m;
    this.draw();
    this.setFocus(m);
  };
  View.prototype.key = function (e) {
    var model = this.model, tot = this.vals.tot, m = this.focus < 0 ? this.zoom : this.focus;
    var visibleKids = function (x) {
      return model.kidsOf(x).filter(function (c) { return tot[c] > 0; });
    };
    var up = shared.icicle ? 'ArrowDown' : 'ArrowUp';
    var down = shared.icicle ? 'ArrowUp' : 'ArrowDown';
    var next = -1;
    if (e.key === up) {
      var ks = visibleKids(m);
      ks.sort(function (a, b) { return tot[b] - tot[a]; });
      next = ks.length ? ks[0] : -1;
    } else if (e.key === down) {
      next = m === 0 ? -1 : model.parent[m];
    } else if (e.key === 'ArrowLeft' || e.key === 'ArrowRight') {
      if (m === 0) return;
      var sib = visibleKids(model.parent[m]), i = sib.indexOf(m);
      next = sib[i + (e.key === 'ArrowLeft' ? -1 : 1)];
      if (next === undefined) next = -1;
    } else if (e.key === 'Enter') {
      this.zoomTo(m);
      e.preventDefault();
      return;
    } else if (e.key === 'Escape') {
      this.zoomTo(0);
      e.preventDefault();
      return;
    } else {
      return;
    }
    e.preventDefault();
    if (next < 0) return;
    if (!this.boxes.has(next)) {
      // Too narrow to draw here: zoom so that it is.
      this.zoom = model.parent[next] >= 0 ? model.parent[next] : 0;
      this.draw();
    }
    this.setFocus(next);
  };

  // The trees.
  View.prototype.treeData = function () {
    if (this.tree.mode === 'top') {
      var model = this.model, v = this.vals;
      return { name: model.name, parent: model.parent, frame: model.frame, tot: v.tot,
               self: v.self, kidsOf: function (m) { return model.kidsOf(m); },
               where: function (m) { return model.where(m); },
               path: function (m) { return model.path(m); } };
    }
    return this.model.bottomUp(this.mi, shared.lib);
  };
  View.prototype.renderTree = function () {
    var t = this.treeData(), S = this.model.S, F = this.model.d.frames, st = this.tree;
    this.td = t;
    var unit = this.metric.unit, all = t.tot[0];
    var table = el('table', 'calltree');
    var head = el('tr');
    var cols = [['name', 'function (' + (st.mode === 'top' ? 'callees below' : 'callers below') + ')'],
                ['where', 'location'], ['tot', 'inclusive ' + unit], ['self', 'self ' + unit]];
    cols.forEach(function (c) {
      var th = el('th', null, c[1] + (st.sort === c[0] ? (st.dir < 0 ? ' \u25bc' : ' \u25b2') : ''));
      th.setAttribute('data-sort', c[0]);
      head.appendChild(th);
    });
    table.appendChild(head);
    var self = this, rows = [];
    function order(ids) {
      var k = st.sort, dir = st.dir;
      return ids.filter(function (c) { return t.tot[c] > 0; }).sort(function (a, b) {
        var x, y;
        if (k === 'name' || k === 'where') {
          x = k === 'name' ? S[t.name[a]] : t.where(a);
          y = k === 'name' ? S[t.name[b]] : t.where(b);
          return x < y ? -dir : x > y ? dir : 0;
        }
        return (t[k][a] - t[k][b]) * dir;
      });
    }
    function add(id, level) {
      rows.push(id);
      var tr = el('tr');
      tr.setAttribute('data-id', id);
      if (id === st.sel) tr.className = 'sel';
      var open = st.open.has(id);
      var kids = open || !t.hasKids ? order(t.kidsOf(id)) : null;
      var has = kids ? kids.length > 0 : t.hasKids(id);
      var fn = el('td', 'fn');
      fn.style.paddingLeft = (0.3 + level * 1.0) + 'em';
      fn.appendChild(el('span', 'tw', has ? (open ? '\u25be' : '\u25b8') : ''));
      var nm = S[t.name[id]];
      fn.appendChild(document.createTextNode(nm));
      fn.title = nm;
      var where = el('td', 's', t.where(id)), path = t.path(id);
      if (path) where.title = path;
      tr.appendChild(fn);
      tr.appendChild(where);
      tr.appendChild(el('td', 'n', thousands(t.tot[id]) + ' (' + pct(t.tot[id], all) + ')'));
      tr.appendChild(el('td', 'n', thousands(t.self[id])));
      table.appendChild(tr);
      if (open) for (var k = 0; k < kids.length && rows.length < 5000; k++) add(kids[k], level + 1);
    }
    var top = order(t.kidsOf(0));
    for (var i = 0; i < top.length && rows.length < 5000; i++) add(top[i], 0);
    this.rows = rows;
    var box = this.treeBox, scroll = box.scrollTop;
    while (box.firstChild) box.removeChild(box.firstChild);
    box.appendChild(table);
    box.scrollTop = scroll;
    if (!top.length) box.appendChild(el('p', 'note', 'No data for this metric.'));
    this.renderRelations();
  };
  // The callers and callees of the selected row's function, summed over
  // the top-down tree (a recursive function counts once per stack).
  View.prototype.renderRelations = function () {
    var box = this.relations;
    while (box.firstChild) box.removeChild(box.firstChild);
    var fn = this.tree.fn;
    if (fn < 0) return;
    var model = this.model, v = this.vals, S = model.S, M = model.name.length;
    var callers = new Map(), callees = new Map(), incl = 0, self = 0;
    var inside = new Uint8Array(M);
    for (var m = 1; m < M; m++) {
      var p = model.parent[m];
      inside[m] = inside[p] || model.name[m] === fn ? 1 : 0;
      if (model.name[m] !== fn || !(v.tot[m] > 0)) continue;
      if (!inside[p]) incl += v.tot[m];
      self += v.self[m];
      var pn = p === 0 ? -1 : model.name[p];
      callers.set(pn, (callers.get(pn) || 0) + v.tot[m]);
      var ks = model.kidsOf(m);
      for (var k = 0; k < ks.length; k++) {
        if (v.tot[ks[k]] > 0) callees.set(model.name[ks[k]], (callees.get(model.name[ks[k]]) || 0) + v.tot[ks[k]]);
      }
    }
    var unit = this.metric.unit, self_ = this;
    box.appendChild(el('p', 'relations-head', S[fn] + ': ' + thousands(incl) + ' ' + unit +
        ' inclusive, ' + thousands(self) + ' self'));
    function list(title, map, cls) {
      var d = el('div', cls), table = el('table', 'calltree');
      var h = el('tr');
      h.appendChild(el('th', null, title));
      h.appendChild(el('th', null, unit));
      table.appendChild(h);
      Array.from(map.entries()).sort(function (a, b) { return b[1] - a[1]; }).forEach(function (e) {
        var tr = el('tr');
        var td = el('td', 'fn', e[0] < 0 ? '(root: no caller)' : S[e[0]]);
        if (e[0] >= 0) {
          td.style.cursor = 'pointer';
          td.addEventListener('click', function () { self_.tree.fn = e[0]; self_.renderRelations(); });
        }
        tr.appendChild(td);
        tr.appendChild(el('td', 'n', thousands(e[1])));
        table.appendChild(tr);
      });
      d.appendChild(table);
      return d;
    }
    box.appendChild(list('callers', callers, 'callers'));
    box.appendChild(list('callees', callees, 'callees'));
  };
  View.prototype.selectRow = function (id, toggle) {
    var st = this.tree;
    st.sel = id;
    st.fn = this.td.name[id];
    if (toggle) {
      if (st.open.has(id)) st.open.delete(id); else st.open.add(id);
    }
    this.renderTree();
    var tr = this.treeBox.querySelector('tr[data-id="' + id + '"]');
    if (tr && tr.scrollIntoView) tr.scrollIntoView({ block: 'nearest' });
  };
  View.prototype.treeKey = function (e) {
    var st = this.tree, rows = this.rows || [], i = rows.indexOf(st.sel), t = this.td;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      var j = i < 0 ? 0 : i + (e.key === 'ArrowDown' ? 1 : -1);
      if (j >= 0 && j < rows.length) this.selectRow(rows[j], false);
    } else if (e.key === 'ArrowRight' || e.key === 'Enter') {
      if (i >= 0 && !st.open.has(st.sel)) this.selectRow(st.sel, true);
    } else if (e.key === 'ArrowLeft') {
      if (i < 0) return;
      if (st.open.has(st.sel)) this.selectRow(st.sel, true);
      else if (t.parent[st.sel] > 0) this.selectRow(t.parent[st.sel], false);
    } else {
      return;
    }
    e.preventDefault();
  };

  views = views.map(function (root) { return new View(root); });
  function all(fn) { views.forEach(function (v) { fn(v); }); }
  function renderAll() { all(function (v) { v.render(); }); }

  views.forEach(function (v) {
    v.select.addEventListener('change', function () {
      shared.metric = this.value;
      // The bottom-up tree is another tree per metric: its rows are new.
      all(function (x) {
        if (x.tree.mode === 'bottom') { x.tree.open.clear(); x.tree.sel = -1; x.tree.fn = -1; }
      });
      renderAll();
    });
    // Search as one types (after a pause), and on Enter.
    var typing = 0;
    var search = v.root.querySelector('input.flame-search');
    search.addEventListener('change', function () {
      clearTimeout(typing);
      if (shared.term !== this.value) { shared.term = this.value; renderAll(); }
    });
    search.addEventListener('input', function () {
      var input = this;
      clearTimeout(typing);
      typing = setTimeout(function () {
        if (shared.term !== input.value) { shared.term = input.value; renderAll(); }
      }, 300);
    });
    v.root.querySelector('input.flame-icicle').addEventListener('change', function () {
      shared.icicle = this.checked; renderAll();
    });
    v.root.querySelector('input.flame-lib').addEventListener('change', function () {
      shared.lib = this.checked;
      all(function (x) { x.tree.open.clear(); x.tree.sel = -1; x.zoom = 0; x.focus = -1; });
      renderAll();
    });
    v.root.querySelector('button.flame-reset').addEventListener('click', function () { v.zoomTo(0); });
    v.graph.addEventListener('click', function (e) {
      var id = e.target.getAttribute && e.target.getAttribute('data-id');
      if (id !== null && id !== undefined) v.zoomTo(+id === v.zoom && v.zoom !== 0 ? v.model.parent[+id] : +id);
    });
    v.graph.addEventListener('mouseover', function (e) {
      var id = e.target.getAttribute && e.target.getAttribute('data-id');
      if (id !== null && id !== undefined) v.show(+id);
    });
    v.graph.addEventListener('keydown', function (e) { v.key(e); });
    Array.prototype.forEach.call(v.root.querySelectorAll('input.tree-mode'), function (r) {
      r.addEventListener('change', function () {
        v.tree.mode = this.value; v.tree.open.clear(); v.tree.sel = -1; v.tree.fn = -1;
        v.renderTree();
      });
    });
    v.treeBox.addEventListener('click', function (e) {
      var th = e.target.closest('th');
      if (th && th.getAttribute('data-sort')) {
        var k = th.getAttribute('data-sort');
        if (v.tree.sort === k) v.tree.dir = -v.tree.dir; else { v.tree.sort = k; v.tree.dir = k === 'name' || k === 'where' ? 1 : -1; }
        v.renderTree();
        return;
      }
      var tr = e.target.closest('tr[data-id]');
      if (tr) v.selectRow(+tr.getAttribute('data-id'), true);
    });
    v.treeBox.addEventListener('keydown', function (e) { v.treeKey(e); });
  });
  // Draw a process's views when they are shown (the process selector hides
  // the others) and again when their width changes.
  if (window.ResizeObserver) {
    var ro = new ResizeObserver(function (entries) {
      entries.forEach(function (en) {
        var v = views[+en.target.getAttribute('data-view')];
        if (v.visible() && v.graph.clientWidth !== v.width) v.render();
      });
    });
    views.forEach(function (v, i) { v.graph.setAttribute('data-view', i); ro.observe(v.graph); });
  } else {
    renderAll();
  }
  window.heapsightViews = views;
  if (window.heapsightSeries) window.heapsightSeries.attach(views);
})();
)JS";
}

}  // namespace heapsight::analyzer::output
