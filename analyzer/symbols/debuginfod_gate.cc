// analyzer/symbols/debuginfod_gate.cc: see debuginfod_gate.h.
#include "analyzer/symbols/debuginfod_gate.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace heapsight::analyzer {
namespace {

std::atomic<uint64_t> g_declined{0};

// libdwfl asks for "libdebuginfod.so.1" (DEBUGINFOD_SONAME); older
// elfutils for "libdebuginfod-<version>.so" or "libdebuginfod.so". Only a
// bare soname, never a path: a caller naming a file wants that file.
bool IsDebuginfodSoname(const char* file) {
  return file != nullptr && std::strchr(file, '/') == nullptr &&
         std::strncmp(file, "libdebuginfod", 13) == 0;
}

}  // namespace

bool DebuginfodConfigured() {
  const char* urls = std::getenv("DEBUGINFOD_URLS");
  return urls != nullptr && urls[0] != '\0';
}

uint64_t DebuginfodLoadsDeclined() { return g_declined.load(std::memory_order_relaxed); }

void LinkDebuginfodGate() {}

namespace {

// dlopen's test: true (and counted) for a load the gate declines. A
// RTLD_NOLOAD probe only asks whether it is loaded: answered as usual.
bool DeclineLoad(const char* file, int mode) {
  if (!IsDebuginfodSoname(file) || (mode & RTLD_NOLOAD) != 0 || DebuginfodConfigured()) {
    return false;
  }
  g_declined.fetch_add(1, std::memory_order_relaxed);
  return true;
}

}  // namespace
}  // namespace heapsight::analyzer

extern "C" {

// The gate. Every call but a declined one goes to the next dlopen in
// lookup order: the C library's (or a sanitizer runtime's wrapper of it).
__attribute__((visibility("default"))) void* dlopen(const char* file, int mode) {
  using DlopenFn = void* (*)(const char*, int);
  static const DlopenFn next = reinterpret_cast<DlopenFn>(dlsym(RTLD_NEXT, "dlopen"));
  if (heapsight::analyzer::DeclineLoad(file, mode)) return nullptr;
  if (next == nullptr) return nullptr;
  return next(file, mode);
}

}  // extern "C"
