// tests/analyzer/fake_module.h: a module with no file behind it (one
// executable segment of 64 KiB at `load`), for tests of the rules that go by
// a module's path (runtime_filter, site_classifier): the symbolizer finds
// the module of an address in it but names no function.
#ifndef HEAPSIGHT_TESTS_ANALYZER_FAKE_MODULE_H_
#define HEAPSIGHT_TESTS_ANALYZER_FAKE_MODULE_H_

#include <cstdint>
#include <string>

#include "analyzer/symbols/symbolizer.h"

namespace heapsight::testing {

inline analyzer::Module FakeModule(uint64_t id, const std::string& path, uint64_t load) {
  analyzer::Module m;
  m.id = id;
  m.path = path;
  m.load_address = load;
  m.segments.push_back({0, 0x10000, 0, 5});
  return m;
}

}  // namespace heapsight::testing

#endif  // HEAPSIGHT_TESTS_ANALYZER_FAKE_MODULE_H_
