// tests/realworld/scan_classes.cc: prints, for each trace given, the leak
// classes of its last scan counted over every block the program allocated
// (the C runtime's own blocks included, as memcheck without freeres counts
// them; `heapsight leaks` sets those aside as "runtime"), leaving out
// blocks freed after the scan (static destructors that ran later), as one
// JSON object per line: {"pid", "exe", "scans", "classes": {name: [bytes,
// blocks]}}. Used by realworld.py.
#include <cinttypes>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "tests/support/run_traced.h"

namespace hs = heapsight;
using hs::format::RecordTag;

int main(int argc, char** argv) {
  static const char* kNames[] = {"definitely_lost", "indirectly_lost", "possibly_lost",
                                 "still_reachable"};
  for (int i = 1; i < argc; ++i) {
    hs::testing::TraceContents t = hs::testing::ReadTrace(argv[i]);
    if (!t.error.empty()) {
      std::fprintf(stderr, "%s: %s\n", argv[i], t.error.c_str());
      return 1;
    }
    std::unordered_map<uint64_t, uint64_t> size_of;
    std::unordered_set<uint64_t> freed;
    std::string exe;
    uint64_t last_scan = 0;
    int scans = 0;
    for (const auto& r : t.records) {
      if (r.tag == RecordTag::kAlloc || r.tag == RecordTag::kRealloc ||
          r.tag == RecordTag::kInherited) {
        size_of[r.id] = r.size;
      }
      if (r.tag == RecordTag::kFree) freed.insert(r.id);
      if (r.tag == RecordTag::kRealloc) freed.insert(r.old_id);
      if (r.tag == RecordTag::kProcess && exe.empty()) exe = std::string(r.process.executable);
      if (r.tag == RecordTag::kLeakScan) {
        ++scans;
        if (r.leak_scan.scan > last_scan) last_scan = r.leak_scan.scan;
      }
    }
    uint64_t bytes[4] = {}, blocks[4] = {};
    for (const auto& r : t.records) {
      if (r.tag != RecordTag::kBlockClasses || r.block_classes.scan != last_scan) continue;
      int c = static_cast<int>(r.block_classes.leak_class) - 1;
      if (c < 0 || c > 3) continue;
      for (uint64_t id : r.block_classes.ids) {
        if (freed.count(id) != 0) continue;
        bytes[c] += size_of[id];
        ++blocks[c];
      }
    }
    std::printf("{\"pid\": %" PRIu64 ", \"exe\": \"%s\", \"scans\": %d, \"classes\": {",
                static_cast<uint64_t>(t.header.pid), exe.c_str(), scans);
    for (int c = 0; c < 4; ++c) {
      std::printf("%s\"%s\": [%" PRIu64 ", %" PRIu64 "]", c ? ", " : "", kNames[c], bytes[c],
                  blocks[c]);
    }
    std::printf("}}\n");
  }
  return 0;
}
