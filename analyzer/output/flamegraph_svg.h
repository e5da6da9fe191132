// analyzer/output/flamegraph_svg.h: a self-contained, interactive SVG flame
// graph rendered from folded stacks (no flamegraph.pl needed).
//
// Root ("all") at the bottom, callees above their callers, siblings sorted
// by name, widths proportional to value. Every frame has a <title> hover
// text "name (1,234 bytes, 12.34%)"; colors come from a hash of the name,
// so a function has the same color everywhere. An embedded script (no
// external resources) zooms into a clicked frame, resets on clicking the
// root or "Reset Zoom", and highlights frames matching a regex ("Search")
// with the matched share of the total. Every name is XML-escaped and made
// valid UTF-8. The output depends only on the input: byte-identical across
// runs.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_FLAMEGRAPH_SVG_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_FLAMEGRAPH_SVG_H_

#include <string>
#include <string_view>
#include <vector>

#include "analyzer/output/folded_stacks.h"

namespace heapsight::analyzer::output {

struct FlameGraphOptions {
  std::string title = "Flame Graph";
  std::string subtitle;          // e.g. the trace and the metric
  std::string unit = "bytes";    // unit of the values, in hover texts
  int width = 1200;              // pixels
  int frame_height = 16;         // pixels
  double min_frame_width = 0.1;  // frames narrower than this (pixels) are left out
};

// XmlEscape()
//
// `text` as XML character data or attribute value: & < > " ' escaped,
// control characters replaced by spaces, invalid UTF-8 bytes by U+FFFD.
std::string XmlEscape(std::string_view text);

// RenderFlameGraphSvg()
//
// The SVG document for `stacks` (root-first frames). Stacks with a value
// <= 0 are ignored; with nothing left the graph says "No data".
std::string RenderFlameGraphSvg(const std::vector<FoldedStack>& stacks,
                                const FlameGraphOptions& options);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_FLAMEGRAPH_SVG_H_
