// analyzer/output/html_glossary.h: the definitions the HTML page shows
// ("What these numbers mean", and the tooltips of its summary rows).
//
// One source: each definition is quoted word for word from docs/glossary.md
// (its markdown emphasis and code quotes left out), and
// tests/analyzer/output/html_glossary_test.cc checks every quote against
// that file, so the page cannot say something the glossary does not.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_HTML_GLOSSARY_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_HTML_GLOSSARY_H_

#include <span>
#include <string>
#include <string_view>

namespace heapsight::analyzer::output {

struct GlossaryEntry {
  const char* key;    // how the page refers to it, e.g. "peak heap"
  const char* term;   // the term as docs/glossary.md writes it, e.g. "Peak"
  // Up to three sentences quoted from docs/glossary.md, in its order;
  // nullptr ends the list early.
  const char* quotes[3];
};

// The page's glossary, in the order the page shows it.
std::span<const GlossaryEntry> HtmlGlossary();

// The definition of `key`: its quotes joined by spaces; "" when unknown.
std::string GlossaryDefinition(std::string_view key);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_HTML_GLOSSARY_H_
