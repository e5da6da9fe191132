// analyzer/output/pprof_writer.h: HeapProfile -> pprof profile.proto.
//
// The profile follows Go's heap profile convention so
// `go tool pprof` reads it as it reads a Go heap profile:
//   sample types  alloc_objects/count, alloc_space/bytes,
//                 inuse_objects/count, inuse_space/bytes (default inuse_space),
//                 then, for exact traces only, temporary_objects/count and
//                 temporary_space/bytes (trace_model.h's temporaries; a
//                 sampled trace cannot tell them, and a comment says so)
//   period type   space/bytes, period 1 for an exact trace, else the sampling
//                 period with every value pair scaled by ScaleHeapSample()
//   labels        `bytes` = block size (alloc_bytes / alloc_count of the raw
//                 numbers, num_unit "bytes"), `api` = allocation function;
//                 in a multi-process profile (profile_family.h) also `pid`
//                 (numeric) and `executable` (string)
// Functions, locations and strings are deduplicated; samples with the same
// stack and labels are merged (values summed); samples whose values are
// all zero are dropped. Location ids list the leaf first. mapping[0] is the
// main executable; mappings carry build ids and the has_* flags, so pprof
// never tries to symbolize again.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_PPROF_WRITER_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_PPROF_WRITER_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "analyzer/output/heap_profile.h"
#include "profile.pb.h"

namespace heapsight::analyzer::output {

// Regex set as Profile.drop_frames: allocator entry points, in case one ever
// reaches a stack (the analysis strips them already).
inline constexpr std::string_view kAllocatorFramesRegex =
    "malloc|calloc|realloc|reallocarray|free|memalign|posix_memalign|aligned_alloc|valloc|"
    "pvalloc|operator new.*|operator delete.*";

// BuildPprofProfile()
//
// Converts `profile`. Fails with InvalidArgument if a sample names a
// location, or a location a mapping, that does not exist.
absl::StatusOr<perftools::profiles::Profile> BuildPprofProfile(const HeapProfile& profile);

// GzipCompress()
//
// `data` as a gzip stream (RFC 1952, mtime 0: deterministic output).
absl::StatusOr<std::string> GzipCompress(std::string_view data);

// EncodePprof()
//
// `profile` serialized and gzipped: the bytes of a .pb.gz file.
absl::StatusOr<std::string> EncodePprof(const perftools::profiles::Profile& profile);

// WritePprofFile()
//
// Serializes `profile`, gzips it and writes it to `path`. Errors name the
// path ("out.pb.gz: cannot write: No such file or directory").
absl::Status WritePprofFile(const perftools::profiles::Profile& profile, const std::string& path);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_PPROF_WRITER_H_
