// analyzer/output/profile_family.h: one HeapProfile for several processes
// (a process family: everything one `heapsight record` wrote, found with
// analyzer/model/trace_family.h), for pprof, collapse and flamegraph.
//
// Each process keeps its own mappings, locations and samples (two processes
// can map one library at different addresses); every sample is tagged with
// its process (SampleProcess): pprof writes it as the labels `pid` and
// `executable`, folded stacks and flame graphs as a root frame per process.
// The values are the processes' own, never combined: every family total is
// the sum of its processes' totals (a block a fork child inherited is live
// in both processes, and counted once in each, as each holds a copy).
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_PROFILE_FAMILY_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_PROFILE_FAMILY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "analyzer/output/heap_profile.h"

namespace heapsight::analyzer::output {

struct FamilyMember {
  HeapProfile profile;
  int64_t pid = 0;
  std::string executable;  // "" = unknown (then the trace path names the frame)
  std::string trace_path;
};

// ProcessFrameName()
//
// The root frame of a process: "<executable's file name> (pid <pid>)", e.g.
// "ls (pid 4242)"; "<trace file name> (pid N)" without an executable.
std::string ProcessFrameName(const FamilyMember& member);

// MergeFamilyProfiles()
//
// One profile of every member, in the given order (parents first is
// FamilyOrder's). Each member's samples get SampleProcess{pid, executable,
// ProcessFrameName()}; a frame name a member before it already has (an image
// that exec'd itself: same pid, same name) gets " #2", " #3", ...
// mappings[0] is the first member's main executable;
// time_nanos the earliest start, duration_nanos up to the latest end.
// Fails with InvalidArgument when the members were sampled with different
// periods (their estimates would not add up) or a member's own indices are
// out of range; an empty list is InvalidArgument too.
absl::StatusOr<HeapProfile> MergeFamilyProfiles(std::vector<FamilyMember> members);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_PROFILE_FAMILY_H_
