// analyzer/runtime_filter.cc: see runtime_filter.h for the rules.
#include "analyzer/runtime_filter.h"

#include "absl/strings/match.h"
#include "analyzer/symbolizer.h"

namespace heapsight::analyzer {
namespace {

std::string Basename(const std::string& path) {
  size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

bool IsLdSo(const Module* m) {
  if (m == nullptr) return false;
  std::string base = Basename(m->path);
  return absl::StartsWith(base, "ld-linux") || absl::StartsWith(base, "ld.so") ||
         absl::StartsWith(base, "ld64.so");
}

}  // namespace

bool IsRuntimeLibrary(const std::string& path) {
  std::string base = Basename(path);
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

  std::vector<const SymbolizedLocation*> stack = symbolizer.SymbolizeStack(ips);
  if (stack.empty()) return SiteKind::kProgram;
  const SymbolizedLocation& top = *stack.front();
  const std::string& top_function = top.frames.back().function;
  // Rule 1: ld.so asked for the memory.
  if (IsLdSo(top.module) || absl::StartsWith(top_function, "_dl_")) return SiteKind::kRuntime;
  // Rule 2: stdio buffers.
  for (const SourceFrame& f : top.frames) {
    std::string name = BareFunctionName(f.function);
    if (absl::StartsWith(name, "__GI_")) name = name.substr(5);
    if (name == "_IO_file_doallocate") return SiteKind::kRuntime;
  }
  // Rule 3: libstdc++'s emergency EH pool.
  for (const SymbolizedLocation* loc : stack) {
    for (const SourceFrame& f : loc->frames) {
      if (absl::StrContains(f.function, "pool::pool") &&
          (absl::EndsWith(f.file, "eh_alloc.cc") ||
           (loc->module != nullptr && absl::StrContains(loc->module->path, "libstdc++")))) {
        return SiteKind::kRuntime;
      }
    }
  }
  return SiteKind::kProgram;
}

}  // namespace heapsight::analyzer
