// preload/root_regions.cc: see root_regions.h.
//
// Constraints: no malloc; /proc/self/maps is read with open/read into
// PageAlloc memory.
#include "preload/root_regions.h"

#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <unistd.h>

#include "preload/fork_gate.h"
#include "preload/internal_alloc.h"

namespace heapsight::preload {
namespace {

uintptr_t ParseHex(const char** p) {
  uintptr_t v = 0;
  for (;; ++*p) {
    char c = **p;
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return v;
    v = v * 16 + static_cast<uintptr_t>(d);
  }
}

bool NameStarts(const char* name, size_t len, const char* prefix) {
  size_t i = 0;
  for (; prefix[i] != '\0'; ++i) {
    if (i >= len || name[i] != prefix[i]) return false;
  }
  return true;
}

bool NameIs(const char* name, size_t len, const char* want) {
  size_t i = 0;
  for (; want[i] != '\0'; ++i) {
    if (i >= len || name[i] != want[i]) return false;
  }
  return i == len;
}

struct CollectCtx {
  uintptr_t self;
  uintptr_t tp;
  ModuleRoots* out;
};

int CollectOne(struct dl_phdr_info* info, size_t, void* data) {
  auto* ctx = static_cast<CollectCtx*>(data);
  ModuleRoots* out = ctx->out;
  bool is_self = false;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    if (ctx->self >= lo && ctx->self < lo + ph.p_memsz) is_self = true;
  }
  if (is_self) {
    for (int i = 0; i < info->dlpi_phnum; ++i) {
      const ElfW(Phdr)& ph = info->dlpi_phdr[i];
      if (ph.p_type == PT_LOAD && (ph.p_flags & PF_W) != 0 && ph.p_memsz != 0 &&
          out->self_range_count < ModuleRoots::kMaxSelfRanges) {
        // Up to the page end: the bss tail shares the segment's last page.
        uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
        uintptr_t hi = (lo + ph.p_memsz + 4095) & ~uintptr_t{4095};
        out->self_ranges[out->self_range_count++] = AddressRange{lo & ~uintptr_t{4095}, hi};
      }
      if (ph.p_type == PT_TLS && ph.p_memsz != 0 && info->dlpi_tls_data != nullptr) {
        auto data = reinterpret_cast<uintptr_t>(info->dlpi_tls_data);
        if (data < ctx->tp && ctx->tp - data < (uintptr_t{64} << 20)) {
          out->self_tls = TlsModule{ctx->tp - data, ph.p_memsz};
        }
      }
    }
    return 0;
  }
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type == PT_LOAD && (ph.p_flags & PF_W) != 0 && ph.p_memsz != 0 &&
        out->range_count < ModuleRoots::kMaxRanges) {
      uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
      out->ranges[out->range_count++] = AddressRange{lo, lo + ph.p_memsz};
    }
    if (ph.p_type == PT_TLS && ph.p_memsz != 0 && info->dlpi_tls_data != nullptr &&
        out->tls_count < ModuleRoots::kMaxTls) {
      // Static TLS sits just below the thread pointer; a module whose block
      // was allocated dynamically (dlopen without static TLS room) is a
      // heap block reached through the DTV instead.
      auto data = reinterpret_cast<uintptr_t>(info->dlpi_tls_data);
      if (data < ctx->tp && ctx->tp - data < (uintptr_t{64} << 20)) {
        out->tls[out->tls_count++] = TlsModule{ctx->tp - data, ph.p_memsz};
      }
    }
  }
  return 0;
}

// Removes [lo, hi) from the mappings (it is about to be unmapped); a
// mapping split in two takes one more slot, if `capacity` has room.
void CutRange(MemoryMap* map, uintptr_t lo, uintptr_t hi, size_t capacity) {
  for (size_t i = 0; i < map->count; ++i) {
    Vma& v = map->vmas[i];
    if (v.end <= lo || v.start >= hi) continue;
    if (v.start < lo && v.end > hi) {
      if (map->count >= capacity) {
        v.end = lo;  // lose the upper part rather than keep the hole
        return;
      }
      for (size_t k = map->count; k > i + 1; --k) map->vmas[k] = map->vmas[k - 1];
      map->vmas[i + 1] = v;
      map->vmas[i + 1].start = hi;
      map->vmas[i].end = lo;
      ++map->count;
      return;
    }
    if (v.start < lo) {
      v.end = lo;
    } else if (v.end > hi) {
      v.start = hi;
    } else {
      for (size_t k = i; k + 1 < map->count; ++k) map->vmas[k] = map->vmas[k + 1];
      --map->count;
      --i;
    }
  }
}

}  // namespace

const Vma* MemoryMap::Find(uintptr_t address) const {
  size_t lo = 0, hi = count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (vmas[mid].end <= address) {
      lo = mid + 1;
    } else {
      hi = mid;
    }
  }
  if (lo < count && vmas[lo].start <= address && address < vmas[lo].end) return &vmas[lo];
  return nullptr;
}

bool MemoryMap::Readable(uintptr_t lo, uintptr_t hi) const {
  while (lo < hi) {
    const Vma* v = Find(lo);
    if (v == nullptr || !v->readable) return false;
    lo = v->end;
  }
  return true;
}

bool ReadMemoryMap(MemoryMap* out) {
  *out = MemoryMap{};
  int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  // The text, read whole (it must be one consistent snapshot as far as the
  // kernel allows), grown by doubling.
  size_t cap = 1 << 20, len = 0;
  auto* text = static_cast<char*>(PageAlloc(cap));
  for (;;) {
    if (text == nullptr) {
      close(fd);
      return false;
    }
    if (len + 4096 >= cap) {
      auto* bigger = static_cast<char*>(PageAlloc(cap * 2));
      if (bigger != nullptr) {
        for (size_t i = 0; i < len; ++i) bigger[i] = text[i];
      }
      PageFree(text, cap);
      text = bigger;
      cap *= 2;
      continue;
    }
    ssize_t n = read(fd, text + len, cap - len - 1);
    if (n <= 0) break;
    len += static_cast<size_t>(n);
  }
  close(fd);
  text[len] = '\0';
  size_t lines = 0;
  for (size_t i = 0; i < len; ++i) lines += text[i] == '\n';
  out->bytes = (lines + 1) * sizeof(Vma);
  out->vmas = static_cast<Vma*>(PageAlloc(out->bytes));
  if (out->vmas == nullptr) {
    PageFree(text, cap);
    return false;
  }
  const char* p = text;
  while (*p != '\0') {
    Vma v;
    v.start = ParseHex(&p);
    if (*p == '-') ++p;
    v.end = ParseHex(&p);
    while (*p == ' ') ++p;
    v.readable = p[0] == 'r';
    v.writable = p[1] == 'w';
    v.executable = p[2] == 'x';
    v.shared = p[3] == 's';
    // perms offset dev inode [path]
    int field = 0;
    while (*p != '\0' && *p != '\n' && field < 4) {
      while (*p != '\0' && *p != ' ' && *p != '\n') ++p;
      while (*p == ' ') ++p;
      ++field;
    }
    v.file_backed = *p == '/';
    const char* name = p;
    while (*p != '\0' && *p != '\n') ++p;
    size_t name_len = static_cast<size_t>(p - name);
    v.brk_heap = NameIs(name, name_len, "[heap]");
    v.device = NameStarts(name, name_len, "/dev/") && !NameStarts(name, name_len, "/dev/zero") &&
               !NameStarts(name, name_len, "/dev/shm/");
    if (*p == '\n') ++p;
    if (v.end > v.start && out->count <= lines) out->vmas[out->count++] = v;
  }
  // The text buffer is unmapped now: the map must not list it as memory.
  CutRange(out, reinterpret_cast<uintptr_t>(text), reinterpret_cast<uintptr_t>(text) + cap,
           lines + 1);
  PageFree(text, cap);
  return true;
}

void FreeMemoryMap(MemoryMap* map) {
  if (map->vmas != nullptr) PageFree(map->vmas, map->bytes);
  *map = MemoryMap{};
}

bool CollectModuleRoots(uintptr_t self, uintptr_t thread_pointer, ModuleRoots* out) {
  *out = ModuleRoots{};
  out->bytes = ModuleRoots::kMaxRanges * sizeof(AddressRange) +
               ModuleRoots::kMaxTls * sizeof(TlsModule);
  auto* mem = static_cast<uint8_t*>(PageAlloc(out->bytes));
  if (mem == nullptr) return false;
  out->ranges = reinterpret_cast<AddressRange*>(mem);
  out->tls = reinterpret_cast<TlsModule*>(mem + ModuleRoots::kMaxRanges * sizeof(AddressRange));
  CollectCtx ctx{self, thread_pointer, out};
  GatedIteratePhdr(CollectOne, &ctx);  // fork_gate.h
  return true;
}

void FreeModuleRoots(ModuleRoots* roots) {
  if (roots->ranges != nullptr) PageFree(roots->ranges, roots->bytes);
  *roots = ModuleRoots{};
}

}  // namespace heapsight::preload
