// analyzer/symbols/module.cc: see module.h.
#include "analyzer/symbols/module.h"

namespace heapsight::analyzer {

bool Module::Contains(uint64_t addr) const {
  if (segments.empty()) return addr >= load_address;
  for (const format::SegmentInfo& s : segments) {
    uint64_t start = load_address + s.vaddr;
    if (addr >= start && addr - start < s.memsz) return true;
  }
  return false;
}

}  // namespace heapsight::analyzer
