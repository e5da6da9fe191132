// analyzer/output/html_glossary.cc: see html_glossary.h. Edit docs/glossary.md
// first, then the quotes here (html_glossary_test fails until they agree).
#include "analyzer/output/html_glossary.h"

namespace heapsight::analyzer::output {
namespace {

constexpr GlossaryEntry kEntries[] = {
    {"allocated", "Allocated",
     {"every block an allocation call of this process returned, counted once when it is "
      "returned: malloc, calloc, realloc's new block, operator new and new[], aligned_alloc, "
      "posix_memalign, ...",
      "A realloc counts as one allocation (its new block) and one free (its old block).",
      nullptr}},
    {"frees", "Frees", {"blocks released (free, delete, realloc's old block).", nullptr, nullptr}},
    {"live", "Live at a moment",
     {"the blocks allocated (or inherited) and not yet freed after every event at or before "
      "that moment.",
      nullptr, nullptr}},
    {"peak heap", "Peak",
     {"the most bytes live at any moment of the trace, the first moment it was reached, and "
      "the blocks live then.",
      nullptr, nullptr}},
    {"not freed at exit", "Not freed at exit",
     {"the blocks still live when the trace ends, after any frees that come after the "
      "process's end record.",
      "This is memcheck's \"in use at exit\" without the runtime's blocks: every block, leaked "
      "or still reachable.",
      nullptr}},
    {"leaked", "Leaked",
     {"means definitely + indirectly + possibly lost (memcheck's \"lost\"), or all blocks not "
      "freed when there was no scan.",
      nullptr, nullptr}},
    {"definitely lost", "definitely lost", {"no pointer to the block anywhere;", nullptr, nullptr}},
    {"indirectly lost", "indirectly lost", {"only lost blocks point to it;", nullptr, nullptr}},
    {"possibly lost", "possibly lost",
     {"reached only through pointers into its middle;", nullptr, nullptr}},
    {"still reachable", "still reachable",
     {"a pointer to its start from a root or a reachable block;", nullptr, nullptr}},
    {"not freed", "not freed",
     {"a trace without a scan (sampled traces, HEAPSIGHT_LEAK_SCAN=0, a trace cut short); every "
      "such block counts as leaked.",
      nullptr, nullptr}},
    {"discarded by exec", "Discarded by exec",
     {"a process image that ends in a successful exec has no exit: the kernel discards its "
      "whole heap with the image.",
      "Its blocks not freed are \"discarded by exec\": never leaks, never in a leak total or "
      "the leak exit code",
      nullptr}},
    {"carried by rotation", "Carried by rotation",
     {"a trace segment that heapsight record --rotate-size or --rotate-time closed ends while "
      "the process runs on.",
      "Its blocks still live at the cut are \"live at the segment's end\": the next segment "
      "starts with them (as inherited blocks), so they are never leaks of this segment",
      nullptr}},
    {"temporary", "Temporary",
     {"a block freed (by free or delete, not by realloc) by the thread that allocated it, as "
      "that thread's very next allocation-family call: no other allocation and no other free "
      "by that thread in between (a realloc counts as an allocation).",
      "Not known in a sampled trace (the calls in between were not recorded): reports say so "
      "instead of printing a number.",
      nullptr}},
    {"runtime blocks", "Runtime blocks",
     {"blocks the C and C++ runtimes allocate for themselves, not for the program",
      "They are not the program's, and every number below leaves them out: allocated, frees, "
      "peak, live at a moment, not freed at exit, temporary, the heap over time, the heap at "
      "each marker, the leak classes and the call-site lists.",
      nullptr}},
    {"estimates", "Estimates in sampled traces",
     {"the preload records one allocation per N bytes allocated, on average: an allocation "
      "of s bytes is recorded with probability p(s) = 1 - exp(-s/N).",
      "Every total of such a trace is an estimate of the unsampled program, and every command "
      "says so",
      nullptr}},
    {"RSS", "RSS",
     {"\"peak RSS sampled\" is the process's resident memory as the preload sampled it now "
      "and then; it includes heapsight's own memory, so it is not comparable with the heap "
      "numbers above.",
      nullptr, nullptr}},
};

}  // namespace

std::span<const GlossaryEntry> HtmlGlossary() { return kEntries; }

std::string GlossaryDefinition(std::string_view key) {
  for (const GlossaryEntry& e : kEntries) {
    if (key != e.key) continue;
    std::string out;
    for (const char* q : e.quotes) {
      if (q == nullptr) break;
      if (!out.empty()) out += ' ';
      // A quote cut from a longer sentence or a list item ends as one.
      std::string_view quote = q;
      if (!quote.empty() && (quote.back() == ';' || quote.back() == ':')) {
        quote.remove_suffix(1);
      }
      out += quote;
      if (!quote.empty() && quote.back() != '.') out += '.';
    }
    return out;
  }
  return "";
}

}  // namespace heapsight::analyzer::output
