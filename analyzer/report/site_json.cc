// analyzer/report/site_json.cc: see site_json.h.
#include "analyzer/report/site_json.h"

namespace heapsight::analyzer {

std::vector<SiteFrame> ToSiteFrames(const std::vector<const SymbolizedLocation*>& stack) {
  std::vector<SiteFrame> frames;
  for (const SymbolizedLocation* loc : stack) {
    for (const SourceFrame& f : loc->frames) {
      SiteFrame frame;
      frame.address = loc->address;
      frame.function = f.function;
      frame.file = f.file;
      frame.line = f.line;
      frame.module = loc->module != nullptr ? loc->module->path : "";
      frame.offset = loc->module_offset;
      frame.inlined = f.inlined;
      frames.push_back(std::move(frame));
    }
  }
  return frames;
}

std::vector<SiteFrame> SiteFramesOf(const ProcessProfile& profile, uint64_t stack) {
  if (stack == 0 || profile.symbolizer == nullptr) return {};
  return ToSiteFrames(profile.symbolizer->SymbolizeStack(profile.StackIps(stack)));
}

nlohmann::json FrameJson(const SiteFrame& f) {
  return {{"address", f.address}, {"function", f.function}, {"file", f.file},
          {"line", f.line},       {"module", f.module},     {"offset", f.offset},
          {"inlined", f.inlined}};
}

nlohmann::json FramesJson(const std::vector<SiteFrame>& frames) {
  nlohmann::json out = nlohmann::json::array();
  for (const SiteFrame& f : frames) out.push_back(FrameJson(f));
  return out;
}

nlohmann::json CallSiteJson(format::Api api, const std::vector<SiteFrame>& frames,
                            size_t first_own, const StackCut& cut) {
  const char* name = format::ApiName(api);
  nlohmann::json out = {{"api", name != nullptr ? name : "?"},
                        {"frames", FramesJson(frames)},
                        {"first_own", first_own}};
  if (cut.cut) {  // the recorder cut the stack: the callers are missing
    out["frames_not_recorded"] =
        cut.missing == 0 ? nlohmann::json("unknown") : nlohmann::json(cut.missing);
  }
  return out;
}

nlohmann::json CallSiteJson(const ProcessProfile& profile, uint64_t stack, format::Api api) {
  std::vector<SiteFrame> frames;
  size_t first_own = SIZE_MAX;
  if (stack != 0 && profile.symbolizer != nullptr) {
    for (const SymbolizedLocation* loc :
         profile.symbolizer->SymbolizeStack(profile.StackIps(stack))) {
      for (const SourceFrame& f : loc->frames) {
        if (first_own == SIZE_MAX && !IsLibraryFrame(f, *loc)) first_own = frames.size();
      }
      std::vector<SiteFrame> more = ToSiteFrames({loc});
      frames.insert(frames.end(), more.begin(), more.end());
    }
  }
  return CallSiteJson(api, frames, first_own == SIZE_MAX ? 0 : first_own,
                      profile.StackCutOf(stack));
}

}  // namespace heapsight::analyzer
