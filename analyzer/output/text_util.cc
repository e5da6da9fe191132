// analyzer/output/text_util.cc: see text_util.h.
#include "analyzer/output/text_util.h"

#include <iterator>
#include <locale>

#include "analyzer/symbols/symbol_names.h"
#include "format/trace_format.h"
#include "fmt/format.h"

namespace heapsight::analyzer {
namespace {

// Digits grouped by three with ',' whatever the process's locale: fmt's
// "{:L}" takes the grouping from this locale only.
struct CommaGrouping : std::numpunct<char> {
  char do_thousands_sep() const override { return ','; }
  std::string do_grouping() const override { return "\3"; }
};

const std::locale& GroupedLocale() {
  static const std::locale* const kLocale =
      new std::locale(std::locale::classic(), new CommaGrouping);
  return *kLocale;
}

}  // namespace

std::string Thousands(uint64_t n) { return fmt::format(GroupedLocale(), "{:L}", n); }

std::string Bytes(uint64_t n) {
  std::string s = fmt::format("{} {}", Thousands(n), n == 1 ? "byte" : "bytes");
  if (n >= (uint64_t{1} << 30)) {
    fmt::format_to(std::back_inserter(s), " ({:.1f} GiB)", static_cast<double>(n) / (1 << 30));
  } else if (n >= (uint64_t{1} << 20)) {
    fmt::format_to(std::back_inserter(s), " ({:.1f} MiB)", static_cast<double>(n) / (1 << 20));
  } else if (n >= 10 * 1024) {
    fmt::format_to(std::back_inserter(s), " ({:.1f} KiB)", static_cast<double>(n) / 1024);
  }
  return s;
}

ClockResolution ResolutionOf(uint32_t header_flags) {
  return (header_flags & format::kFileFlagCoarseClock) != 0 ? ClockResolution::kMilliseconds
                                                            : ClockResolution::kMicroseconds;
}

std::string Seconds(uint64_t us, ClockResolution resolution) {
  if (resolution == ClockResolution::kMilliseconds) {
    uint64_t ms = (us + 500) / 1000;
    if (ms < 1000) return fmt::format("{} ms", ms);
    return fmt::format("{:.3f} s", static_cast<double>(ms) / 1e3);
  }
  if (us < 1000) return fmt::format("{} us", us);
  if (us < 1000000) return fmt::format("{:.3f} ms", static_cast<double>(us) / 1e3);
  return fmt::format("{:.3f} s", static_cast<double>(us) / 1e6);
}

std::string CompactFrame(const SourceFrame& frame, const SymbolizedLocation& loc) {
  if (frame.function.empty()) return UnknownFrameName(loc);
  if (!frame.file.empty()) {
    return fmt::format("{} ({}:{})", frame.function, BaseName(frame.file), frame.line);
  }
  if (loc.module != nullptr) return fmt::format("{} ({})", frame.function, UnknownFrameName(loc));
  return frame.function;
}

}  // namespace heapsight::analyzer
