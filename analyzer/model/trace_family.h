// analyzer/model/trace_family.h: process families. Everything one
// `heapsight record` (or one preloaded program) wrote forms a family: every
// fork child and every exec'd image writes a trace of its own whose kProcess
// record names its parent's trace (parent_trace). This file finds a family's
// traces from one of them, expands trace arguments (globs, whole families)
// for the commands that take several traces, and orders them parents first.
//
// Only a trace's header and its kProcess record are read here
// (ReadTraceIdentity), never its events: finding a family costs a few blocks
// per trace in the directory. Traces are untrusted input: a file that is not
// a trace, or has no kProcess record, is skipped when a directory is
// searched, and an error when it was named.
#ifndef HEAPSIGHT_ANALYZER_MODEL_TRACE_FAMILY_H_
#define HEAPSIGHT_ANALYZER_MODEL_TRACE_FAMILY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace heapsight::analyzer {

// Who wrote a trace: its header and its kProcess record.
struct TraceIdentity {
  std::string path;          // as given
  std::string canonical;     // realpath of `path` ("" if it has none)
  uint64_t pid = 0;
  uint64_t ppid = 0;
  uint64_t start_realtime_ns = 0;
  uint32_t flags = 0;        // FileHeader::flags (fork child, exec'd, sampled)
  std::string exe;           // "" when the trace has no kProcess record
  std::string parent_trace;  // as recorded: "" unless a fork child or exec'd image
  bool has_process = false;  // a kProcess record was found
};

// ReadTraceIdentity()
//
// Reads `path`'s header and the first kProcess record (within the first
// kMaxIdentityBlocks blocks). Errors name the file (not a trace, corrupt).
inline constexpr int kMaxIdentityBlocks = 256;
absl::StatusOr<TraceIdentity> ReadTraceIdentity(const std::string& path);

// FindTraceFamily()
//
// The traces of `trace`'s family: `trace` itself and every trace in its
// directory linked to it through parent_trace, in either direction and any
// number of steps (parents, children, siblings). A parent_trace matches a
// file by its exact path, its realpath, or (relative paths, moved
// directories) by its file name in `trace`'s directory. A trace without a
// parent_trace links to the trace of its parent pid that started before it
// (the latest one): an exec'd image whose forked parent wrote no trace
// names no parent trace. Ordered by FamilyOrder(). At most kMaxFamilyScan
// directory entries are looked at.
inline constexpr size_t kMaxFamilyScan = 20000;
absl::StatusOr<std::vector<TraceIdentity>> FindTraceFamily(const std::string& trace);

// FamilyOrder()
//
// Sorts traces parents first: by start time (a child starts after its
// parent, an exec'd image after the image that exec'd), then by pid and
// path, so the order is deterministic.
void FamilyOrder(std::vector<TraceIdentity>* traces);

// TraceDirectory(), TraceFileName(), IsRegularFile()
//
// Path helpers shared by the family search and the fork-inheritance lookup:
// the directory part of `path` ("." without a slash, "/" for a file in the
// root), its last component, and whether it names a regular file (stat(2),
// symlinks followed).
std::string TraceDirectory(const std::string& path);
std::string TraceFileName(const std::string& path);
bool IsRegularFile(const std::string& path);

// ExpandTraceArguments()
//
// The traces a command line names, each once (same realpath = same trace):
//  - an argument that names an existing file is that file;
//  - otherwise an argument with glob characters (*?[) is expanded with
//    glob(3); a pattern that matches nothing is an error;
//  - with `whole_family`, each trace brings its whole family
//    (FindTraceFamily), and the result is in FamilyOrder();
//  - without, the order is the command line's.
// Errors name the argument (missing file, not a trace).
absl::StatusOr<std::vector<std::string>> ExpandTraceArguments(
    const std::vector<std::string>& args, bool whole_family);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_TRACE_FAMILY_H_
