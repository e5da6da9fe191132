// analyzer/output/profile_family.cc: see profile_family.h.
#include "analyzer/output/profile_family.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"

namespace heapsight::analyzer::output {
namespace {

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

int64_t SaturatingAdd(int64_t a, int64_t b) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r)) return std::numeric_limits<int64_t>::max();
  return r;
}

}  // namespace

std::string ProcessFrameName(const FamilyMember& member) {
  std::string name = BaseName(member.executable.empty() ? member.trace_path : member.executable);
  if (name.empty()) name = "[unknown program]";
  return absl::StrCat(name, " (pid ", member.pid, ")");
}

absl::StatusOr<HeapProfile> MergeFamilyProfiles(std::vector<FamilyMember> members) {
  if (members.empty()) return absl::InvalidArgumentError("no traces to merge");
  HeapProfile out;
  const HeapProfile& first = members.front().profile;
  out.executable = first.executable;
  out.sample_period = first.sample_period;
  if (!first.moment.empty()) out.moment = absl::StrCat(first.moment, " of each process");
  int64_t begin = std::numeric_limits<int64_t>::max();
  int64_t end = 0;
  absl::flat_hash_map<std::string, int> frames_seen;  // frame name -> members so named
  for (FamilyMember& m : members) {
    HeapProfile& p = m.profile;
    const int64_t period = p.sample_period > 1 ? p.sample_period : 1;
    const int64_t first_period = out.sample_period > 1 ? out.sample_period : 1;
    if (period != first_period) {
      return absl::InvalidArgumentError(absl::StrCat(
          m.trace_path, ": sampled every ", period, " bytes, but ", members.front().trace_path,
          " every ", first_period, " (1 = exact): such traces cannot be merged into one profile"));
    }
    if (p.time_nanos > 0) {
      begin = std::min(begin, p.time_nanos);
      end = std::max(end, SaturatingAdd(p.time_nanos, p.duration_nanos));
    }
    const int32_t mapping_base = static_cast<int32_t>(out.mappings.size());
    const uint32_t location_base = static_cast<uint32_t>(out.locations.size());
    for (ProfileLocation& loc : p.locations) {
      if (loc.mapping >= static_cast<int32_t>(p.mappings.size())) {
        return absl::InvalidArgumentError(
            absl::StrCat(m.trace_path, ": a location names mapping ", loc.mapping));
      }
      if (loc.mapping >= 0) loc.mapping += mapping_base;
      out.locations.push_back(std::move(loc));
    }
    for (ProfileMapping& mapping : p.mappings) out.mappings.push_back(std::move(mapping));
    SampleProcess process;
    process.pid = m.pid;
    process.executable = m.executable;
    process.frame = ProcessFrameName(m);
    // An image that exec'd itself has the pid and the name of the image
    // before it: number the repeats, so no two processes share a frame.
    if (int n = ++frames_seen[process.frame]; n > 1) absl::StrAppend(&process.frame, " #", n);
    for (ProfileSample& s : p.samples) {
      for (uint32_t& index : s.locations) {
        if (index >= p.locations.size()) {
          return absl::InvalidArgumentError(
              absl::StrCat(m.trace_path, ": a sample names location ", index));
        }
        index += location_base;
      }
      s.process = process;
      out.samples.push_back(std::move(s));
    }
    for (std::string& c : p.comments) {
      out.comments.push_back(absl::StrCat(process.frame, ": ", c));
    }
  }
  if (begin != std::numeric_limits<int64_t>::max()) {
    out.time_nanos = begin;
    out.duration_nanos = end - begin;
  }
  out.comments.insert(out.comments.begin(),
                      absl::StrCat("a process family of ", members.size(),
                                   " processes; the labels pid and executable name each "
                                   "sample's process"));
  return out;
}

}  // namespace heapsight::analyzer::output
