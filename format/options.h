// format/options.h: the HEAPSIGHT_* options (format/options.inc) parsed and
// range-checked. Part of the writer<->reader contract: the preload parses
// its environment with it, and `heapsight record` judges --option values
// with the very same code.
//
// Constraints: parsing never allocates and never formats text; it reads the
// environment through a caller-supplied lookup (getenv in the preload, a map
// in tests). Called once at init, before any thread of ours exists.
#ifndef HEAPSIGHT_FORMAT_OPTIONS_H_
#define HEAPSIGHT_FORMAT_OPTIONS_H_

#include <cstddef>
#include <cstdint>

namespace heapsight::format {

using OptString = const char*;
using OptInt = int64_t;
using OptBool = bool;

struct Options {
#define X(type, name, def, desc) Opt##type name = def;
#include "format/options.inc"
#undef X
};

enum class UnwindMode : uint8_t { kLibunwind, kFramePointer };

// Returns the value of environment variable `name` or nullptr.
using EnvLookup = const char* (*)(const char* name, void* ctx);

// Fills `out` from HEAPSIGHT_* variables. Invalid values keep the default;
// the first problem is described in `error` (NUL-terminated, may be empty).
// Returns false if any value was invalid.
bool ParseOptions(EnvLookup lookup, void* ctx, Options* out, char* error, size_t error_size);

// Range checks applied by ParseOptions.
inline constexpr int64_t kMaxStackDepth = 256;

UnwindMode ParseUnwindMode(const char* value);

}  // namespace heapsight::format

#endif  // HEAPSIGHT_FORMAT_OPTIONS_H_
