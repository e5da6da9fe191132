// preload/gen_options_doc.cc: prints docs/options.md from format/options.inc.
//
// Run `build/preload/gen_options_doc > docs/options.md` after changing the
// table; tests/preload/options_doc_test.cc fails when the two differ.
#include <cstdio>
#include <type_traits>

namespace {

const char* TypeName(const char* type) { return type; }

// Defaults as text: strings as written, numbers in decimal.
template <typename T>
const char* DefaultText(T v, char* buf) {
  if constexpr (std::is_integral_v<T>) {
    std::snprintf(buf, 32, "%lld", static_cast<long long>(v));
    return buf;
  } else {
    return *v != '\0' ? v : "(empty)";
  }
}

}  // namespace

int main() {
  std::printf("# heapsight options\n\n");
  std::printf(
      "Generated from `format/options.inc` by `preload/gen_options_doc`; do not edit.\n"
      "Each option is an environment variable read by `libheapsight.so` at start-up.\n"
      "`heapsight record` sets them from its own flags.\n\n");
  std::printf("| Variable | Type | Default | Description |\n");
  std::printf("|---|---|---|---|\n");
  char buf[32];
#define X(type, name, def, desc)                                               \
  std::printf("| `HEAPSIGHT_%s` | %s | `%s` | %s |\n", #name, TypeName(#type), \
              DefaultText(def, buf), desc);
#include "format/options.inc"
#undef X
  return 0;
}
