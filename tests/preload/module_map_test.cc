// tests/preload/module_map_test.cc: the module map (preload/module_map.h)
// against what the ELF files on disk say: the test executable and libc are
// found with their real paths, GNU build ids and PT_LOAD segments; dlopen
// and dlclose are noticed and reported once; ids are never reused.
#include "preload/module_map.h"

#include <dlfcn.h>
#include <elf.h>
#include <gtest/gtest.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <tuple>
#include <vector>

namespace heapsight::preload {
namespace {

using Segment = std::tuple<uint64_t, uint64_t, uint64_t, int>;  // vaddr, memsz, offset, flags

struct Seen {
  uint64_t id = 0;
  uint64_t load = 0;
  std::string path;
  std::string build_id;  // raw bytes
  std::vector<Segment> segments;
};

struct Changes {
  std::vector<Seen> loaded;
  std::vector<uint64_t> unloaded;
};

Seen Copy(const Module& m) {
  Seen s;
  s.id = m.id;
  s.load = m.load_address;
  s.path.assign(m.path, m.path_len);
  s.build_id.assign(reinterpret_cast<const char*>(m.build_id), m.build_id_len);
  for (size_t i = 0; i < m.segment_count; ++i) {
    const format::SegmentInfo& g = m.segments[i];
    s.segments.emplace_back(g.vaddr, g.memsz, g.file_offset, g.flags);
  }
  return s;
}

ModuleSink SinkFor(Changes* c) {
  return ModuleSink{
      [](const Module& m, void* ctx) { static_cast<Changes*>(ctx)->loaded.push_back(Copy(m)); },
      [](uint64_t id, void* ctx) { static_cast<Changes*>(ctx)->unloaded.push_back(id); }, c};
}

Changes Rescan() {
  Changes c;
  RescanModules(SinkFor(&c));
  return c;
}

std::vector<Seen> LiveModules() {
  Rescan();
  Changes c;
  ForEachLiveModule(SinkFor(&c));
  return c.loaded;
}

// What the file on disk says: its PT_LOAD segments and GNU build id.
struct ElfFacts {
  std::vector<Segment> segments;
  std::string build_id;
};

ElfFacts ReadElf(const std::string& path) {
  ElfFacts facts;
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_GE(bytes.size(), sizeof(Elf64_Ehdr)) << path;
  if (bytes.size() < sizeof(Elf64_Ehdr)) return facts;
  Elf64_Ehdr eh;
  std::memcpy(&eh, bytes.data(), sizeof eh);
  for (int i = 0; i < eh.e_phnum; ++i) {
    Elf64_Phdr ph;
    size_t at = eh.e_phoff + static_cast<size_t>(i) * eh.e_phentsize;
    if (at + sizeof ph > bytes.size()) break;
    std::memcpy(&ph, bytes.data() + at, sizeof ph);
    if (ph.p_type == PT_LOAD) {
      facts.segments.emplace_back(ph.p_vaddr, ph.p_memsz, ph.p_offset, static_cast<int>(ph.p_flags & 7));
    }
    if (ph.p_type != PT_NOTE) continue;
    for (size_t p = ph.p_offset; p + sizeof(Elf64_Nhdr) <= ph.p_offset + ph.p_filesz;) {
      Elf64_Nhdr nh;
      std::memcpy(&nh, bytes.data() + p, sizeof nh);
      size_t name = p + sizeof nh;
      size_t desc = name + ((nh.n_namesz + 3) & ~3u);
      if (nh.n_type == NT_GNU_BUILD_ID && nh.n_namesz == 4 && bytes.compare(name, 4, std::string("GNU\0", 4)) == 0) {
        facts.build_id = bytes.substr(desc, nh.n_descsz);
      }
      p = desc + ((nh.n_descsz + 3) & ~3u);
    }
  }
  return facts;
}

std::string RealPath(const std::string& path) {
  char buf[PATH_MAX];
  return realpath(path.c_str(), buf) != nullptr ? buf : "";
}

const std::string kSelf = std::string(HEAPSIGHT_BUILD_ROOT) + "/tests/preload/module_map_test";
const std::string kPlugin = std::string(HEAPSIGHT_BUILD_ROOT) + "/tests/preload/libmodule_map_plugin.so";

void ExpectMatchesFile(const Seen& m, const std::string& file) {
  SCOPED_TRACE(m.path);
  ElfFacts facts = ReadElf(file);
  ASSERT_FALSE(facts.segments.empty());
  EXPECT_EQ(m.segments, facts.segments);
  ASSERT_EQ(facts.build_id.size(), 20u) << "no GNU build id in " << file;  // sha1, the default
  EXPECT_EQ(m.build_id, facts.build_id);
}

__attribute__((noinline)) int FunctionInTheExecutable() { return 7; }

TEST(ModuleMap, ExecutablePathIsTheRealPath) {
  ASSERT_NE(RealPath(kSelf), "");
  EXPECT_EQ(std::string(ExecutablePath()), RealPath(kSelf));
}

TEST(ModuleMap, FindsTheExecutableAndLibcAsTheirFilesDescribeThem) {
  std::vector<Seen> modules = LiveModules();
  ASSERT_GE(modules.size(), 3u);  // the executable, libc, the loader at least
  // The executable comes first (dl_iterate_phdr's order), by its real path.
  EXPECT_EQ(modules[0].path, RealPath(kSelf));
  ExpectMatchesFile(modules[0], kSelf);
  auto code = reinterpret_cast<uintptr_t>(&FunctionInTheExecutable);
  bool in_exec_segment = false;
  for (const auto& [vaddr, memsz, offset, flags] : modules[0].segments) {
    (void)offset;
    uint64_t lo = modules[0].load + vaddr;
    in_exec_segment = in_exec_segment || ((flags & 1) != 0 && code >= lo && code < lo + memsz);
  }
  EXPECT_TRUE(in_exec_segment);

  const Seen* libc = nullptr;
  for (const Seen& m : modules) {
    EXPECT_EQ(m.path[0], '/') << m.path;  // every path is absolute; no vDSO
    EXPECT_EQ(m.path.find("linux-vdso"), std::string::npos);
    if (m.path.size() > 10 && m.path.compare(m.path.size() - 10, 10, "/libc.so.6") == 0) libc = &m;
  }
  ASSERT_NE(libc, nullptr);
  ExpectMatchesFile(*libc, libc->path);
  // libc's getpid is inside libc's range.
  uintptr_t begin = 0, end = 0;
  ASSERT_TRUE(ModuleRangeOf(reinterpret_cast<uintptr_t>(&getpid), &begin, &end));
  EXPECT_GE(begin, libc->load);
  // Ids are distinct.
  for (size_t i = 0; i < modules.size(); ++i) {
    for (size_t j = i + 1; j < modules.size(); ++j) EXPECT_NE(modules[i].id, modules[j].id);
  }
}

TEST(ModuleMap, RangeOfAnAddressSpansItsModulesSegments) {
  std::vector<Seen> modules = LiveModules();
  ASSERT_FALSE(modules.empty());
  uintptr_t begin = 0, end = 0;
  ASSERT_TRUE(ModuleRangeOf(reinterpret_cast<uintptr_t>(&FunctionInTheExecutable), &begin, &end));
  uint64_t lo = UINT64_MAX, hi = 0;
  for (const auto& [vaddr, memsz, offset, flags] : modules[0].segments) {
    lo = std::min(lo, modules[0].load + vaddr);
    hi = std::max(hi, modules[0].load + vaddr + memsz);
  }
  EXPECT_EQ(begin, lo);
  EXPECT_EQ(end, hi);
  int on_the_stack = 0;
  EXPECT_FALSE(ModuleRangeOf(reinterpret_cast<uintptr_t>(&on_the_stack), &begin, &end));
  EXPECT_FALSE(ModuleRangeOf(0, &begin, &end));
}

TEST(ModuleMap, DlopenAndDlcloseAreReportedOnce) {
  Rescan();
  EXPECT_FALSE(ModulesChanged());
  Changes nothing = Rescan();
  EXPECT_TRUE(nothing.loaded.empty());
  EXPECT_TRUE(nothing.unloaded.empty());

  void* handle = dlopen(kPlugin.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  EXPECT_TRUE(ModulesChanged());
  Changes opened = Rescan();
  EXPECT_FALSE(ModulesChanged());
  ASSERT_EQ(opened.loaded.size(), 1u);
  EXPECT_TRUE(opened.unloaded.empty());
  const Seen plugin = opened.loaded[0];
  EXPECT_EQ(plugin.path, kPlugin);
  ExpectMatchesFile(plugin, kPlugin);
  auto fn = reinterpret_cast<uintptr_t>(dlsym(handle, "module_map_plugin_answer"));
  uintptr_t begin = 0, end = 0;
  ASSERT_TRUE(ModuleRangeOf(fn, &begin, &end));
  EXPECT_GE(begin, plugin.load);

  ASSERT_EQ(dlclose(handle), 0);
  EXPECT_TRUE(ModulesChanged());
  Changes closed = Rescan();
  EXPECT_TRUE(closed.loaded.empty());
  EXPECT_EQ(closed.unloaded, std::vector<uint64_t>{plugin.id});
  EXPECT_FALSE(ModuleRangeOf(fn, &begin, &end));

  // Loaded again: a new id.
  handle = dlopen(kPlugin.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  Changes again = Rescan();
  ASSERT_EQ(again.loaded.size(), 1u);
  EXPECT_GT(again.loaded[0].id, plugin.id);
  EXPECT_EQ(again.loaded[0].path, kPlugin);
  ASSERT_EQ(dlclose(handle), 0);
  EXPECT_EQ(Rescan().unloaded, std::vector<uint64_t>{again.loaded[0].id});
}

TEST(ModuleMap, RelativeDlopenPathIsMadeAbsolute) {
  Rescan();
  char cwd[PATH_MAX];
  ASSERT_NE(getcwd(cwd, sizeof cwd), nullptr);
  std::string dir = kPlugin.substr(0, kPlugin.rfind('/'));
  ASSERT_EQ(chdir(dir.c_str()), 0);
  void* handle = dlopen("./libmodule_map_plugin.so", RTLD_NOW | RTLD_LOCAL);
  Changes opened = Rescan();
  ASSERT_EQ(chdir(cwd), 0);
  ASSERT_NE(handle, nullptr) << dlerror();
  ASSERT_EQ(opened.loaded.size(), 1u);
  // The loader keeps the name as given; the map prefixes the directory.
  EXPECT_EQ(opened.loaded[0].path, RealPath(dir) + "/./libmodule_map_plugin.so");
  EXPECT_EQ(RealPath(opened.loaded[0].path), RealPath(kPlugin));
  ASSERT_EQ(dlclose(handle), 0);
  EXPECT_EQ(Rescan().unloaded.size(), 1u);
}

}  // namespace
}  // namespace heapsight::preload
