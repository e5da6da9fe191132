// analyzer/symbols/debuginfo_lookup.cc: see debuginfo_lookup.h.
#include "analyzer/symbols/debuginfo_lookup.h"

#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "analyzer/symbols/inflated_debug_file.h"

namespace heapsight::analyzer {
namespace {

// elfutils' search path for separate debug files: "" (next to the file),
// ".debug" (its subdirectory), then the debug directories, each also
// searched by build id (<dir>/.build-id/xx/yyyy.debug).
char* DebuginfoPathFromEnvironment() {
  static std::string* path = [] {
    const char* dirs = std::getenv("HEAPSIGHT_DEBUGINFO_PATH");
    return new std::string(absl::StrCat(":.debug:", dirs != nullptr && *dirs != '\0'
                                                        ? dirs
                                                        : "/usr/lib/debug"));
  }();
  return path->data();
}
char* kDebuginfoPath = DebuginfoPathFromEnvironment();

// True if the ELF file open at `fd` carries build id `bits`.
bool HasBuildId(int fd, const unsigned char* bits, int len) {
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  if (elf == nullptr) return false;
  const void* id = nullptr;
  ssize_t n = dwelf_elf_gnu_build_id(elf, &id);
  bool same = n == len && std::memcmp(id, bits, static_cast<size_t>(len)) == 0;
  elf_end(elf);
  return same;
}

// The debug file <dir>/.build-id/xx/yyyy.debug of `mod`'s build id in the
// first absolute debug directory that has it, opened, or -1.
int OpenByBuildId(Dwfl_Module* mod, char** debuginfo_file_name) {
  const unsigned char* bits = nullptr;
  GElf_Addr vaddr = 0;
  int len = dwfl_module_build_id(mod, &bits, &vaddr);
  if (len < 2) return -1;
  std::string hex;
  for (int i = 0; i < len; ++i) absl::StrAppendFormat(&hex, "%02x", bits[i]);
  for (absl::string_view dir : absl::StrSplit(kDebuginfoPath, ':')) {
    if (dir.empty() || dir[0] != '/') continue;  // "" and ".debug": next to the file
    std::string path =
        absl::StrCat(dir, "/.build-id/", hex.substr(0, 2), "/", hex.substr(2), ".debug");
    int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    if (HasBuildId(fd, bits, len)) {
      *debuginfo_file_name = strdup(path.c_str());
      return fd;
    }
    close(fd);
  }
  return -1;
}

// The DWARF sessions' find_debuginfo. libdwfl's own build-id lookup
// (dwfl_build_id_find_debuginfo, the standard lookup's first step) opens
// the file into the module itself and ignores the descriptor returned, so
// the build-id step is done here; the rest (.gnu_debuglink, debuginfod) is
// the standard lookup's, whose descriptor libdwfl does use.
int FindInflatedDebuginfo(Dwfl_Module* mod, void** userdata, const char* modname,
                          Dwarf_Addr base, const char* file_name, const char* debuglink_file,
                          GElf_Word debuglink_crc, char** debuginfo_file_name) {
  int fd = OpenByBuildId(mod, debuginfo_file_name);
  if (fd < 0) {
    errno = 0;
    fd = dwfl_standard_find_debuginfo(mod, userdata, modname, base, file_name,
                                      debuglink_file, debuglink_crc, debuginfo_file_name);
  }
  if (fd < 0) return fd;
  absl::StatusOr<int> inflated = InflateDebugFile(fd);
  if (!inflated.ok()) return fd;  // nothing compressed, or left to libdw
  close(fd);
  return *inflated;
}

// The in-memory DWARF sessions' find_elf: the module's userdata is the
// image's Elf (set by OpenInMemoryDwarf before libdwfl asks), which
// libdwfl then owns.
int FindImageElf(Dwfl_Module*, void** userdata, const char*, Dwarf_Addr, char**, Elf** elfp) {
  *elfp = static_cast<Elf*>(*userdata);
  *userdata = nullptr;
  return -1;
}

// Their find_debuginfo: the image has its DWARF; a module without any has
// none elsewhere either.
int FindNoDebuginfo(Dwfl_Module*, void**, const char*, Dwarf_Addr, const char*, const char*,
                    GElf_Word, char**) {
  return -1;
}

const Dwfl_Callbacks kImageCallbacks = {
    .find_elf = FindImageElf,
    .find_debuginfo = FindNoDebuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &kDebuginfoPath,
};

const Dwfl_Callbacks kSymbolTableCallbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &kDebuginfoPath,
};

const Dwfl_Callbacks kDwarfCallbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = FindInflatedDebuginfo,
    .section_address = dwfl_offline_section_address,
    .debuginfo_path = &kDebuginfoPath,
};

}  // namespace

const Dwfl_Callbacks& SymbolTableCallbacks() { return kSymbolTableCallbacks; }
const Dwfl_Callbacks& DwarfCallbacks() { return kDwarfCallbacks; }

namespace {

// True if the ELF file has a .debug_info section with contents: libdwfl
// reads a file's own DWARF before looking for a separate debug file.
bool HasOwnDwarf(Elf* elf) {
  size_t shstrndx = 0;
  if (elf == nullptr || elf_getshdrstrndx(elf, &shstrndx) != 0) return false;
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr || shdr.sh_type == SHT_NOBITS) continue;
    const char* name = elf_strptr(elf, shstrndx, shdr.sh_name);
    if (name != nullptr && std::strcmp(name, ".debug_info") == 0) return true;
  }
  return false;
}

}  // namespace

InMemoryDwarf OpenInMemoryDwarf(Dwfl_Module* module) {
  InMemoryDwarf out;
  // A file with DWARF of its own keeps it (DwarfCallbacks' session reads
  // it, as libdwfl does), even if a debug file exists too.
  GElf_Addr main_bias = 0;
  if (HasOwnDwarf(dwfl_module_getelf(module, &main_bias))) return out;
  Dwarf_Addr start = 0, end = 0;
  const char* name =
      dwfl_module_info(module, nullptr, &start, &end, nullptr, nullptr, nullptr, nullptr);
  if (name == nullptr || end <= start) return out;
  char* found = nullptr;
  int fd = OpenByBuildId(module, &found);
  std::free(found);
  if (fd < 0) return out;
  absl::StatusOr<InflatedDebugImage> image = InflateDebugImage(fd);
  close(fd);
  if (!image.ok()) return out;  // nothing compressed: DwarfCallbacks' path
  Elf* elf = elf_memory(reinterpret_cast<char*>(image->data()), image->size());
  if (elf == nullptr) return out;
  if (elf_kind(elf) != ELF_K_ELF) {
    elf_end(elf);
    return out;
  }
  Dwfl* dwfl = dwfl_begin(&kImageCallbacks);
  if (dwfl == nullptr) {
    elf_end(elf);
    return out;
  }
  dwfl_report_begin(dwfl);
  // The same name and address range as the module's own file: the debug
  // file's program headers are the file's, so libdwfl computes the same
  // bias (the range's start less the first PT_LOAD's aligned address).
  Dwfl_Module* mod = dwfl_report_module(dwfl, name, start, end);
  dwfl_report_end(dwfl, nullptr, nullptr);
  void** userdata = nullptr;
  if (mod == nullptr ||
      dwfl_module_info(mod, &userdata, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr) ==
          nullptr) {
    dwfl_end(dwfl);
    elf_end(elf);
    return out;
  }
  *userdata = elf;  // FindImageElf hands it to libdwfl
  out.dwfl = dwfl;
  out.module = mod;
  out.image = std::move(*image);
  return out;
}

}  // namespace heapsight::analyzer
