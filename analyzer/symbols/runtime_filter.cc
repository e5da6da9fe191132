// analyzer/symbols/runtime_filter.cc: see runtime_filter.h for the rules.
#include "analyzer/symbols/runtime_filter.h"

#include "absl/strings/match.h"
#include "analyzer/symbols/symbol_names.h"
#include "analyzer/symbols/symbolizer.h"

namespace heapsight::analyzer {
namespace {

bool IsLdSo(const Module* m) {
  if (m == nullptr) return false;
  std::string base = BaseName(m->path);
  return absl::StartsWith(base, "ld-linux") || absl::StartsWith(base, "ld.so") ||
         absl::StartsWith(base, "ld64.so");
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

SiteKind ClassifySite(const std::vector<uint64_t>& ips, Symbolizer& symbolizer) {
  if (ips.empty()) return SiteKind::kProgram;
  // Rule 4 first: it needs module lookups only.
  bool all_runtime = true;
  for (uint64_t ip : ips) {
    const Module* m = symbolizer.FindModule(ip);
    if (m == nullptr || !IsRuntimeLibrary(m->path)) {
      all_runtime = false;
      break;
    }
  }
  if (all_runtime) return SiteKind::kRuntime;

  // Rules 1-3 need function names only: the symbol tables answer them, so
  // no debug info is read just to classify a site.
  struct Frame {
    const Module* module;
    std::string name;
  };
  std::vector<Frame> frames;
  frames.reserve(ips.size());
  bool leading = true;
  for (size_t i = 0; i < ips.size(); ++i) {
    Frame f{symbolizer.FindModule(ips[i]), symbolizer.SymbolName(ips[i])};
    // The allocator's own frames, as SymbolizeStack drops them.
    if (leading && i + 1 < ips.size()) {
      bool ours = f.module != nullptr && absl::StartsWith(BaseName(f.module->path), "libheapsight");
      if (ours || IsAllocatorFunction(f.name)) continue;
    }
    leading = false;
    frames.push_back(std::move(f));
  }
  if (frames.empty()) return SiteKind::kProgram;
  const Frame& top = frames.front();
  // Rule 1: ld.so asked for the memory.
  if (IsLdSo(top.module) || absl::StartsWith(top.name, "_dl_")) return SiteKind::kRuntime;
  // Rule 2: stdio buffers.
  std::string name = BareFunctionName(top.name);
  if (absl::StartsWith(name, "__GI_")) name = name.substr(5);
  if (name == "_IO_file_doallocate") return SiteKind::kRuntime;
  // Rule 3: libstdc++'s emergency EH pool (its constructor, or the static
  // initializer of eh_alloc.cc it is inlined into).
  for (const Frame& f : frames) {
    if (f.module != nullptr && absl::StrContains(f.module->path, "libstdc++") &&
        (absl::StrContains(f.name, "pool::pool") || absl::StrContains(f.name, "eh_alloc.cc"))) {
      return SiteKind::kRuntime;
    }
  }
  return SiteKind::kProgram;
}

}  // namespace heapsight::analyzer
