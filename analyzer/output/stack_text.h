// analyzer/output/stack_text.h: a recorded stack as text, the program's own
// frames first. Every text and HTML output that shows a call site uses it.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_STACK_TEXT_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_STACK_TEXT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "analyzer/model/trace_model.h"
#include "analyzer/symbols/symbolizer.h"

namespace heapsight::analyzer {

// How many of a call site's own frames every text and HTML output shows
// by default (report, growth, diff, html: `--frames`; `--frames=all` or 0
// shows every frame). A leak's stack (`leaks`) is listed whole, as
// LeakSanitizer lists it.
inline constexpr size_t kDefaultSiteFrames = 6;

// A stack's frames as CompactFrame text, innermost first, and the index of
// the first that is not library plumbing (IsLibraryFrame; 0 if none is).
struct StackText {
  std::vector<std::string> frames;
  size_t first_own = 0;
  StackCut cut;  // the preload recorded only the innermost frames
};

// "<indent>... N more frames not recorded" ("... more frames not recorded"
// when N is unknown), for a cut stack.
std::string StackCutText(const StackCut& cut, const std::string& indent);
StackText DescribeFrames(const ProcessProfile& profile, uint64_t stack);

// "alloc_block (direct_leak.c:12) <- leak_one (direct_leak.c:20) <- ...",
// starting at the program's own frame: the standard library's and the
// allocator's frames above it (IsLibraryFrame) are counted, "(below 6
// library frames)", not listed. A cut stack ends "<- ... more frames not
// recorded".
std::string DescribeStack(const ProcessProfile& profile, uint64_t stack, size_t max_frames);

// The addresses the profiles' symbolizers have symbolized so far, and why
// some got no function name (Symbolizer::Stats; a symbolizer two profiles
// share counts once).
SymbolStats SymbolStatsOf(const std::vector<const ProcessProfile*>& profiles);

// "5 of 7 addresses unsymbolized (3 in no recorded module, 2 module file
// unreadable)": the reasons that occur, in SymbolStatus order; "" when every
// address got a name. `report` and `leaks` print it once, as the leaks
// JSON's "symbols" object counts it.
std::string UnsymbolizedText(const SymbolStats& stats);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_STACK_TEXT_H_
