// tests/scenarios/scenario_util.h: helpers shared by the scenario tests:
// program paths and exact counting of "magic-sized" allocations (each test
// program gives its own allocations sizes no runtime library uses).
#ifndef HEAPSIGHT_TESTS_SCENARIOS_SCENARIO_UTIL_H_
#define HEAPSIGHT_TESTS_SCENARIOS_SCENARIO_UTIL_H_

#include <stdio.h>
#include <stdlib.h>

#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#include "format/trace_format.h"
#include "tests/support/run_traced.h"

namespace heapsight::testing {

inline std::string ScenarioProgram(const std::string& name) {
  return BuildPath("tests/scenarios/" + name);
}

struct MagicCounts {
  std::map<format::Api, int> allocs;  // kAlloc + new side of kRealloc
  std::map<format::Api, int> frees;   // kFree + old side of kRealloc, of magic blocks
  std::map<format::Api, int> failed;  // kAllocFailed with size >= lo
  std::map<uint64_t, int> by_size;    // allocations per size
  int reallocs = 0;
  uint64_t bytes = 0;
  std::unordered_map<uint64_t, uint64_t> live;  // id -> size, still live at the end
  int inherited = 0;
  int unmatched_magic_frees = 0;  // never expected: frees are counted by id only
};

// Counts allocations with lo <= size < hi and the frees of those blocks.
// Two passes, because pairing never depends on file order: chunks of
// different threads are written when they fill up, so a free on thread B
// may be in the file before the allocation on thread A that it names.
inline MagicCounts CountMagic(const TraceContents& t, uint64_t lo, uint64_t hi) {
  MagicCounts c;
  auto magic = [&](uint64_t size) { return size >= lo && size < hi; };
  for (const auto& r : t.records) {
    bool alloc = r.tag == format::RecordTag::kAlloc || r.tag == format::RecordTag::kRealloc;
    if (alloc && magic(r.size)) {
      ++c.allocs[r.api];
      ++c.by_size[r.size];
      c.bytes += r.size;
      c.live[r.id] = r.size;
      if (r.tag == format::RecordTag::kRealloc) ++c.reallocs;
    } else if (r.tag == format::RecordTag::kInherited && magic(r.size)) {
      ++c.inherited;
      c.live[r.id] = r.size;
    } else if (r.tag == format::RecordTag::kAllocFailed && r.size >= lo) {
      ++c.failed[r.api];
    }
  }
  for (const auto& r : t.records) {
    if (r.tag == format::RecordTag::kFree) {
      if (c.live.erase(r.id) != 0) ++c.frees[r.api];
    } else if (r.tag == format::RecordTag::kRealloc) {
      if (c.live.erase(r.old_id) != 0) ++c.frees[r.api];
    }
  }
  return c;
}

// Frees (kFree, old side of kRealloc) whose id no allocation, realloc or
// inherited record of the trace defines, wherever it is in the file.
// (CountTrace's unmatched_frees is file-order dependent; see
// docs/TEAM-NOTES-requests.md.)
inline uint64_t UnpairedFrees(const TraceContents& t) {
  std::unordered_map<uint64_t, int> defined;
  for (const auto& r : t.records) {
    if (r.tag == format::RecordTag::kAlloc || r.tag == format::RecordTag::kRealloc ||
        r.tag == format::RecordTag::kInherited) {
      ++defined[r.id];
    }
  }
  uint64_t unpaired = 0;
  for (const auto& r : t.records) {
    uint64_t id = r.tag == format::RecordTag::kFree      ? r.id
                  : r.tag == format::RecordTag::kRealloc ? r.old_id
                                                         : 0;
    if (id == 0) continue;
    auto it = defined.find(id);
    if (it == defined.end() || it->second == 0) {
      ++unpaired;
    } else {
      --it->second;  // each id is freed at most once
    }
  }
  return unpaired;
}

inline int CountTag(const TraceContents& t, format::RecordTag tag) {
  int n = 0;
  for (const auto& r : t.records) n += r.tag == tag;
  return n;
}

// Names the frames of a scenario program's stacks from its ELF symbol
// table (read with nm), through the module record of the executable in the
// trace (its load address). Frames outside the program are "?".
class ProgramSymbols {
 public:
  ProgramSymbols(const std::string& exe, const TraceContents& t) {
    std::string cmd = "nm -S --defined-only '" + exe + "'";
    if (FILE* p = popen(cmd.c_str(), "r"); p != nullptr) {
      char line[1024];
      while (fgets(line, sizeof line, p) != nullptr) {
        std::istringstream in(line);
        std::string value, size, type, name;
        if (in >> value >> size >> type >> name) {
          symbols_[name] = {std::stoull(value, nullptr, 16), std::stoull(size, nullptr, 16)};
        }
      }
      pclose(p);
    }
    char* real = realpath(exe.c_str(), nullptr);
    std::string real_exe = real != nullptr ? real : exe;
    free(real);
    for (size_t i = 0; i < t.records.size(); ++i) {
      if (t.records[i].tag == format::RecordTag::kModule && t.strings[2 * i] == real_exe) {
        load_ = t.records[i].module.load_address;
        found_module_ = true;
      }
    }
  }

  // Empty if usable, else what is missing.
  std::string Error() const {
    if (symbols_.empty()) return "nm listed no symbols";
    if (!found_module_) return "no module record for the executable";
    return "";
  }
  bool Has(const std::string& name) const { return symbols_.count(name) != 0; }

  std::string NameOf(uint64_t ip) const {
    uint64_t addr = ip - 1 - load_;  // return address -> inside the call
    for (const auto& [name, sym] : symbols_) {
      if (addr >= sym.first && addr < sym.first + sym.second) return name;
    }
    return "?";
  }

  // The frames of stack `leaf`, innermost first; "<bad node>" ends a stack
  // that names a node the trace never defined.
  std::vector<std::string> Frames(const TraceContents& t, uint64_t leaf) const {
    std::vector<std::string> frames;
    for (uint64_t node = leaf; node != 0;) {
      auto it = t.stack_nodes.find(node);
      if (it == t.stack_nodes.end()) {
        frames.push_back("<bad node>");
        break;
      }
      frames.push_back(NameOf(it->second.second));
      node = it->second.first;
    }
    return frames;
  }

 private:
  std::map<std::string, std::pair<uint64_t, uint64_t>> symbols_;  // name -> (value, size)
  uint64_t load_ = 0;
  bool found_module_ = false;
};

}  // namespace heapsight::testing

#endif  // HEAPSIGHT_TESTS_SCENARIOS_SCENARIO_UTIL_H_
