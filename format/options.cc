// format/options.cc: HEAPSIGHT_* environment parsing (see options.h).
//
// Constraints: no allocation, no stdio, no locale-dependent calls; safe to
// run from the preload's constructor before the real malloc is known.
#include "format/options.h"

#include <cstring>
#include <initializer_list>

namespace heapsight::format {
namespace {

void SetError(char* error, size_t size, const char* a, const char* b, const char* c) {
  if (error == nullptr || size == 0 || error[0] != '\0') return;  // keep the first
  size_t n = 0;
  for (const char* s : {a, b, c}) {
    for (; s != nullptr && *s != '\0' && n + 1 < size; ++s) error[n++] = *s;
  }
  error[n] = '\0';
}

bool ParseInt(const char* s, int64_t* out) {
  bool neg = false;
  if (*s == '-' || *s == '+') neg = *s++ == '-';
  if (*s == '\0') return false;
  int64_t v = 0;
  for (; *s != '\0'; ++s) {
    if (*s < '0' || *s > '9' || v > (int64_t{1} << 40)) return false;
    v = v * 10 + (*s - '0');
  }
  *out = neg ? -v : v;
  return true;
}

bool ParseBool(const char* s, bool* out) {
  if (std::strcmp(s, "1") == 0 || std::strcmp(s, "yes") == 0 || std::strcmp(s, "true") == 0) {
    *out = true;
    return true;
  }
  if (std::strcmp(s, "0") == 0 || std::strcmp(s, "no") == 0 || std::strcmp(s, "false") == 0 ||
      *s == '\0') {
    *out = false;
    return true;
  }
  return false;
}

bool ParseValue(const char* s, OptString* out) {
  *out = s;
  return true;
}
bool ParseValue(const char* s, OptInt* out) { return ParseInt(s, out); }
bool ParseValue(const char* s, OptBool* out) { return ParseBool(s, out); }

// Range checks per option; true when `v` is acceptable.
bool Valid(const char* name, OptString v) {
  if (std::strcmp(name, "UNWIND") == 0) {
    return std::strcmp(v, "libunwind") == 0 || std::strcmp(v, "fp") == 0;
  }
  if (std::strcmp(name, "OUTPUT") == 0) return *v != '\0';
  if (std::strcmp(name, "START") == 0) {
    return std::strcmp(v, "active") == 0 || std::strcmp(v, "paused") == 0;
  }
  if (std::strcmp(name, "CLOCK") == 0) {
    return std::strcmp(v, "auto") == 0 || std::strcmp(v, "coarse") == 0 ||
           std::strcmp(v, "precise") == 0;
  }
  if (std::strcmp(name, "PAIRING") == 0) {
    return std::strcmp(v, "table") == 0 || std::strcmp(v, "address") == 0;
  }
  if (std::strcmp(name, "ON_BAD_FREE") == 0) {
    return std::strcmp(v, "skip") == 0 || std::strcmp(v, "abort") == 0 ||
           std::strcmp(v, "pass") == 0;
  }
  return true;
}
bool Valid(const char* name, OptInt v) {
  if (std::strcmp(name, "MAX_DEPTH") == 0) return v >= 1 && v <= kMaxStackDepth;
  if (std::strcmp(name, "ZSTD_LEVEL") == 0) return v >= 0 && v <= 19;
  if (std::strcmp(name, "RSS_INTERVAL_MS") == 0) return v >= 0 && v <= 3600 * 1000;
  if (std::strcmp(name, "FLUSH_MS") == 0) return v >= 0 && v <= 3600 * 1000;
  if (std::strcmp(name, "SAMPLE_BYTES") == 0) return v >= 0 && v <= (int64_t{1} << 40);
  if (std::strcmp(name, "LEAK_SCAN_SIGNAL") == 0) return v >= 0 && v <= 64;
  return true;
}
bool Valid(const char*, OptBool) { return true; }

}  // namespace

UnwindMode ParseUnwindMode(const char* value) {
  return value != nullptr && std::strcmp(value, "fp") == 0 ? UnwindMode::kFramePointer
                                                            : UnwindMode::kLibunwind;
}

bool ParseOptions(EnvLookup lookup, void* ctx, Options* out, char* error, size_t error_size) {
  if (error != nullptr && error_size > 0) error[0] = '\0';
  *out = Options{};
  bool ok = true;
#define X(type, name, def, desc)                                                  \
  if (const char* s = lookup("HEAPSIGHT_" #name, ctx); s != nullptr) {            \
    Opt##type v{};                                                                \
    if (ParseValue(s, &v) && Valid(#name, v)) {                                   \
      out->name = v;                                                              \
    } else {                                                                      \
      ok = false;                                                                 \
      SetError(error, error_size, "invalid HEAPSIGHT_" #name "=", s, "; using the default"); \
    }                                                                             \
  }
#include "format/options.inc"
#undef X
  return ok;
}

}  // namespace heapsight::format
