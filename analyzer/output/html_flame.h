// analyzer/output/html_flame.h: the HTML page's interactive views of the
// call sites (flame graph and icicle, top-down and bottom-up trees, callers
// and callees), drawn in the browser by html_flame_script.cc from one
// compact table per process embedded as JSON.
//
// Why a table and not pre-drawn graphs: a graph per metric grew with
// (metrics x distinct stacks) and put the python3 page over 5 MB. The
// table holds each distinct frame once, each distinct stack prefix once
// (a trie: one [parent, frame] pair per node) and each metric as sparse
// (node, value) pairs, so the page grows with the distinct stack prefixes,
// never with the events or the number of metrics' graphs.
//
// The JSON (schema "v": 1; docs/html-report.md):
//   {"v":1, "strings":[...], "frames":[name, loc, path, lib, ...],
//    "nodes":"<varints>", "several":"<varints>", "metrics":[{"key",
//    "label","unit","total","v":"<varints>"}, ...]}
// frames: 4 numbers per frame: indices into strings of its display name
// (the function as CompactFrame names it, or "module+0x12"), its location
// "file.c:12" (-1: unknown) and its full path ("/src/file.c:12" or the
// module's path; -1: unknown), and 1 if it is library plumbing
// (IsLibraryFrame: std::allocator, operator new, ...), else 0.
// nodes: the call tree of every stack, outermost frames first, merged by
// function name under the same caller, in depth-first order with siblings
// by name (parents before children): per node frame * 2 if its parent is
// the node just before it, else frame * 2 + 1 and then (node - parent)
// (node + 1: an outermost frame). The node's frame is the first merged
// into it; "several" lists (as distances from the previous, the first
// from -1) the nodes into which frames of other lines were merged.
// metrics: per metric the values of the stacks that have one, on the
// stack's innermost node (-1: a stack without frames), in node order as
// pairs (node - previous node, value), the first node's distance from -1.
// Numbers in strings are varints (AppendVarint): the page of a large
// program is about a third of what JSON numbers would make it.
//
// Every string is valid UTF-8 and written with '<', '>', '&' and U+2028/9
// as \u escapes, so the JSON can sit inside <script type="application/json">
// (no "</script>" or "<!--" can appear) and the page stays well-formed XML.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_HTML_FLAME_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_HTML_FLAME_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "analyzer/model/trace_model.h"
#include "analyzer/output/html_leaks.h"

namespace heapsight::analyzer::output {

// HtmlJsonString()
//
// `text` as a JSON string literal (with its quotes) that is safe inside an
// HTML <script> element and XML: invalid UTF-8 bytes become U+FFFD,
// control characters, '"', '\\', '<', '>', '&', '\'' and U+2028/U+2029 are
// \u escapes.
std::string HtmlJsonString(std::string_view text);

// AppendVarint()
//
// `value` as base-64 digits (A-Z a-z 0-9 - _), 5 bits each, least
// significant first, 32 added to every digit but the last.
void AppendVarint(std::string& out, uint64_t value);

// FlameData()
//
// The table (see the file comment) of `p`'s program sites (runtime sites
// left out, as in every report): bytes and allocations allocated, bytes and
// blocks live at the peak, not freed at exit (or discarded by exec), the
// temporary allocations and bytes (exact traces only), and from `leaks`
// (if known) the bytes of each leak class. A sampled trace's numbers are
// the estimates the site tables show (site_estimate.h).
std::string FlameData(const ProcessProfile& p, const HtmlLeaks& leaks);

// FlameSection()
//
// The section's HTML (controls, the graph's container, the trees) for the
// process whose data element has id `data_id`, and the <script
// type="application/json"> element holding FlameData().
std::string FlameSection(const ProcessProfile& p, const HtmlLeaks& leaks,
                         std::string_view data_id);

// FlameScript(), FlameStyle()
//
// The page's script that draws every FlameSection (no trace string in it),
// and the CSS of the views (html_flame_script.cc).
const char* FlameScript();
const char* FlameStyle();

// SelectionScript()
//
// The heap chart's selection (a moment or a range) and its stacking by call
// site, and the views' metrics of the selection, from the table's
// per-site series (html_selection_script.cc). Must run before FlameScript.
const char* SelectionScript();

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_HTML_FLAME_H_
