// tests/analyzer/output/xml_checker.h: a small XML well-formedness checker for the
// flame graph tests: balanced tags, quoted attributes, no raw '<' or '&' in
// text, known entities only, CDATA and comments skipped, valid UTF-8.
#ifndef HEAPSIGHT_TESTS_OUTPUT_XML_CHECKER_H_
#define HEAPSIGHT_TESTS_OUTPUT_XML_CHECKER_H_

#include <string>
#include <string_view>

namespace heapsight::testing {

// Returns "" if `doc` is well-formed, else what is wrong and where.
std::string CheckXmlWellFormed(std::string_view doc);

}  // namespace heapsight::testing

#endif  // HEAPSIGHT_TESTS_OUTPUT_XML_CHECKER_H_
