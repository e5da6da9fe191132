// analyzer/output/text_util.cc: see text_util.h.
#include "analyzer/output/text_util.h"

#include "absl/strings/str_format.h"
#include "analyzer/symbols/symbol_names.h"

namespace heapsight::analyzer {

std::string Thousands(uint64_t n) {
  std::string digits = std::to_string(n);
  std::string out;
  int lead = static_cast<int>(digits.size() % 3);
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i != 0 && (static_cast<int>(i) - lead) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

std::string Bytes(uint64_t n) {
  std::string s = Thousands(n) + (n == 1 ? " byte" : " bytes");
  if (n >= (uint64_t{1} << 30)) {
    s += absl::StrFormat(" (%.1f GiB)", static_cast<double>(n) / (1 << 30));
  } else if (n >= (uint64_t{1} << 20)) {
    s += absl::StrFormat(" (%.1f MiB)", static_cast<double>(n) / (1 << 20));
  } else if (n >= 10 * 1024) {
    s += absl::StrFormat(" (%.1f KiB)", static_cast<double>(n) / 1024);
  }
  return s;
}

std::string Seconds(uint64_t us) {
  if (us < 1000) return absl::StrFormat("%d us", us);
  if (us < 1000000) return absl::StrFormat("%.3f ms", static_cast<double>(us) / 1e3);
  return absl::StrFormat("%.3f s", static_cast<double>(us) / 1e6);
}

std::string BaseName(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string CompactFrame(const SourceFrame& frame, const SymbolizedLocation& loc) {
  if (frame.function.empty()) return UnknownFrameName(loc);
  if (!frame.file.empty()) {
    return absl::StrFormat("%s (%s:%d)", frame.function, BaseName(frame.file), frame.line);
  }
  if (loc.module != nullptr) return absl::StrFormat("%s (%s)", frame.function, UnknownFrameName(loc));
  return frame.function;
}

}  // namespace heapsight::analyzer
