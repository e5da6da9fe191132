// analyzer/symbols/module.cc: see module.h.
#include "analyzer/symbols/module.h"

#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <sys/stat.h>
#include <unistd.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"

namespace heapsight::analyzer {

bool Module::Contains(uint64_t addr) const {
  if (segments.empty()) return addr >= load_address;
  for (const format::SegmentInfo& s : segments) {
    uint64_t start = load_address + s.vaddr;
    if (addr >= start && addr - start < s.memsz) return true;
  }
  return false;
}

Module ModuleFromRecord(const format::Record::ModuleFields& fields, uint64_t time_us) {
  Module m;
  m.id = fields.id;
  m.load_address = fields.load_address;
  m.path = std::string(fields.path);
  m.build_id_hex = absl::BytesToHexString(absl::string_view(fields.build_id.data(), fields.build_id.size()));
  m.segments = fields.segments;
  m.load_time_us = time_us;
  return m;
}

void UnloadModule(std::vector<Module>& modules, uint64_t id, uint64_t time_us) {
  for (auto it = modules.rbegin(); it != modules.rend(); ++it) {
    if (it->id == id && it->unload_time_us == kNever) {
      it->unload_time_us = time_us;
      return;
    }
  }
}

std::string ReadBuildIdHex(const std::string& path) {
  if (path.empty() || path[0] != '/' || absl::StartsWith(path, "/proc/") ||
      absl::StartsWith(path, "/sys/") || absl::StartsWith(path, "/dev/")) {
    return "";
  }
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0) return "";
  struct stat st;
  std::string hex;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
    elf_version(EV_CURRENT);
    if (Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr)) {
      const void* bits = nullptr;
      ssize_t len = dwelf_elf_gnu_build_id(elf, &bits);
      static constexpr char kHex[] = "0123456789abcdef";
      for (ssize_t i = 0; i < len; ++i) {
        unsigned char c = static_cast<const unsigned char*>(bits)[i];
        hex.push_back(kHex[c >> 4]);
        hex.push_back(kHex[c & 15]);
      }
      elf_end(elf);
    }
  }
  close(fd);
  return hex;
}

}  // namespace heapsight::analyzer
