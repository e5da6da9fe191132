// analyzer/report/site_json.h: the one JSON shape of a stack frame and of a
// call site, shared by every JSON output (leaks, report, growth, diff).
// The schema: docs/heapsight-json.schema.json ($defs "frame" and
// "call_site"), described in docs/leak-json-schema.md.
//
// A frame: {"address", "module", "offset", "function", "file", "line",
// "inlined"}; "" / 0 where unknown (an unsymbolized frame has its module
// and offset, what the text shows as "python3.11+0x5a7185"). Inlined
// frames are expanded, leaf first, and share their location's address.
// A call site: {"api", "frames", "first_own"} and, for a stack the preload
// cut at its depth cap, "frames_not_recorded" (a count, or "unknown").
#ifndef HEAPSIGHT_ANALYZER_REPORT_SITE_JSON_H_
#define HEAPSIGHT_ANALYZER_REPORT_SITE_JSON_H_

#include <cstdint>
#include <string>
#include <vector>

#include "analyzer/model/trace_model.h"
#include "analyzer/symbols/symbolizer.h"
#include "format/trace_format.h"
#include "nlohmann/json.hpp"

namespace heapsight::analyzer {

// One source frame of a symbolized stack.
struct SiteFrame {
  uint64_t address = 0;
  std::string function;  // demangled, "" if unknown
  std::string file;      // "" if unknown
  int line = 0;
  std::string module;    // module path, "" if unknown
  uint64_t offset = 0;   // address - module load address
  bool inlined = false;
};

// A symbolized stack's frames, inlined frames expanded, leaf first.
std::vector<SiteFrame> ToSiteFrames(const std::vector<const SymbolizedLocation*>& stack);
// Symbolizes `stack` of `profile`.
std::vector<SiteFrame> SiteFramesOf(const ProcessProfile& profile, uint64_t stack);

nlohmann::json FrameJson(const SiteFrame& frame);
nlohmann::json FramesJson(const std::vector<SiteFrame>& frames);

// {"api", "frames", "first_own"[, "frames_not_recorded"]} of a site: its
// frames (every one), the index of the first that is not library plumbing
// (IsLibraryFrame; 0 if none is), the cut of its stack.
nlohmann::json CallSiteJson(format::Api api, const std::vector<SiteFrame>& frames,
                            size_t first_own, const StackCut& cut);
// The same for `stack` of `profile`.
nlohmann::json CallSiteJson(const ProcessProfile& profile, uint64_t stack, format::Api api);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_REPORT_SITE_JSON_H_
