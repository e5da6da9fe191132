// tests/realworld/scan_classes.cc: prints, for each trace given, the leak
// classes of its last scan counted over every block the program allocated
// (the C runtime's own blocks included, as memcheck without freeres counts
// them; `heapsight leaks` sets those aside as "runtime"), leaving out
// blocks freed after the scan (static destructors that ran later), as one
// JSON object per line: {"pid", "exe", "scans", "classes": {name: [bytes,
// blocks]}}. Used by realworld.py.
//
// `scan_classes --blocks TRACE...` prints every block of the last scan
// instead, one per line, for comparing with memcheck block by block:
//   <class> <size> <address> <id> <frame> <frame> ...
// frames as module-base-name+0xoffset (innermost first); the address is 0
// unless the trace was recorded with HEAPSIGHT_RECORD_ADDRESSES=1.
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "tests/support/run_traced.h"

namespace hs = heapsight;
using hs::format::RecordTag;

namespace {

struct Module {
  uint64_t load = 0;
  uint64_t end = 0;  // load + the highest segment end
  std::string name;  // base name
};

// "name+0xoffset" for ip, or the bare address when no module covers it.
std::string Frame(const std::map<uint64_t, Module>& modules, uint64_t ip) {
  char buf[64];
  auto it = modules.upper_bound(ip);
  if (it != modules.begin()) {
    --it;
    if (ip < it->second.end) {
      std::snprintf(buf, sizeof buf, "+0x%" PRIx64, ip - it->second.load);
      return it->second.name + buf;
    }
  }
  std::snprintf(buf, sizeof buf, "0x%" PRIx64, ip);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  static const char* kNames[] = {"definitely_lost", "indirectly_lost", "possibly_lost",
                                 "still_reachable"};
  bool list_blocks = argc > 1 && std::strcmp(argv[1], "--blocks") == 0;
  for (int i = list_blocks ? 2 : 1; i < argc; ++i) {
    hs::testing::TraceContents t = hs::testing::ReadTrace(argv[i]);
    if (!t.error.empty()) {
      std::fprintf(stderr, "%s: %s\n", argv[i], t.error.c_str());
      return 1;
    }
    std::unordered_map<uint64_t, uint64_t> size_of;
    std::unordered_map<uint64_t, std::pair<uint64_t, uint64_t>> where;  // id -> address, stack
    std::map<uint64_t, Module> modules;  // by load address
    std::unordered_set<uint64_t> freed;
    std::string exe;
    uint64_t last_scan = 0;
    int scans = 0;
    for (size_t k = 0; k < t.records.size(); ++k) {
      const auto& r = t.records[k];
      if (r.tag == RecordTag::kAlloc || r.tag == RecordTag::kRealloc ||
          r.tag == RecordTag::kInherited) {
        size_of[r.id] = r.size;
        where[r.id] = {r.address, r.stack};
      }
      // ReadTrace keeps two strings per record in `strings`, the first field first.
      if (r.tag == RecordTag::kModule && !t.strings[2 * k].empty()) {
        Module m;
        m.load = r.module.load_address;
        for (const auto& seg : r.module.segments) {
          if (m.load + seg.vaddr + seg.memsz > m.end) m.end = m.load + seg.vaddr + seg.memsz;
        }
        const std::string& path = t.strings[2 * k];
        m.name = path.substr(path.rfind('/') + 1);
        modules[m.load] = m;
      }
      if (r.tag == RecordTag::kFree) freed.insert(r.id);
      if (r.tag == RecordTag::kRealloc) freed.insert(r.old_id);
      if (r.tag == RecordTag::kProcess && exe.empty()) exe = t.strings[2 * k];
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
        if (list_blocks) {
          auto [address, node] = where[id];
          std::printf("%s %" PRIu64 " 0x%" PRIx64 " %" PRIu64, kNames[c], size_of[id], address,
                      id);
          for (int depth = 0; node != 0 && depth < 256; ++depth) {
            auto n = t.stack_nodes.find(node);
            if (n == t.stack_nodes.end()) break;
            std::printf(" %s", Frame(modules, n->second.second).c_str());
            node = n->second.first;
          }
          std::printf("\n");
        }
        bytes[c] += size_of[id];
        ++blocks[c];
      }
    }
    if (list_blocks) continue;
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
