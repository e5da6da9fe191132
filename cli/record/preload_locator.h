// cli/record/preload_locator.h: finds libheapsight.so relative to the
// running `heapsight` executable, in the build tree and after `meson install`.
#ifndef HEAPSIGHT_ANALYZER_RECORD_PRELOAD_LOCATOR_H_
#define HEAPSIGHT_ANALYZER_RECORD_PRELOAD_LOCATOR_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace heapsight::record {

// The places looked at, in order, for an executable in `exe_dir`:
//   exe_dir/../preload/libheapsight.so             (build tree: build/cli/heapsight)
//   <prefix>/<libdir>/heapsight/libheapsight.so    (installed; prefix = exe_dir/..,
//   <prefix>/<libdir>/libheapsight.so               libdir as configured in meson)
//   <prefix>/lib/heapsight/libheapsight.so, <prefix>/lib/libheapsight.so,
//   <prefix>/lib64/heapsight/libheapsight.so, <prefix>/lib64/libheapsight.so
std::vector<std::string> PreloadCandidates(const std::string& exe_dir);

// The first candidate that exists, made absolute and canonical, for the
// executable running this process (/proc/self/exe). The error lists every
// place looked at.
absl::StatusOr<std::string> FindPreload();

}  // namespace heapsight::record

#endif  // HEAPSIGHT_ANALYZER_RECORD_PRELOAD_LOCATOR_H_
