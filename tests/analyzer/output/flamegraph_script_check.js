// tests/analyzer/output/flamegraph_script_check.js: runs the script embedded in a
// heapsight flame graph against a minimal DOM built from the SVG text, then
// clicks frames and searches, and prints what the page would show. Used by
// flamegraph_svg_test (skipped when node is missing).
//
// Usage: node flamegraph_script_check.js GRAPH.svg ACTIONS...
//   click:NAME    click the first frame titled NAME
//   search:REGEX  click "Search" and answer the prompt with REGEX
// After each action prints one line per frame:
//   NAME x=.. width=.. display=.. opacity=.. fill=.. label=..
// and the "matched" text.
'use strict';
const fs = require('fs');
const svgText = fs.readFileSync(process.argv[2], 'utf8');

function unescape(s) {
  return s.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"')
      .replace(/&apos;/g, "'").replace(/&amp;/g, '&');
}

class Element {
  constructor(attrs, text) {
    this.attrs = Object.assign({}, attrs);
    this.textContent = text || '';
    this.style = { display: '', opacity: '' };
    this.handlers = {};
    this.children = {};
  }
  getAttribute(n) { return n in this.attrs ? this.attrs[n] : null; }
  setAttribute(n, v) { this.attrs[n] = String(v); }
  removeAttribute(n) { delete this.attrs[n]; }
  querySelector(sel) { return this.children[sel] || null; }
  addEventListener(type, fn) { this.handlers[type] = fn; }
}

function parseAttrs(s) {
  const out = {};
  for (const m of s.matchAll(/([\w:-]+)="([^"]*)"/g)) out[m[1]] = unescape(m[2]);
  return out;
}

const frames = [];
const re = /<g class="f"([^>]*)><title>([^<]*)<\/title><rect([^>]*)\/><text([^>]*)>([^<]*)<\/text><\/g>/g;
for (const m of svgText.matchAll(re)) {
  const g = new Element(parseAttrs(m[1]));
  g.children['title'] = new Element({}, unescape(m[2]));
  g.children['rect'] = new Element(parseAttrs(m[3]));
  g.children['text'] = new Element(parseAttrs(m[4]), unescape(m[5]));
  frames.push(g);
}
const byId = {};
for (const m of svgText.matchAll(/<text id="(\w+)"([^>]*)>([^<]*)<\/text>/g)) {
  byId[m[1]] = new Element(parseAttrs(m[2]), unescape(m[3]));
}
const svgAttrs = parseAttrs(svgText.match(/<svg([^>]*)>/)[1]);
let promptAnswer = '';
global.document = {
  documentElement: new Element(svgAttrs),
  querySelectorAll: (sel) => (sel === 'g.f' ? frames : []),
  getElementById: (id) => byId[id] || null,
};
global.prompt = () => promptAnswer;
global.alert = (msg) => { console.log('ALERT ' + msg); };

const script = svgText.substring(svgText.indexOf('<![CDATA[') + 9, svgText.indexOf(']]>'));
eval(script);

function name(g) {
  const t = g.querySelector('title').textContent;
  return t.substring(0, t.lastIndexOf(' ('));
}
function dump(label) {
  console.log('== ' + label);
  for (const g of frames) {
    const r = g.querySelector('rect');
    console.log(name(g) + ' x=' + r.getAttribute('x') + ' width=' + r.getAttribute('width') +
                ' display=' + (g.style.display || '-') + ' opacity=' + (g.style.opacity || '-') +
                ' fill=' + r.getAttribute('fill') + ' label=' + g.querySelector('text').textContent);
  }
  console.log('matched=' + byId['matched'].textContent.trim());
}

for (const action of process.argv.slice(3)) {
  const [kind, arg] = [action.substring(0, action.indexOf(':')), action.substring(action.indexOf(':') + 1)];
  if (kind === 'click') {
    const g = frames.find((f) => name(f) === arg);
    if (!g) { console.log('NO FRAME ' + arg); process.exit(1); }
    g.handlers['click']();
  } else if (kind === 'search') {
    promptAnswer = arg;
    byId['search'].handlers['click']();
  } else if (kind === 'unzoom') {
    byId['unzoom'].handlers['click']();
  }
  dump(action);
}
