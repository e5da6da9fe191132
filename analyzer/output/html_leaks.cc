// analyzer/output/html_leaks.cc: see html_leaks.h.
#include "analyzer/output/html_leaks.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "analyzer/output/flamegraph_svg.h"
#include "analyzer/output/html_glossary.h"
#include "analyzer/output/stack_text.h"
#include "analyzer/output/text_util.h"

namespace heapsight::analyzer::output {
namespace {

std::string E(std::string_view text) { return XmlEscape(text); }

struct ClassText {
  LeakClass kind;
  const char* name;    // the part's heading, and its glossary key
  const char* lsan;    // LSan's (and memcheck's) words for one group
  const char* slug;    // the part's id and class
};
constexpr ClassText kClasses[] = {
    {LeakClass::kDefinite, "definitely lost", "Direct leak", "definite"},
    {LeakClass::kIndirect, "indirectly lost", "Indirect leak", "indirect"},
    {LeakClass::kPossible, "possibly lost", "Possible leak", "possible"},
    {LeakClass::kReachable, "still reachable", "Still reachable", "reachable"},
    {LeakClass::kUnclassified, "not freed", "Not freed", "unfreed"},
};

const char* Api(format::Api api) {
  const char* name = format::ApiName(api);
  return name != nullptr ? name : "?";
}

// "#0 f (file.cc:12)" lines, the program's frames first as the text
// reports show them (the allocator's plumbing folded, counted).
void StackLines(std::string& out, const ProcessProfile& p, uint64_t stack, size_t frames) {
  StackText st = DescribeFrames(p, stack);
  if (st.frames.empty()) {
    absl::StrAppend(&out, "    (no stack)\n");
    return;
  }
  if (st.first_own != 0) {
    absl::StrAppend(&out, "    (", st.first_own,
                    st.first_own == 1 ? " library frame" : " library frames", " above)\n");
  }
  size_t shown = 0;
  for (size_t i = st.first_own; i < st.frames.size() && shown < frames; ++i, ++shown) {
    absl::StrAppend(&out, "    #", shown, " ", E(st.frames[i]), "\n");
  }
  if (st.first_own + shown < st.frames.size()) {
    absl::StrAppend(&out, "    ... (", st.frames.size() - st.first_own - shown, " more)\n");
  }
  if (st.cut.cut) absl::StrAppend(&out, "    ... more frames not recorded\n");
}

const char* ErrorName(format::FreeError e) {
  switch (e) {
    case format::FreeError::kInvalidFree: return "invalid free";
    case format::FreeError::kDoubleFree: return "double free";
    case format::FreeError::kMismatchedFree: return "mismatched free";
  }
  return "free error";
}

}  // namespace

std::string RenderLeaksSection(const ProcessProfile& p, const HtmlLeaks& leaks, size_t top,
                               size_t frames, std::string_view id) {
  std::string out = absl::StrCat("<div class=\"leaks\" id=\"", E(id), "\">\n<h3>Leaks</h3>\n");
  if (!leaks.known) {
    return out + "<p class=\"note\">not analyzed</p>\n</div>\n";
  }
  if (p.EndedInExec()) {
    return out + "<p class=\"note\">None: this image ended in exec, which discarded its heap "
                 "(see <a href=\"#def-discarded-by-exec\">discarded by exec</a>).</p>\n</div>\n";
  }
  if (!leaks.scanned) {
    absl::StrAppend(&out, "<p class=\"note\">No reachability scan (", E(leaks.no_scan_reason),
                    "): every block not freed at exit counts as leaked.</p>\n");
  }
  if (leaks.estimated) {
    absl::StrAppend(&out, "<p class=\"note estimate\">Estimates: a sampled trace.</p>\n");
  }
  for (const ClassText& c : kClasses) {
    const ClassCounts& total = leaks.classes[c.kind];
    // Without a scan every block is "not freed"; with one, "not freed"
    // holds only blocks allocated after it, shown only when there are some.
    if (c.kind == LeakClass::kUnclassified && leaks.scanned && total.blocks == 0) continue;
    if (c.kind != LeakClass::kUnclassified && !leaks.scanned) continue;
    absl::StrAppend(&out, "<h4 class=\"leak-class\" id=\"", E(id), "-", c.slug,
                    "\" data-kind=\"", c.slug, "\" data-bytes=\"", total.bytes,
                    "\" data-blocks=\"", total.blocks, "\" title=\"",
                    E(GlossaryDefinition(c.name)), "\">", c.name, ": ",
                    E(Bytes(total.bytes)), " in ", E(Thousands(total.blocks)),
                    total.blocks == 1 ? " block" : " blocks", "</h4>\n");
    size_t listed = 0, more = 0;
    for (const HtmlLeakGroup& g : leaks.groups) {
      if (g.kind != c.kind) continue;
      if (listed == top) {
        ++more;
        continue;
      }
      ++listed;
      absl::StrAppend(&out, "<pre class=\"lsan\" data-kind=\"", c.slug, "\" data-bytes=\"",
                      g.counts.bytes, "\" data-blocks=\"", g.counts.blocks, "\">", c.lsan,
                      " of ", g.counts.bytes, " byte(s) in ", g.counts.blocks,
                      " object(s) allocated from (", E(Api(g.api)), "):\n");
      StackLines(out, p, g.stack, frames);
      absl::StrAppend(&out, "</pre>\n");
    }
    if (more != 0) {
      absl::StrAppend(&out, "<p class=\"note\">... and ", more,
                      more == 1 ? " more call site" : " more call sites",
                      " (heapsight leaks lists them all)</p>\n");
    }
  }
  if (leaks.suppressed.blocks != 0) {
    absl::StrAppend(&out, "<p class=\"note\">suppressed: ", E(Bytes(leaks.suppressed.bytes)),
                    " in ", E(Thousands(leaks.suppressed.blocks)), " blocks</p>\n");
  }
  absl::StrAppend(&out, "<h4 class=\"free-errors\" data-count=\"", leaks.errors.size(),
                  "\">Free errors: ", leaks.errors.size(), "</h4>\n");
  size_t shown[4] = {};
  for (const FreeErrorEvent& e : leaks.errors) {
    size_t kind = static_cast<size_t>(e.error) & 3;
    if (shown[kind]++ >= top) continue;
    absl::StrAppend(&out, "<pre class=\"free-error\" data-error=\"",
                    static_cast<int>(e.error), "\">", ErrorName(e.error), " (",
                    E(Api(e.free_api)), ")");
    if (e.alloc_known) {
      absl::StrAppend(&out, " of ", e.alloc_size, " byte(s) allocated by ", E(Api(e.alloc_api)));
    }
    absl::StrAppend(&out, " at ", E(Seconds(e.time_us, ResolutionOf(p.header.flags))),
                    ":\n");
    StackLines(out, p, e.free_stack, frames);
    if (e.alloc_known) {
      absl::StrAppend(&out, "  allocated at:\n");
      StackLines(out, p, e.alloc_stack, frames);
    }
    absl::StrAppend(&out, "</pre>\n");
  }
  for (size_t kind = 0; kind < 4; ++kind) {
    if (shown[kind] > top) {
      absl::StrAppend(&out, "<p class=\"note\">... and ", shown[kind] - top, " more ",
                      ErrorName(static_cast<format::FreeError>(kind)),
                      "s (heapsight leaks lists them all)</p>\n");
    }
  }
  return out + "</div>\n";
}

}  // namespace heapsight::analyzer::output
