// preload/module_map.h: the loaded ELF objects (modules) of the process.
//
// Scanned with dl_iterate_phdr at init and after each dlopen/dlclose.
// Module ids are stable for the life of the process (a module that is
// unloaded and loaded again gets a new id). For each module we keep what the
// analyzer needs to symbolize offline: path (the main executable's real path
// from /proc/self/exe; relative dlopen paths made absolute), load address
// (dlpi_addr), GNU build-id and PT_LOAD segments.
//
// Constraints: no malloc (paths live in the internal arena); one spin lock
// serializes scans; dl_iterate_phdr takes the loader lock, so Rescan must
// not be called from inside a loader callback. Not async-signal-safe.
#ifndef HEAPSIGHT_PRELOAD_MODULE_MAP_H_
#define HEAPSIGHT_PRELOAD_MODULE_MAP_H_

#include <cstddef>
#include <cstdint>

#include "format/chunk_encoder.h"

namespace heapsight::preload {

struct Module {
  uint64_t id = 0;
  uint64_t load_address = 0;
  const char* path = nullptr;
  size_t path_len = 0;
  uint8_t build_id[64] = {};
  size_t build_id_len = 0;
  format::SegmentInfo segments[16] = {};
  size_t segment_count = 0;
  bool alive = false;
  bool seen = false;
};

// Receives changes found by a scan.
struct ModuleSink {
  void (*loaded)(const Module& module, void* ctx);
  void (*unloaded)(uint64_t module_id, void* ctx);
  void* ctx;
};

// Re-reads the module list; reports new modules and vanished ones.
void RescanModules(const ModuleSink& sink);

// Cheap check (one loader-lock round trip): did anything get loaded or
// unloaded since the last RescanModules? Uses dlpi_adds/dlpi_subs.
bool ModulesChanged();

// Reports every alive module as loaded (for a fork child's new trace).
void ForEachLiveModule(const ModuleSink& sink);

// The address range of the PT_LOAD segments of the module containing
// `address` (used to find our own code). False if not found.
bool ModuleRangeOf(uintptr_t address, uintptr_t* begin, uintptr_t* end);

// Real path of the main executable (readlink /proc/self/exe), cached at
// first call; "" if unknown.
const char* ExecutablePath();

void LockModules();
void UnlockModules();
void ResetModuleLockInChild();

}  // namespace heapsight::preload

#endif  // HEAPSIGHT_PRELOAD_MODULE_MAP_H_
