// analyzer/model/trace_family.h: the traces of one process family (what one
// `heapsight record` wrote: the program, its fork children and the images
// they exec'd), found from any one of them.
//
// Every trace names its parent's trace in its kProcess record (a fork
// child: the parent's trace; an exec'd image: the trace of the image before
// the exec). FindTraceFamily reads that record from every *.hst file in the
// seed's directory and follows the links both ways, so a family is found
// from its root, a child or an exec'd image alike. Reading a trace's
// identity decompresses only the first chunk of each thread (the kProcess
// record is the first record of the thread that started tracing), found
// from the block headers, so a directory of large traces is scanned
// quickly. Traces are untrusted: unreadable files are skipped, links that
// form a cycle are cut.
#ifndef HEAPSIGHT_ANALYZER_MODEL_TRACE_FAMILY_H_
#define HEAPSIGHT_ANALYZER_MODEL_TRACE_FAMILY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace heapsight::analyzer {

struct TraceIdentity {
  std::string path;
  bool has_process = false;   // a kProcess record was found
  uint64_t pid = 0;           // from the file header
  uint64_t parent_pid = 0;
  std::string parent_trace;   // "" for a family's root
};

// The identity of one trace. Errors (not a trace, unreadable) name the file.
absl::StatusOr<TraceIdentity> ReadTraceIdentity(const std::string& path);

// The family of `seed`: every *.hst file in its directory linked to it by
// parent links, directly or not, `seed` included. Parents come before their
// children, siblings in path order. Paths are spelled like `seed` (the same
// directory prefix). Errors only if `seed` itself cannot be read.
absl::StatusOr<std::vector<std::string>> FindTraceFamily(const std::string& seed);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_MODEL_TRACE_FAMILY_H_
