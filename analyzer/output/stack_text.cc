// analyzer/output/stack_text.cc: see stack_text.h.
#include "analyzer/output/stack_text.h"

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "analyzer/output/text_util.h"
#include "analyzer/symbols/symbolizer.h"

namespace heapsight::analyzer {

StackText DescribeFrames(const ProcessProfile& profile, uint64_t stack) {
  // The program's own frames first: the standard library's allocation
  // plumbing above them (std::allocator, std::vector's growth, operator
  // new) is only counted by the callers.
  StackText out;
  size_t first_own = SIZE_MAX;
  for (const SymbolizedLocation* loc :
       profile.symbolizer->SymbolizeStack(profile.StackIps(stack))) {
    for (const SourceFrame& f : loc->frames) {
      if (first_own == SIZE_MAX && !IsLibraryFrame(f, *loc)) first_own = out.frames.size();
      out.frames.push_back(CompactFrame(f, *loc));
    }
  }
  out.first_own = first_own == SIZE_MAX ? 0 : first_own;
  out.cut = profile.StackCutOf(stack);
  return out;
}

std::string StackCutText(const StackCut& cut, const std::string& indent) {
  if (cut.missing == 0) return absl::StrCat(indent, "... more frames not recorded");
  return absl::StrCat(indent, "... ", cut.missing, " more frames not recorded");
}

std::string DescribeStack(const ProcessProfile& profile, uint64_t stack, size_t max_frames) {
  StackText st = DescribeFrames(profile, stack);
  if (st.frames.empty() && !st.cut.cut) return "(no stack)";
  std::string out;
  size_t shown = 0;
  for (size_t i = st.first_own; i < st.frames.size() && shown < max_frames; ++i, ++shown) {
    if (shown != 0) out += " <- ";
    out += st.frames[i];
  }
  if (st.first_own + shown < st.frames.size()) {
    absl::StrAppend(&out, " <- ... (", st.frames.size() - st.first_own - shown, " more)");
  }
  if (st.cut.cut) absl::StrAppend(&out, shown != 0 ? " <- " : "", StackCutText(st.cut, ""));
  if (st.first_own != 0) {
    absl::StrAppend(&out, " (below ", st.first_own,
                    st.first_own == 1 ? " library frame)" : " library frames)");
  }
  return out;
}

SymbolStats SymbolStatsOf(const std::vector<const ProcessProfile*>& profiles) {
  SymbolStats stats;
  absl::flat_hash_set<const Symbolizer*> seen;
  for (const ProcessProfile* p : profiles) {
    if (p->symbolizer != nullptr && seen.insert(p->symbolizer.get()).second) {
      stats += p->symbolizer->Stats();
    }
  }
  return stats;
}

std::string UnsymbolizedText(const SymbolStats& stats) {
  if (stats.unsymbolized() == 0) return "";
  std::string reasons;
  auto add = [&](uint64_t n, const char* why) {
    if (n == 0) return;
    absl::StrAppend(&reasons, reasons.empty() ? "" : ", ", Thousands(n), " ", why);
  };
  add(stats.no_module, "in no recorded module");
  add(stats.module_unreadable, "module file unreadable");
  add(stats.no_debug_info, "no symbols or debug info");
  add(stats.no_symbol, "no function in the debug info");
  return absl::StrCat(Thousands(stats.unsymbolized()), " of ", Thousands(stats.addresses),
                      stats.addresses == 1 ? " address" : " addresses", " unsymbolized (",
                      reasons, ")");
}

}  // namespace heapsight::analyzer
