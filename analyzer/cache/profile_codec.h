// analyzer/cache/profile_codec.h: a ProcessProfile (analyzer/model/
// trace_model.h) as bytes and back, for the analysis cache.
//
// Everything a command reads from a profile is encoded except the
// Symbolizer, which DecodeProfile rebuilds over the decoded modules, and
// trace_path, which the caller sets (the same file may be named by another
// path). Decoding checks every length, count and enum against the data, so
// garbage gives an error, never a crash or an unbounded allocation.
#ifndef HEAPSIGHT_ANALYZER_CACHE_PROFILE_CODEC_H_
#define HEAPSIGHT_ANALYZER_CACHE_PROFILE_CODEC_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "analyzer/model/trace_model.h"

namespace heapsight::analyzer::cache {

// Appends the encoding of `profile` to `out`.
void EncodeProfile(const ProcessProfile& profile, std::string* out);

// Decodes what EncodeProfile wrote (the whole of `data`); the result has a
// fresh Symbolizer over its modules and an empty trace_path.
absl::StatusOr<ProcessProfile> DecodeProfile(std::string_view data);

// Changes whenever the encoding or the structs it covers change (the sizes
// of the encoded structs are part of it, so adding a field to one of them
// without updating the codec invalidates every cache rather than dropping
// the field silently).
std::string ProfileSchemaTag();

}  // namespace heapsight::analyzer::cache

#endif  // HEAPSIGHT_ANALYZER_CACHE_PROFILE_CODEC_H_
