// analyzer/symbols/runtime_filter.cc: see runtime_filter.h for the rules.
#include "analyzer/symbols/runtime_filter.h"

#include <cstring>
#include <string_view>

#include "absl/strings/match.h"
#include "analyzer/symbols/symbol_names.h"
#include "analyzer/symbols/symbolizer.h"

namespace heapsight::analyzer {
namespace {

bool IsLdSo(const Module* m) { return m != nullptr && IsDynamicLoader(m->path); }

// The names rules 1 and 2 look for, spelled once: their tests below and
// IsPlainNestedName's search of a mangled name use the same strings.
constexpr char kLoaderPrefix[] = "_dl_";
constexpr char kStdioBufferFunction[] = "_IO_file_doallocate";

// The rules' tests of a function name, each written once.
// Rule 1: ld.so's internals (the full name).
bool IsLoaderName(std::string_view name) { return name.starts_with(kLoaderPrefix); }
// Rule 2: stdio's buffer (the bare name, glibc's internal alias included).
bool IsStdioBufferName(std::string_view bare) {
  if (bare.starts_with("__GI_")) bare.remove_prefix(5);
  return bare == kStdioBufferFunction;
}
// Rule 3: libstdc++'s emergency EH pool (its constructor, or the static
// initializer of eh_alloc.cc it is inlined into; the full name).
bool IsEhPoolName(std::string_view name) {
  return name.find("pool::pool") != std::string_view::npos ||
         name.find("eh_alloc.cc") != std::string_view::npos;
}

}  // namespace

bool IsRuntimeLibrary(const std::string& path) {
  std::string base = BaseName(path);
  static constexpr const char* kPrefixes[] = {
      "ld-linux", "ld.so", "ld64.so", "libc.so", "libm.so", "libstdc++.so", "libgcc_s.so",
      "libpthread.so", "libdl.so", "librt.so", "libheapsight", "linux-vdso", "[vdso]"};
  for (const char* prefix : kPrefixes) {
    if (absl::StartsWith(base, prefix)) return true;
  }
  return false;
}

bool IsDynamicLoader(const std::string& path) {
  std::string base = BaseName(path);
  return absl::StartsWith(base, "ld-linux") || absl::StartsWith(base, "ld.so") ||
         absl::StartsWith(base, "ld64.so");
}

bool IsRuntimeFrame(const Module* module) {
  return module != nullptr && IsRuntimeLibrary(module->path);
}

bool IsPlainNestedName(const char* raw) {
  if (raw == nullptr || std::strncmp(raw, "_ZN", 3) != 0) return false;
  // "9heapsight": the mangled first scope of IsAllocatorBareName's one
  // qualified prefix, "heapsight::preload" (symbolizer.cc).
  return std::strstr(raw, kLoaderPrefix) == nullptr && std::strstr(raw, "9heapsight") == nullptr &&
         std::strstr(raw, kStdioBufferFunction) == nullptr;
}

bool IsLeadingAllocatorFrame(uint64_t ip, const Module* module, Symbolizer& symbolizer) {
  if (module != nullptr && absl::StartsWith(BaseName(module->path), "libheapsight")) return true;
  if (IsPlainNestedName(symbolizer.RawSymbolName(ip))) return false;
  // Memoized per address by the symbolizer, like the name itself.
  return IsAllocatorBareName(symbolizer.BareSymbolName(ip));
}

SiteKind ClassifyTopFrame(uint64_t ip, const Module* module, Symbolizer& symbolizer) {
  // Rule 1: ld.so asked for the memory.
  if (IsLdSo(module)) return SiteKind::kRuntime;
  if (IsPlainNestedName(symbolizer.RawSymbolName(ip))) return SiteKind::kProgram;
  if (IsLoaderName(symbolizer.SymbolName(ip))) return SiteKind::kRuntime;
  // Rule 2: stdio buffers.
  if (IsStdioBufferName(symbolizer.BareSymbolName(ip))) return SiteKind::kRuntime;
  return SiteKind::kProgram;
}

bool MayHoldEhPool(const Module& module) {
  return absl::StrContains(module.path, "libstdc++");
}

bool IsEhPoolFrame(uint64_t ip, const Module* module, Symbolizer& symbolizer) {
  // Rule 3: libstdc++'s emergency EH pool. Only libstdc++'s frames need
  // their name.
  if (module == nullptr || !MayHoldEhPool(*module)) return false;
  return IsEhPoolName(symbolizer.SymbolName(ip));
}

SiteKind ClassifySite(const std::vector<uint64_t>& ips, Symbolizer& symbolizer) {
  if (ips.empty()) return SiteKind::kProgram;
  // Rule 4 first: it needs module lookups only.
  bool all_runtime = true;
  for (uint64_t ip : ips) {
    if (!IsRuntimeFrame(symbolizer.FindModule(ip))) {
      all_runtime = false;
      break;
    }
  }
  if (all_runtime) return SiteKind::kRuntime;

  // Rules 1-3 need function names only: the symbol tables answer them, so
  // no debug info is read just to classify a site. The allocator's own
  // frames are dropped first, as SymbolizeStack drops them (never the last).
  size_t top = 0;
  while (top + 1 < ips.size() &&
         IsLeadingAllocatorFrame(ips[top], symbolizer.FindModule(ips[top]), symbolizer)) {
    ++top;
  }
  if (ClassifyTopFrame(ips[top], symbolizer.FindModule(ips[top]), symbolizer) ==
      SiteKind::kRuntime) {
    return SiteKind::kRuntime;
  }
  for (size_t i = top; i < ips.size(); ++i) {
    if (IsEhPoolFrame(ips[i], symbolizer.FindModule(ips[i]), symbolizer)) {
      return SiteKind::kRuntime;
    }
  }
  return SiteKind::kProgram;
}

}  // namespace heapsight::analyzer
