// analyzer/output/folded_stacks.cc: see folded_stacks.h.
#include "analyzer/output/folded_stacks.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "analyzer/symbols/symbol_names.h"

namespace heapsight::analyzer::output {

std::string SanitizeFrameName(std::string_view name) {
  if (name.empty()) return "[unknown]";
  std::string out(name);
  for (char& c : out) {
    if (c == ';') {
      c = ':';
    } else if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
      c = ' ';
    }
  }
  return out;
}

std::vector<std::string> FrameNames(const HeapProfile& profile, uint32_t location) {
  if (location >= profile.locations.size()) return {"[invalid]"};
  const ProfileLocation& loc = profile.locations[location];
  std::vector<std::string> names;
  if (loc.frames.empty()) {
    std::string_view path;
    uint64_t offset = loc.address;
    if (loc.mapping >= 0 && static_cast<size_t>(loc.mapping) < profile.mappings.size()) {
      const ProfileMapping& m = profile.mappings[static_cast<size_t>(loc.mapping)];
      path = m.path;
      offset = loc.address - m.start + m.file_offset;
    }
    names.push_back(SanitizeFrameName(UnknownFrameName(path, offset, loc.address)));
    return names;
  }
  names.reserve(loc.frames.size());
  for (const SourceFrame& f : loc.frames) names.push_back(SanitizeFrameName(f.function));
  return names;
}

std::vector<FoldedStack> CollapseProfile(const HeapProfile& profile, SiteMetric metric) {
  // Names per location, computed once.
  std::vector<std::vector<std::string>> names(profile.locations.size());
  std::vector<bool> named(profile.locations.size(), false);
  std::map<std::vector<std::string>, int64_t> merged;
  for (const ProfileSample& s : profile.samples) {
    int64_t value = SiteMetricValue(s.values, metric, profile.sample_period);
    if (value == 0) continue;
    std::vector<std::string> frames;
    // Root first: walk the leaf-first locations backwards, and each
    // location's innermost-first frames backwards too.
    for (auto it = s.locations.rbegin(); it != s.locations.rend(); ++it) {
      const std::vector<std::string>* loc_names;
      std::vector<std::string> invalid;
      if (*it < profile.locations.size()) {
        if (!named[*it]) {
          names[*it] = FrameNames(profile, *it);
          named[*it] = true;
        }
        loc_names = &names[*it];
      } else {
        invalid = FrameNames(profile, *it);
        loc_names = &invalid;
      }
      frames.insert(frames.end(), loc_names->rbegin(), loc_names->rend());
    }
    if (frames.empty()) frames.push_back("[no stack]");
    if (!s.process.frame.empty()) {  // a process family: the process is the root
      frames.insert(frames.begin(), SanitizeFrameName(s.process.frame));
    }
    int64_t& sum = merged[std::move(frames)];
    if (__builtin_add_overflow(sum, value, &sum)) sum = value > 0 ? INT64_MAX : INT64_MIN;
  }
  std::vector<FoldedStack> out;
  out.reserve(merged.size());
  for (auto& [frames, value] : merged) {
    if (value != 0) out.push_back({frames, value});
  }
  return out;
}

std::string FormatFoldedStacks(const std::vector<FoldedStack>& stacks) {
  std::string out;
  for (const FoldedStack& s : stacks) {
    for (size_t i = 0; i < s.frames.size(); ++i) {
      if (i != 0) out.push_back(';');
      out += SanitizeFrameName(s.frames[i]);
    }
    if (s.frames.empty()) out += "[no stack]";
    absl::StrAppend(&out, " ", s.value, "\n");
  }
  return out;
}

}  // namespace heapsight::analyzer::output
