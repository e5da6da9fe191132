// analyzer/symbols/module.h: a loaded ELF object as a trace's kModule records
// describe it: where it was mapped, for how long, and which file it was.
// The symbolizer names addresses through these; the trace model collects
// them (ProcessProfile::modules).
#ifndef HEAPSIGHT_ANALYZER_SYMBOLS_MODULE_H_
#define HEAPSIGHT_ANALYZER_SYMBOLS_MODULE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "format/chunk_decoder.h"  // format::Record
#include "format/chunk_encoder.h"  // format::SegmentInfo

namespace heapsight::analyzer {

// "Not yet" / "not at all" for a time: a module never unloaded, an event
// that never happened.
inline constexpr uint64_t kNever = UINT64_MAX;

struct Module {
  uint64_t id = 0;                  // module id from the kModule record
  std::string path;
  std::string build_id_hex;         // lower-case hex, "" if none recorded
  uint64_t load_address = 0;        // load bias (dlpi_addr): runtime addr = vaddr + this
  std::vector<format::SegmentInfo> segments;  // PT_LOAD, vaddr unbiased
  uint64_t load_time_us = 0;
  uint64_t unload_time_us = kNever;  // kNever if never unloaded

  // True if runtime address `addr` falls in one of the segments (or, when no
  // segments were recorded, is at or above the load address).
  bool Contains(uint64_t addr) const;
};

// The module a kModule record describes, loaded at `time_us`.
Module ModuleFromRecord(const format::Record::ModuleFields& fields, uint64_t time_us);

// A kModuleUnload of module `id` at `time_us`: the newest load of `id` that
// is still loaded ends then (ids are reused after an unload).
void UnloadModule(std::vector<Module>& modules, uint64_t id, uint64_t time_us);

// The GNU build id of the ELF file at `path` (lower-case hex), or "" if it
// has none or is not a readable regular ELF file outside /proc, /sys and
// /dev (paths come from untrusted traces). Reads the file's notes only.
std::string ReadBuildIdHex(const std::string& path);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_SYMBOLS_MODULE_H_
