// analyzer/output/folded_stacks.h: collapsed ("folded") stacks, the input
// format of flamegraph.pl, inferno and speedscope, and of our own
// flamegraph_svg.h.
//
// One line per unique stack: frames root first joined by ';', one space,
// the integer value:
//   main;Parser::parse;std::vector<Token, std::allocator<Token> >::reserve 4096
// Frame names never contain ';', '\n' or '\r' (SanitizeFrameName()), so
// every line parses. Lines are sorted by stack, identical stacks merged and
// zero values left out: the output is deterministic.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_FOLDED_STACKS_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_FOLDED_STACKS_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "analyzer/output/heap_profile.h"
#include "analyzer/output/site_metric.h"

namespace heapsight::analyzer::output {

struct FoldedStack {
  std::vector<std::string> frames;  // root first, leaf last
  int64_t value = 0;
};

// SanitizeFrameName()
//
// `name` made safe for a folded line: ';' becomes ':', line breaks and other
// control characters become ' '; an empty name becomes "[unknown]".
std::string SanitizeFrameName(std::string_view name);

// FrameNames()
//
// The display names of one profile location, innermost inlined frame first
// (like ProfileLocation::frames), sanitized. An unsymbolized location gives
// one "module+0xoffset" name.
std::vector<std::string> FrameNames(const HeapProfile& profile, uint32_t location);

// CollapseProfile()
//
// Folds every sample of `profile` by `metric` (scaled like pprof's values for
// a sampled trace, see SiteMetricValue()): inlined frames become frames
// of their own; a sample of a multi-process profile (SampleProcess) gets its
// process as the root frame; stacks are merged, sorted and zero values
// dropped. Location
// indices out of range show as "[invalid]" (never a crash).
std::vector<FoldedStack> CollapseProfile(const HeapProfile& profile, SiteMetric metric);

// FormatFoldedStacks()
//
// The text form, one "a;b;c value\n" line per stack, in the given order.
std::string FormatFoldedStacks(const std::vector<FoldedStack>& stacks);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_FOLDED_STACKS_H_
