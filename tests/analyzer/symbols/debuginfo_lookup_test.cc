// tests/analyzer/symbols/debuginfo_lookup_test.cc: OpenInMemoryDwarf, the
// DWARF session over a compressed debug file inflated into memory and handed
// to libdwfl as the module's own ELF (elf_memory). Its lookups must be those
// of a session reading the uncompressed DWARF: the same bias, unit, source
// file and line at every function of this test binary, whose debug info is
// split off and compressed (zlib, zstd) under a build-id directory.
//
// The debug directories are read once per process (HEAPSIGHT_DEBUGINFO_PATH,
// at start-up), so the parent test runs this binary again with the variable
// set, and the child test does the comparisons.
#include "analyzer/symbols/debuginfo_lookup.h"

#include <elfutils/libdw.h>
#include <elfutils/libdwelf.h>
#include <fcntl.h>
#include <gelf.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

constexpr char kChildFilter[] = "InMemoryDwarfChildTest.*";

// This binary's build id, in hex.
std::string SelfBuildId() {
  int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return "";
  elf_version(EV_CURRENT);
  Elf* elf = elf_begin(fd, ELF_C_READ_MMAP, nullptr);
  std::string hex;
  const void* id = nullptr;
  ssize_t n = elf != nullptr ? dwelf_elf_gnu_build_id(elf, &id) : -1;
  for (ssize_t i = 0; i < n; ++i) {
    absl::StrAppendFormat(&hex, "%02x", static_cast<const unsigned char*>(id)[i]);
  }
  if (elf != nullptr) elf_end(elf);
  close(fd);
  return hex;
}

// A session over `path` (this binary, or its copy without DWARF), reported
// as the symbolizer reports files: at bias 0, ELF addresses.
Dwfl_Module* Report(Dwfl* dwfl, const char* path) {
  dwfl_report_begin(dwfl);
  Dwfl_Module* mod = dwfl_report_elf(dwfl, "self", path, -1, 0, true);
  dwfl_report_end(dwfl, nullptr, nullptr);
  return mod;
}
Dwfl_Module* ReportSelf(Dwfl* dwfl) { return Report(dwfl, "/proc/self/exe"); }

struct Lookup {
  Dwarf_Addr bias = 0;
  Dwarf_Off cu = 0;  // 0: no unit
  std::string file;
  int line = 0;
};

Lookup LookUp(Dwfl_Module* mod, Dwarf_Addr addr) {
  Lookup out;
  if (Dwarf_Die* cu = dwfl_module_addrdie(mod, addr, &out.bias)) out.cu = dwarf_dieoffset(cu);
  if (Dwfl_Line* line = dwfl_module_getsrc(mod, addr)) {
    if (const char* f = dwfl_lineinfo(line, nullptr, &out.line, nullptr, nullptr, nullptr)) {
      out.file = f;
    }
  }
  return out;
}

// The child: HEAPSIGHT_DEBUGINFO_PATH names a directory holding this
// binary's compressed debug file by build id, HEAPSIGHT_DEBUGINFO_LOOKUP_CHILD
// a copy of this binary without its DWARF (as distributions ship files).
TEST(InMemoryDwarfChildTest, LooksUpAsTheUncompressedDwarfDoes) {
  const char* stripped = std::getenv("HEAPSIGHT_DEBUGINFO_LOOKUP_CHILD");
  if (stripped == nullptr) GTEST_SKIP() << "run by InMemoryDwarfTest";
  // libdwfl's defaults: the file's own DWARF is found first.
  static char* no_path = nullptr;
  static const Dwfl_Callbacks kPlain = {
      .find_elf = dwfl_build_id_find_elf,
      .find_debuginfo = dwfl_standard_find_debuginfo,
      .section_address = dwfl_offline_section_address,
      .debuginfo_path = &no_path,
  };
  Dwfl* plain = dwfl_begin(&kPlain);
  ASSERT_NE(plain, nullptr);
  Dwfl_Module* reference = ReportSelf(plain);
  ASSERT_NE(reference, nullptr);
  Dwarf_Addr reference_bias = 0;
  ASSERT_NE(dwfl_module_getdwarf(reference, &reference_bias), nullptr);

  // The symbolizer's symbol-table session of the file. The binary itself,
  // which has DWARF of its own, keeps it: no in-memory session.
  Dwfl* own = dwfl_begin(&SymbolTableCallbacks());
  ASSERT_NE(own, nullptr);
  Dwfl_Module* with_dwarf = ReportSelf(own);
  ASSERT_NE(with_dwarf, nullptr);
  EXPECT_EQ(OpenInMemoryDwarf(with_dwarf).dwfl, nullptr);
  dwfl_end(own);
  Dwfl* tables = dwfl_begin(&SymbolTableCallbacks());
  ASSERT_NE(tables, nullptr);
  Dwfl_Module* module = Report(tables, stripped);
  ASSERT_NE(module, nullptr);

  InMemoryDwarf dwarf = OpenInMemoryDwarf(module);
  ASSERT_NE(dwarf.dwfl, nullptr) << "the compressed debug file was not found by build id";
  ASSERT_NE(dwarf.module, nullptr);
  ASSERT_NE(dwarf.image.data(), nullptr);
  Dwarf_Addr bias = 1;
  ASSERT_NE(dwfl_module_getdwarf(dwarf.module, &bias), nullptr);
  EXPECT_EQ(bias, reference_bias);

  // Every function symbol of this binary: its first byte, one past it and
  // its middle, looked up both ways.
  int nsyms = dwfl_module_getsymtab(reference);
  ASSERT_GT(nsyms, 100);
  size_t compared = 0, with_line = 0;
  for (int i = 0; i < nsyms; ++i) {
    GElf_Sym sym;
    GElf_Addr value = 0;
    const char* name = dwfl_module_getsym_info(reference, i, &sym, &value, nullptr, nullptr,
                                               nullptr);
    if (name == nullptr || GELF_ST_TYPE(sym.st_info) != STT_FUNC || sym.st_size == 0) continue;
    for (Dwarf_Addr addr : {value, value + 1, value + sym.st_size / 2}) {
      SCOPED_TRACE(absl::StrCat(name, " +", addr - value));
      Lookup want = LookUp(reference, addr);
      Lookup got = LookUp(dwarf.module, addr);
      EXPECT_EQ(got.bias, want.bias);
      EXPECT_EQ(got.cu, want.cu);
      EXPECT_EQ(got.file, want.file);
      EXPECT_EQ(got.line, want.line);
      ++compared;
      if (want.line != 0) ++with_line;
    }
  }
  EXPECT_GT(compared, 300u);
  // This binary's own code and gtest's have line info (the static abseil
  // and protobuf archives' do not).
  EXPECT_GT(with_line, 1000u);
  dwfl_end(dwarf.dwfl);  // before the image goes
  dwfl_end(tables);
  dwfl_end(plain);
}

// Without a debug file for the build id there is no in-memory session (the
// symbolizer then takes the memfd path, which finds nothing either).
TEST(InMemoryDwarfNoFileTest, NoDebugFileNoSession) {
  if (std::getenv("HEAPSIGHT_DEBUGINFO_LOOKUP_CHILD") != nullptr) GTEST_SKIP();
  Dwfl* tables = dwfl_begin(&SymbolTableCallbacks());
  ASSERT_NE(tables, nullptr);
  Dwfl_Module* module = ReportSelf(tables);
  ASSERT_NE(module, nullptr);
  // This process's debug directories are /usr/lib/debug or the
  // environment's: neither holds this test binary's build id.
  InMemoryDwarf dwarf = OpenInMemoryDwarf(module);
  EXPECT_EQ(dwarf.dwfl, nullptr);
  EXPECT_EQ(dwarf.module, nullptr);
  EXPECT_EQ(dwarf.image.data(), nullptr);
  dwfl_end(tables);
}

class InMemoryDwarfTest : public ::testing::TestWithParam<const char*> {};

TEST_P(InMemoryDwarfTest, SameLookupsAsTheUncompressedDwarf) {
  if (std::getenv("HEAPSIGHT_DEBUGINFO_LOOKUP_CHILD") != nullptr) GTEST_SKIP();
  std::string id = SelfBuildId();
  ASSERT_GT(id.size(), 2u);
  char dir[] = "/tmp/heapsight-inmemory-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  std::string sub = absl::StrCat(dir, "/.build-id/", id.substr(0, 2));
  std::string debug = absl::StrCat(sub, "/", id.substr(2), ".debug");
  std::string stripped = absl::StrCat(dir, "/self.stripped");
  std::string make = absl::StrCat("mkdir -p ", sub, " && objcopy --only-keep-debug ",
                                  "--compress-debug-sections=", GetParam(), " /proc/", getpid(),
                                  "/exe ", debug, " 2>/dev/null && objcopy --strip-debug /proc/",
                                  getpid(), "/exe ", stripped);
  if (std::system(make.c_str()) != 0) {
    std::system(absl::StrCat("rm -rf ", dir).c_str());
    GTEST_SKIP() << "objcopy cannot compress with " << GetParam();
  }
  std::string run = absl::StrCat("HEAPSIGHT_DEBUGINFO_LOOKUP_CHILD=", stripped,
                                 " HEAPSIGHT_DEBUGINFO_PATH=",
                                 dir, " /proc/", getpid(), "/exe --gtest_filter=", kChildFilter,
                                 " > ", dir, "/child.log 2>&1");
  int status = std::system(run.c_str());
  std::string log;
  if (FILE* f = std::fopen(absl::StrCat(dir, "/child.log").c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) log.append(buf, n);
    std::fclose(f);
  }
  std::system(absl::StrCat("rm -rf ", dir).c_str());
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << log;
  EXPECT_NE(log.find("[  PASSED  ] 1 test"), std::string::npos) << log;
}

INSTANTIATE_TEST_SUITE_P(ZlibAndZstd, InMemoryDwarfTest, ::testing::Values("zlib", "zstd"));

}  // namespace
}  // namespace heapsight::analyzer
