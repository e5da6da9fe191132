// preload/options.h: the preload's view of the HEAPSIGHT_* options, parsed
// by format/options.h (shared with `heapsight record`, which checks
// --option values with the same parser).
//
// Constraints: as format/options.h: parsing never allocates, never formats
// text, and runs once at init.
#ifndef HEAPSIGHT_PRELOAD_OPTIONS_H_
#define HEAPSIGHT_PRELOAD_OPTIONS_H_

#include "format/options.h"

namespace heapsight::preload {

using format::EnvLookup;
using format::kMaxStackDepth;
using format::Options;
using format::ParseOptions;
using format::ParseUnwindMode;
using format::UnwindMode;

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_OPTIONS_H_
