// preload/module_map.cc: see module_map.h.
//
// Constraints: no malloc; one spin lock per scan.
#include "preload/module_map.h"

#include <elf.h>
#include <link.h>
#include <unistd.h>

#include <cstring>

#include "preload/fork_gate.h"
#include "preload/internal_alloc.h"
#include "preload/spin_lock.h"

namespace heapsight::preload {
namespace {

constexpr size_t kMaxModules = 4096;

SpinLock g_lock;
Module* g_modules = nullptr;  // kMaxModules entries, PageAlloc'ed
size_t g_module_count = 0;
uint64_t g_next_id = 1;
unsigned long long g_adds = 0;  // dlpi_adds/dlpi_subs seen by the last scan
unsigned long long g_subs = 0;
char g_exe_path[4096];
bool g_exe_path_known = false;

const char* CopyString(const char* s, size_t len) {
  char* p = static_cast<char*>(ArenaAlloc(len + 1));
  if (p == nullptr) return "";
  std::memcpy(p, s, len);
  p[len] = '\0';
  return p;
}

void ReadBuildId(const dl_phdr_info* info, Module* m) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_NOTE) continue;
    auto p = static_cast<uintptr_t>(info->dlpi_addr + ph.p_vaddr);
    uintptr_t end = p + ph.p_memsz;
    while (p + sizeof(ElfW(Nhdr)) <= end) {
      const auto* note = reinterpret_cast<const ElfW(Nhdr)*>(p);
      uintptr_t name = p + sizeof *note;
      uintptr_t desc = name + ((note->n_namesz + 3) & ~3u);
      uintptr_t next = desc + ((note->n_descsz + 3) & ~3u);
      if (next > end) break;
      if (note->n_type == NT_GNU_BUILD_ID && note->n_namesz == 4 &&
          std::memcmp(reinterpret_cast<const void*>(name), "GNU", 4) == 0 &&
          note->n_descsz <= sizeof m->build_id) {
        std::memcpy(m->build_id, reinterpret_cast<const void*>(desc), note->n_descsz);
        m->build_id_len = note->n_descsz;
        return;
      }
      p = next;
    }
  }
}

struct ScanState {
  bool first = true;
};

int ScanOne(dl_phdr_info* info, size_t, void* data) {
  auto* scan = static_cast<ScanState*>(data);
  if (scan->first) {
    g_adds = info->dlpi_adds;
    g_subs = info->dlpi_subs;
  }
  bool is_main = scan->first;
  scan->first = false;
  const char* name = info->dlpi_name != nullptr ? info->dlpi_name : "";
  char path_buf[4096];
  size_t len;
  if (name[0] == '\0') {
    if (!is_main) return 0;  // unnamed non-main object: nothing to symbolize with
    name = ExecutablePath();
    len = std::strlen(name);
  } else if (name[0] != '/') {
    if (std::strncmp(name, "linux-vdso", 10) == 0 || std::strncmp(name, "linux-gate", 10) == 0) {
      return 0;  // the vDSO has no file on disk
    }
    // A relative dlopen path: make it absolute against the current directory.
    if (getcwd(path_buf, sizeof path_buf - 1 - std::strlen(name) - 1) == nullptr) return 0;
    len = std::strlen(path_buf);
    path_buf[len++] = '/';
    std::strcpy(path_buf + len, name);
    name = path_buf;
    len = std::strlen(name);
  } else {
    len = std::strlen(name);
  }
  uint64_t load = info->dlpi_addr;
  for (size_t i = 0; i < g_module_count; ++i) {
    Module& m = g_modules[i];
    if (m.alive && m.load_address == load && m.path_len == len &&
        std::memcmp(m.path, name, len) == 0) {
      m.seen = true;
      return 0;
    }
  }
  if (g_module_count == kMaxModules) return 0;
  Module& m = g_modules[g_module_count++];
  m = Module{};
  m.id = g_next_id++;
  m.load_address = load;
  m.path = CopyString(name, len);
  m.path_len = len;
  for (int i = 0; i < info->dlpi_phnum && m.segment_count < 16; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    m.segments[m.segment_count++] = format::SegmentInfo{
        ph.p_vaddr, ph.p_memsz, ph.p_offset, static_cast<uint8_t>(ph.p_flags & 7)};
  }
  ReadBuildId(info, &m);
  m.alive = true;
  m.seen = true;
  return 0;
}

}  // namespace

const char* ExecutablePath() {
  if (!g_exe_path_known) {
    ssize_t n = readlink("/proc/self/exe", g_exe_path, sizeof g_exe_path - 1);
    g_exe_path[n > 0 ? n : 0] = '\0';
    g_exe_path_known = true;
  }
  return g_exe_path;
}

void RescanModules(const ModuleSink& sink) {
  SpinLockHolder hold(&g_lock);
  if (g_modules == nullptr) {
    g_modules = static_cast<Module*>(PageAlloc(kMaxModules * sizeof(Module)));
    if (g_modules == nullptr) return;
  }
  size_t before = g_module_count;
  for (size_t i = 0; i < g_module_count; ++i) g_modules[i].seen = false;
  ScanState scan;
  GatedIteratePhdr(ScanOne, &scan);  // fork_gate.h
  for (size_t i = 0; i < before; ++i) {
    Module& m = g_modules[i];
    if (m.alive && !m.seen) {
      m.alive = false;
      sink.unloaded(m.id, sink.ctx);
    }
  }
  for (size_t i = before; i < g_module_count; ++i) sink.loaded(g_modules[i], sink.ctx);
}

bool ModulesChanged() {
  struct Counts {
    unsigned long long adds, subs;
  } counts{0, 0};
  GatedIteratePhdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto* c = static_cast<Counts*>(data);
        c->adds = info->dlpi_adds;
        c->subs = info->dlpi_subs;
        return 1;  // the counters are the same in every entry: stop
      },
      &counts);
  SpinLockHolder hold(&g_lock);
  return counts.adds != g_adds || counts.subs != g_subs;
}

void ForEachLiveModule(const ModuleSink& sink) {
  SpinLockHolder hold(&g_lock);
  for (size_t i = 0; i < g_module_count; ++i) {
    if (g_modules[i].alive) sink.loaded(g_modules[i], sink.ctx);
  }
}

bool ModuleRangeOf(uintptr_t address, uintptr_t* begin, uintptr_t* end) {
  SpinLockHolder hold(&g_lock);
  for (size_t i = 0; i < g_module_count; ++i) {
    const Module& m = g_modules[i];
    if (!m.alive || m.segment_count == 0) continue;
    uintptr_t lo = UINTPTR_MAX, hi = 0;
    for (size_t s = 0; s < m.segment_count; ++s) {
      uintptr_t a = m.load_address + m.segments[s].vaddr;
      if (a < lo) lo = a;
      if (a + m.segments[s].memsz > hi) hi = a + m.segments[s].memsz;
    }
    if (address >= lo && address < hi) {
      *begin = lo;
      *end = hi;
      return true;
    }
  }
  return false;
}

void LockModules() { g_lock.Lock(); }
void UnlockModules() { g_lock.Unlock(); }
void ResetModuleLockInChild() { g_lock.ResetInChild(); }

}  // namespace heapsight::preload
