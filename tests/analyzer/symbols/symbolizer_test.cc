// tests/analyzer/symbols/symbolizer_test.cc: symbolization of this test binary's own
// code and libraries (function, file:line, inlined frames), allocator-frame
// stripping, bad ELF files, and the 100,000-stack speed target.
#include "analyzer/symbols/symbolizer.h"

#include <algorithm>
#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <exception>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "analyzer/symbols/debuginfod_gate.h"
#include "analyzer/symbols/runtime_filter.h"
#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

int g_inner_line = 0;
int g_outer_line = 0;
int g_plain_line = 0;

extern "C" __attribute__((noinline)) void* HeapsightTestCaptureReturn() {
  void* r = __builtin_return_address(0);
  asm volatile("" ::: "memory");
  return r;
}

__attribute__((always_inline)) inline void* InlinedHelper() {
  void* r = HeapsightTestCaptureReturn(); g_inner_line = __LINE__;
  return r;
}

__attribute__((noinline)) void* OuterWithInline() {
  void* r = InlinedHelper(); g_outer_line = __LINE__;
  asm volatile("" ::: "memory");
  return r;
}

__attribute__((noinline)) void* PlainCaller() {
  void* r = HeapsightTestCaptureReturn(); g_plain_line = __LINE__;
  asm volatile("" ::: "memory");
  return r;
}

int AddModule(dl_phdr_info* info, size_t, void* data) {
  auto* modules = static_cast<std::vector<Module>*>(data);
  Module m;
  m.id = modules->size() + 1;
  m.path = info->dlpi_name != nullptr ? info->dlpi_name : "";
  if (m.path.empty()) {
    char buf[4096];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) m.path.assign(buf, static_cast<size_t>(n));
  }
  m.load_address = info->dlpi_addr;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    m.segments.push_back({ph.p_vaddr, ph.p_memsz, ph.p_offset, static_cast<uint8_t>(ph.p_flags)});
  }
  modules->push_back(std::move(m));
  return 0;
}

std::vector<Module> OwnModules() {
  std::vector<Module> modules;
  dl_iterate_phdr(AddModule, &modules);
  return modules;
}

TEST(SymbolizerTest, NamesFunctionFileAndLine) {
  Symbolizer symbolizer(OwnModules());
  uint64_t ip = reinterpret_cast<uint64_t>(PlainCaller());
  const SymbolizedLocation& loc = symbolizer.Symbolize(ip);
  ASSERT_NE(loc.module, nullptr);
  ASSERT_EQ(loc.frames.size(), 1u);
  EXPECT_EQ(BareFunctionName(loc.frames[0].function),
            "heapsight::analyzer::(anonymous namespace)::PlainCaller");
  EXPECT_TRUE(absl::EndsWith(loc.frames[0].file, "symbolizer_test.cc")) << loc.frames[0].file;
  EXPECT_EQ(loc.frames[0].line, g_plain_line);
  EXPECT_FALSE(loc.frames[0].inlined);
  // Cached: same object.
  EXPECT_EQ(&symbolizer.Symbolize(ip), &loc);
}

TEST(SymbolizerTest, ExpandsInlinedFrames) {
  Symbolizer symbolizer(OwnModules());
  uint64_t ip = reinterpret_cast<uint64_t>(OuterWithInline());
  const SymbolizedLocation& loc = symbolizer.Symbolize(ip);
  ASSERT_EQ(loc.frames.size(), 2u);
  EXPECT_EQ(BareFunctionName(loc.frames[0].function),
            "heapsight::analyzer::(anonymous namespace)::InlinedHelper");
  EXPECT_TRUE(loc.frames[0].inlined);
  EXPECT_EQ(loc.frames[0].line, g_inner_line);
  EXPECT_EQ(BareFunctionName(loc.frames[1].function),
            "heapsight::analyzer::(anonymous namespace)::OuterWithInline");
  EXPECT_FALSE(loc.frames[1].inlined);
  EXPECT_EQ(loc.frames[1].line, g_outer_line);
  EXPECT_TRUE(absl::EndsWith(loc.frames[1].file, "symbolizer_test.cc"));
}

TEST(SymbolizerTest, DropsLeadingAllocatorFrames) {
  Symbolizer symbolizer(OwnModules());
  uint64_t in_malloc = reinterpret_cast<uint64_t>(dlsym(RTLD_DEFAULT, "malloc")) + 8;
  uint64_t caller = reinterpret_cast<uint64_t>(PlainCaller());
  const SymbolizedLocation& m = symbolizer.Symbolize(in_malloc);
  ASSERT_FALSE(m.frames.empty());
  EXPECT_TRUE(IsAllocatorFunction(m.frames.back().function)) << m.frames.back().function;
  auto stack = symbolizer.SymbolizeStack({in_malloc, in_malloc, caller});
  ASSERT_EQ(stack.size(), 1u);
  EXPECT_EQ(stack[0]->address, caller);
  // A stack of allocator frames only keeps its last frame.
  EXPECT_EQ(symbolizer.SymbolizeStack({in_malloc}).size(), 1u);
}

// FindModule answers the newest module containing an address, as a scan of
// every module's segments from the newest would: overlapping modules (a
// range reused after dlclose), a module without segments (everything from
// its load address up), a segment that reaches the top of the address
// space, and gaps.
TEST(SymbolizerTest, FindModuleIsTheNewestModuleContainingTheAddress) {
  auto module = [](uint64_t id, uint64_t load, std::vector<std::pair<uint64_t, uint64_t>> segs) {
    Module m;
    m.id = id;
    m.path = "/nonexistent/m" + std::to_string(id);
    m.load_address = load;
    for (auto [vaddr, memsz] : segs) m.segments.push_back({vaddr, memsz, 0, 5});
    return m;
  };
  std::vector<Module> modules = {
      module(1, 0x10000, {{0, 0x4000}, {0x6000, 0x2000}}),  // [0x10000,0x14000) [0x16000,0x18000)
      module(2, 0x13000, {{0, 0x4000}}),                     // over 1's first and its gap
      module(3, 0x11000, {{0, 0x1000}}),                     // inside 1, newer than 2
      module(4, 0x40000, {}),                                // no segments: 0x40000 and up
      module(5, 0x50000, {{0, 0x100}, {0x200, 0}}),          // an empty segment
      module(6, 0xffffffffffff0000, {{0, 0x20000}}),         // past the top: ends there
  };
  Symbolizer s(modules);
  auto id = [&](uint64_t ip) -> uint64_t {
    const Module* m = s.FindModule(ip);
    return m == nullptr ? 0 : m->id;
  };
  EXPECT_EQ(id(0xffff), 0u);
  EXPECT_EQ(id(0x10000), 1u);
  EXPECT_EQ(id(0x10fff), 1u);
  EXPECT_EQ(id(0x11000), 3u);
  EXPECT_EQ(id(0x11fff), 3u);
  EXPECT_EQ(id(0x12000), 1u);
  EXPECT_EQ(id(0x13000), 2u);
  EXPECT_EQ(id(0x15000), 2u);
  EXPECT_EQ(id(0x16fff), 2u);
  EXPECT_EQ(id(0x17000), 1u);
  EXPECT_EQ(id(0x17fff), 1u);
  EXPECT_EQ(id(0x18000), 0u);
  EXPECT_EQ(id(0x3ffff), 0u);
  EXPECT_EQ(id(0x40000), 4u);
  EXPECT_EQ(id(0x50000), 5u);
  EXPECT_EQ(id(0x500ff), 5u);
  EXPECT_EQ(id(0x50100), 4u);  // 5 covers only its first 0x100 bytes
  EXPECT_EQ(id(0x50200), 4u);
  EXPECT_EQ(id(0xfffffffffffeffff), 4u);
  EXPECT_EQ(id(0xffffffffffff0000), 6u);
  EXPECT_EQ(id(0xffffffffffffffff), 6u);
  // Against the scan from the newest, on addresses around every edge.
  std::mt19937_64 rng(7);
  for (int i = 0; i < 20000; ++i) {
    uint64_t ip = i % 2 == 0 ? rng() : 0xf000 + rng() % 0x50000;
    const Module* expected = nullptr;
    for (size_t j = modules.size(); j-- > 0;) {
      if (modules[j].Contains(ip)) {
        expected = &s.modules()[j];
        break;
      }
    }
    ASSERT_EQ(s.FindModule(ip), expected) << std::hex << ip;
    // FindModuleSpan: the same answer, and the same for every address of
    // the span it gives, and not for the addresses just outside it.
    uint64_t first = 1, last = 0;
    ASSERT_EQ(s.FindModuleSpan(ip, &first, &last), expected) << std::hex << ip;
    ASSERT_LE(first, ip);
    ASSERT_GE(last, ip);
    for (uint64_t edge : {first, last, first + (last - first) / 2}) {
      ASSERT_EQ(s.FindModule(edge), expected) << std::hex << ip << " " << edge;
    }
    // Outside: another answer, unless the neighbouring interval is the
    // same module's (two segments split by a newer module's are two spans).
    if (first != 0) {
      const Module* before = s.FindModule(first - 1);
      if (before == expected) {
        ASSERT_NE(expected, nullptr) << std::hex << ip;  // gaps are whole
      }
    }
    if (last != UINT64_MAX) {
      const Module* after = s.FindModule(last + 1);
      if (after == expected) {
        ASSERT_NE(expected, nullptr) << std::hex << ip;
      }
    }
  }
  uint64_t first = 0, last = 0;
  EXPECT_EQ(s.FindModuleSpan(0x3000, &first, &last), nullptr);
  EXPECT_EQ(first, 0u);
  EXPECT_EQ(last, 0xffffu);
  EXPECT_EQ(s.FindModuleSpan(0x11800, &first, &last)->id, 3u);
  EXPECT_EQ(first, 0x11000u);
  EXPECT_EQ(last, 0x11fffu);
  EXPECT_EQ(s.FindModuleSpan(0x20000, &first, &last), nullptr);
  EXPECT_EQ(first, 0x18000u);
  EXPECT_EQ(last, 0x3ffffu);
  EXPECT_EQ(s.FindModuleSpan(0xffffffffffffff00, &first, &last)->id, 6u);
  EXPECT_EQ(first, 0xffffffffffff0000u);
  EXPECT_EQ(last, 0xffffffffffffffffu);
}

TEST(SymbolizerTest, NameHelpers) {
  EXPECT_EQ(BareFunctionName("ns::f(int) const"), "ns::f");
  EXPECT_EQ(BareFunctionName("operator new[](unsigned long)"), "operator new[]");
  EXPECT_EQ(BareFunctionName("(anonymous namespace)::pool::pool()"),
            "(anonymous namespace)::pool::pool");
  EXPECT_EQ(BareFunctionName("std::vector<int, std::allocator<int> >::push_back(int&&)"),
            "std::vector<int, std::allocator<int> >::push_back");
  EXPECT_EQ(BareFunctionName("Foo::operator()(int)"), "Foo::operator()");
  EXPECT_EQ(BareFunctionName("leak_bytes"), "leak_bytes");
  EXPECT_TRUE(IsAllocatorFunction("malloc"));
  EXPECT_TRUE(IsAllocatorFunction("operator new(unsigned long, std::align_val_t)"));
  EXPECT_TRUE(IsAllocatorFunction("__libc_calloc"));
  EXPECT_FALSE(IsAllocatorFunction("main"));
  EXPECT_FALSE(IsAllocatorFunction("my_malloc"));
}

std::string WriteTemp(const std::string& name, const std::string& bytes) {
  std::string path = ::testing::TempDir() + "/" + name + "." + std::to_string(getpid());
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(SymbolizerTest, BadFilesGiveModuleOffsetAndAWarning) {
  std::mt19937 rng(7);
  std::string garbage(8192, '\0');
  for (char& c : garbage) c = static_cast<char>(rng());
  std::string elfish = "\x7f" "ELF\x02\x01\x01" + std::string(200, '\xff');
  std::vector<Module> modules(6);
  modules[0].path = WriteTemp("garbage.so", garbage);
  modules[1].path = WriteTemp("elfish.so", elfish);
  modules[2].path = "/nonexistent/libgone.so";
  modules[3].path = "/tmp";
  modules[4].path = "/proc/kcore";
  modules[5].path = "/dev/zero";
  for (size_t i = 0; i < modules.size(); ++i) {
    modules[i].load_address = 0x100000 * (i + 1);
    modules[i].segments.push_back({0, 0x10000, 0, 5});
  }
  Symbolizer symbolizer(modules);
  for (size_t i = 0; i < modules.size(); ++i) {
    const SymbolizedLocation& loc = symbolizer.Symbolize(0x100000 * (i + 1) + 0x42);
    ASSERT_NE(loc.module, nullptr);
    EXPECT_EQ(loc.module_offset, 0x42u);
    ASSERT_EQ(loc.frames.size(), 1u);
    EXPECT_TRUE(loc.frames[0].function.empty());
  }
  EXPECT_EQ(UnknownFrameName(symbolizer.Symbolize(0x100042)),
            "garbage.so." + std::to_string(getpid()) + "+0x42");
  EXPECT_EQ(UnknownFrameName(symbolizer.Symbolize(0x42)), "0x42");
  EXPECT_EQ(symbolizer.warnings().size(), 6u);
}

TEST(SymbolizerTest, WarnsOnBuildIdMismatch) {
  std::vector<Module> modules = OwnModules();
  modules[0].build_id_hex = "0123456789abcdef";
  Symbolizer symbolizer(modules);
  symbolizer.Symbolize(reinterpret_cast<uint64_t>(PlainCaller()));
  ASSERT_EQ(symbolizer.warnings().size(), 1u);
  EXPECT_TRUE(absl::StrContains(symbolizer.warnings()[0], "build-id differs"));
}

// A symbolizer's loads as {files opened, symbol tables, debug info loaded,
// debug info missing, units indexed}, for exact comparisons.
// The frames of two symbolizations of one address are the same: names,
// files, lines and which are inlined.
void ExpectSameFrames(const SymbolizedLocation& q, const SymbolizedLocation& f) {
  ASSERT_EQ(q.frames.size(), f.frames.size());
  for (size_t i = 0; i < q.frames.size(); ++i) {
    EXPECT_EQ(q.frames[i].function, f.frames[i].function) << i;
    EXPECT_EQ(q.frames[i].file, f.frames[i].file) << i;
    EXPECT_EQ(q.frames[i].line, f.frames[i].line) << i;
    EXPECT_EQ(q.frames[i].inlined, f.frames[i].inlined) << i;
  }
}

std::vector<uint64_t> LoadCounts(const Symbolizer& s) {
  SymbolizerLoads l = s.Loads();
  return std::vector<uint64_t>{l.files_opened, l.symbol_tables, l.debug_info_loaded,
                               l.debug_info_missing, l.units_indexed};
}

// 100,000 unique stacks of 12 frames over real code (this binary, libc with
// its separate debug info, libstdc++): each unique address is symbolized
// once, however many stacks hold it. (The time is printed, not asserted:
// timing belongs in bench/.)
// Symbol tables, debug info and compilation units are read only for the
// files and units of the addresses asked about, each once.
TEST(SymbolizerTest, ReadsOnlyTheFilesAndUnitsOfTheAddressesAskedAbout) {
  Symbolizer symbolizer(OwnModules());
  uint64_t plain = reinterpret_cast<uint64_t>(PlainCaller());
  uint64_t outer = reinterpret_cast<uint64_t>(OuterWithInline());
  // qsort's first byte + 1, as if it were a return address into it.
  uint64_t in_libc = reinterpret_cast<uint64_t>(&std::qsort) + 1;
  ASSERT_NE(symbolizer.FindModule(plain), symbolizer.FindModule(in_libc));
  EXPECT_EQ(LoadCounts(symbolizer), (std::vector<uint64_t>{0, 0, 0, 0, 0})) << "FindModule reads no file";

  // A name for classification: libc's symbol table, no DWARF.
  EXPECT_FALSE(symbolizer.SymbolName(in_libc).empty());
  EXPECT_EQ(LoadCounts(symbolizer), (std::vector<uint64_t>{1, 1, 0, 0, 0}));
  symbolizer.BareSymbolName(in_libc);
  EXPECT_EQ(LoadCounts(symbolizer), (std::vector<uint64_t>{1, 1, 0, 0, 0}));

  // A full symbolization: this binary's symbol table, its DWARF and the
  // one unit (this file) of the address.
  symbolizer.Symbolize(plain);
  EXPECT_EQ(LoadCounts(symbolizer), (std::vector<uint64_t>{2, 2, 1, 0, 1}));
  // Another function of the same unit, and the same address again: nothing
  // more is read.
  symbolizer.Symbolize(outer);
  symbolizer.Symbolize(plain);
  EXPECT_EQ(LoadCounts(symbolizer), (std::vector<uint64_t>{2, 2, 1, 0, 1}));
  EXPECT_EQ(symbolizer.Stats().addresses, 2u);
}

// The analysis's three symbolizers: the classifier reads symbol tables
// during the pass, the helper thread preloads DWARF (not the tables the
// classifier has read), and the report's symbolizer adopts both, pairing
// each file's DWARF with its table: each table is read once.
TEST(SymbolizerTest, PreloadLeavesTablesReadElsewhereAndAdoptionPairsThem) {
  uint64_t plain = reinterpret_cast<uint64_t>(PlainCaller());
  auto classifier = std::make_unique<Symbolizer>(OwnModules());
  EXPECT_FALSE(classifier->SymbolName(plain).empty());  // this binary's table
  std::vector<std::string> have = classifier->FilesWithSymbols();
  ASSERT_EQ(have.size(), 1u);
  EXPECT_EQ(have[0].substr(0, have[0].find('\n')), classifier->FindModule(plain)->path);
  EXPECT_EQ(LoadCounts(*classifier), (std::vector<uint64_t>{1, 1, 0, 0, 0}));

  auto warm = std::make_unique<Symbolizer>(OwnModules());
  warm->Preload({plain}, have);
  EXPECT_EQ(LoadCounts(*warm), (std::vector<uint64_t>{1, 0, 1, 0, 0})) << "DWARF, no table";
  EXPECT_TRUE(warm->FilesWithSymbols().empty());

  Symbolizer report(OwnModules());
  report.AdoptSessions(*warm);
  report.AdoptSessions(*classifier);
  warm.reset();
  classifier.reset();  // the adopted table's names must outlive it
  EXPECT_EQ(LoadCounts(report), (std::vector<uint64_t>{1, 1, 1, 0, 0}));
  EXPECT_EQ(report.FilesWithSymbols(), have);
  const SymbolizedLocation& loc = report.Symbolize(plain);
  ASSERT_EQ(loc.frames.size(), 1u);
  EXPECT_EQ(BareFunctionName(loc.frames[0].function),
            "heapsight::analyzer::(anonymous namespace)::PlainCaller");
  EXPECT_EQ(loc.frames[0].line, g_plain_line);
  EXPECT_EQ(report.SymbolName(plain), Symbolizer(OwnModules()).SymbolName(plain));
  EXPECT_EQ(LoadCounts(report), (std::vector<uint64_t>{1, 1, 1, 0, 1}));

  // Without the list, Preload reads the table too (as before).
  Symbolizer alone(OwnModules());
  alone.Preload({plain});
  EXPECT_EQ(LoadCounts(alone), (std::vector<uint64_t>{1, 1, 1, 0, 0}));
}

// The helper thread's Preload reads the runtime libraries' symbol tables
// but not their DWARF (libc's is 10 MB decompressed, for frames reports
// seldom print); the report's symbolizer reads it once a frame there is
// symbolized, and the program's own DWARF was preloaded.
TEST(SymbolizerTest, PreloadLeavesTheRuntimesDebugInfoUntilAFrameThereIsSymbolized) {
  uint64_t plain = reinterpret_cast<uint64_t>(PlainCaller());
  uint64_t in_libc = reinterpret_cast<uint64_t>(&std::qsort) + 1;
  auto warm = std::make_unique<Symbolizer>(OwnModules());
  const Module* libc = warm->FindModule(in_libc);
  ASSERT_NE(libc, nullptr);
  ASSERT_TRUE(IsRuntimeLibrary(libc->path)) << libc->path;
  ASSERT_FALSE(IsRuntimeLibrary(warm->FindModule(plain)->path));
  warm->Preload({plain, in_libc});
  // Both files opened and their tables read; DWARF only for this binary.
  EXPECT_EQ(LoadCounts(*warm), (std::vector<uint64_t>{2, 2, 1, 0, 0}));

  Symbolizer report(OwnModules());
  report.AdoptSessions(*warm);
  warm.reset();
  EXPECT_EQ(LoadCounts(report), (std::vector<uint64_t>{2, 2, 1, 0, 0}));
  // libc's name needs no DWARF.
  EXPECT_EQ(BareFunctionName(report.SymbolName(in_libc)), "qsort");
  EXPECT_EQ(LoadCounts(report), (std::vector<uint64_t>{2, 2, 1, 0, 0}));
  // This binary's frame: DWARF preloaded, one unit indexed.
  EXPECT_EQ(report.Symbolize(plain).frames.back().line, g_plain_line);
  EXPECT_EQ(LoadCounts(report), (std::vector<uint64_t>{2, 2, 1, 0, 1}));
  // A libc frame: now libc's DWARF is looked for (found, or missing where
  // no libc debug file is installed).
  const SymbolizedLocation& q = report.Symbolize(in_libc);
  EXPECT_EQ(BareFunctionName(q.frames.back().function), "qsort");
  SymbolizerLoads after = report.Loads();
  EXPECT_EQ(after.debug_info_loaded + after.debug_info_missing, 2u);
  // And it is the same location a symbolizer that preloaded nothing gives.
  Symbolizer fresh(OwnModules());
  const SymbolizedLocation& f = fresh.Symbolize(in_libc);
  ExpectSameFrames(q, f);
}

// PreloadRuntimeDebugInfo (the helper's second step on a long pass) reads
// the runtime's DWARF Preload left out, for the modules Preload opened only;
// the adopting symbolizer then reads no debug info for a libc frame, and
// gives the location a symbolizer that preloaded nothing gives.
TEST(SymbolizerTest, PreloadRuntimeDebugInfoReadsWhatPreloadLeftOut) {
  uint64_t plain = reinterpret_cast<uint64_t>(PlainCaller());
  uint64_t in_libc = reinterpret_cast<uint64_t>(&std::qsort) + 1;
  auto warm = std::make_unique<Symbolizer>(OwnModules());
  ASSERT_TRUE(IsRuntimeLibrary(warm->FindModule(in_libc)->path));
  // Before any Preload: no module opened, nothing to read.
  warm->PreloadRuntimeDebugInfo();
  EXPECT_EQ(LoadCounts(*warm), (std::vector<uint64_t>{0, 0, 0, 0, 0}));
  warm->Preload({plain, in_libc});
  EXPECT_EQ(LoadCounts(*warm), (std::vector<uint64_t>{2, 2, 1, 0, 0}));
  warm->PreloadRuntimeDebugInfo();
  SymbolizerLoads loads = warm->Loads();
  EXPECT_EQ(loads.files_opened, 2u);
  // libc's DWARF looked for: found, or missing where no debug file is installed.
  EXPECT_EQ(loads.debug_info_loaded + loads.debug_info_missing, 2u);
  // Reading it again reads nothing.
  const std::vector<uint64_t> once = LoadCounts(*warm);
  warm->PreloadRuntimeDebugInfo();
  EXPECT_EQ(LoadCounts(*warm), once);

  Symbolizer report(OwnModules());
  report.AdoptSessions(*warm);
  warm.reset();
  const std::vector<uint64_t> adopted = LoadCounts(report);
  const SymbolizedLocation& q = report.Symbolize(in_libc);
  SymbolizerLoads after = report.Loads();
  EXPECT_EQ(after.files_opened, adopted[0]);
  EXPECT_EQ(after.debug_info_loaded, adopted[2]);
  EXPECT_EQ(after.debug_info_missing, adopted[3]);
  Symbolizer fresh(OwnModules());
  const SymbolizedLocation& f = fresh.Symbolize(in_libc);
  ExpectSameFrames(q, f);
}

// SymbolName's memo is per symbol: the addresses in one function share its
// entry (demangled and reduced once), and the answers are unchanged.
TEST(SymbolizerTest, AddressesInOneFunctionShareTheirNameEntry) {
  Symbolizer symbolizer(OwnModules());
  uint64_t plain = reinterpret_cast<uint64_t>(PlainCaller());
  uint64_t outer = reinterpret_cast<uint64_t>(OuterWithInline());
  const std::string& a = symbolizer.SymbolName(plain);
  const std::string& b = symbolizer.SymbolName(plain + 1);
  ASSERT_FALSE(a.empty());
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&symbolizer.BareSymbolName(plain), &symbolizer.BareSymbolName(plain + 1));
  EXPECT_EQ(symbolizer.BareSymbolName(plain + 1),
            "heapsight::analyzer::(anonymous namespace)::PlainCaller");
  EXPECT_EQ(a, Symbolizer(OwnModules()).SymbolName(plain + 1));
  EXPECT_NE(symbolizer.SymbolName(outer), a);
  EXPECT_EQ(BareFunctionName(symbolizer.SymbolName(outer)),
            "heapsight::analyzer::(anonymous namespace)::OuterWithInline");
  EXPECT_TRUE(symbolizer.SymbolName(0x10).empty());  // in no module
  EXPECT_TRUE(symbolizer.BareSymbolName(0x10).empty());
}

// With runtime_dwarf (a small trace's helper), Preload reads the runtime
// libraries' DWARF too, last; the report's symbolizer adopts it and reads
// nothing more for a libc frame, which symbolizes as it does lazily.
TEST(SymbolizerTest, PreloadWithRuntimeDwarfReadsTheRuntimesDebugInfoToo) {
  uint64_t plain = reinterpret_cast<uint64_t>(PlainCaller());
  uint64_t in_libc = reinterpret_cast<uint64_t>(&std::qsort) + 1;
  auto warm = std::make_unique<Symbolizer>(OwnModules());
  ASSERT_TRUE(IsRuntimeLibrary(warm->FindModule(in_libc)->path));
  ASSERT_FALSE(IsDynamicLoader(warm->FindModule(in_libc)->path));
  warm->Preload({plain, in_libc}, {}, /*runtime_dwarf=*/true);
  SymbolizerLoads loads = warm->Loads();
  EXPECT_EQ(loads.files_opened, 2u);
  EXPECT_EQ(loads.symbol_tables, 2u);
  // Both files' DWARF looked for (libc's found, or missing where no libc
  // debug file is installed), no unit indexed yet.
  EXPECT_EQ(loads.debug_info_loaded + loads.debug_info_missing, 2u);
  EXPECT_EQ(loads.units_indexed, 0u);

  Symbolizer report(OwnModules());
  report.AdoptSessions(*warm);
  warm.reset();
  const SymbolizedLocation& q = report.Symbolize(in_libc);
  SymbolizerLoads after = report.Loads();
  EXPECT_EQ(after.debug_info_loaded, loads.debug_info_loaded);
  EXPECT_EQ(after.debug_info_missing, loads.debug_info_missing);
  Symbolizer fresh(OwnModules());
  const SymbolizedLocation& f = fresh.Symbolize(in_libc);
  EXPECT_EQ(q.status, f.status);
  ExpectSameFrames(q, f);
}

// The runtime gate: Preload asks it before the runtime's DWARF (the
// analysis opens it once its pass is long enough to hide the inflation),
// and a closed gate leaves that DWARF to Symbolize.
TEST(SymbolizerTest, AClosedRuntimeGateLeavesTheRuntimesDebugInfo) {
  uint64_t plain = reinterpret_cast<uint64_t>(PlainCaller());
  uint64_t in_libc = reinterpret_cast<uint64_t>(&std::qsort) + 1;
  int asked = 0;
  Symbolizer shut(OwnModules());
  shut.Preload({plain, in_libc}, {}, /*runtime_dwarf=*/true, [&] {
    ++asked;
    return false;
  });
  EXPECT_EQ(asked, 1);
  SymbolizerLoads loads = shut.Loads();
  EXPECT_EQ(loads.debug_info_loaded + loads.debug_info_missing, 1u);  // this binary's only
  Symbolizer open(OwnModules());
  open.Preload({plain, in_libc}, {}, /*runtime_dwarf=*/true, [&] {
    ++asked;
    return true;
  });
  EXPECT_EQ(asked, 2);
  loads = open.Loads();
  EXPECT_EQ(loads.debug_info_loaded + loads.debug_info_missing, 2u);
  // Without runtime_dwarf the gate is not asked.
  Symbolizer plain_preload(OwnModules());
  plain_preload.Preload({plain, in_libc}, {}, false, [&] {
    ++asked;
    return true;
  });
  EXPECT_EQ(asked, 2);
}

// SymbolTableClaims tells its callback about large tables only (the
// analysis opens the runtime gate while its thread reads one).
TEST(SymbolizerTest, ClaimsReportLargeTableReads) {
  SymbolTableClaims claims;
  claims.NoteTableRead(SymbolTableClaims::kLargeTableSymbols);  // no callback: nothing
  int calls = 0;
  claims.OnLargeTableRead([&] { ++calls; });
  claims.NoteTableRead(SymbolTableClaims::kLargeTableSymbols - 1);
  claims.NoteTableRead(-1);
  EXPECT_EQ(calls, 0);
  claims.NoteTableRead(SymbolTableClaims::kLargeTableSymbols);
  claims.NoteTableRead(110'000);
  EXPECT_EQ(calls, 2);
  claims.OnLargeTableRead(nullptr);
  claims.NoteTableRead(110'000);
  EXPECT_EQ(calls, 2);
}

// The analysis's classifier and helper share SymbolTableClaims: the helper
// starts with the pass and skips a table the classifier has started to read
// (whenever that was), and reading any table claims it, on either side.
TEST(SymbolizerTest, SharedClaimsLetPreloadSkipATableClaimedElsewhere) {
  uint64_t plain = reinterpret_cast<uint64_t>(PlainCaller());
  auto claims = std::make_shared<SymbolTableClaims>();
  Symbolizer classifier(OwnModules());
  classifier.ShareSymbolTableClaims(claims);
  Symbolizer warm(OwnModules());
  warm.ShareSymbolTableClaims(claims);
  // The classifier's table read after both were set up: claimed then.
  EXPECT_FALSE(classifier.SymbolName(plain).empty());
  std::vector<std::string> have = classifier.FilesWithSymbols();
  ASSERT_EQ(have.size(), 1u);
  EXPECT_FALSE(claims->Claim(have[0])) << "reading the table claimed it";
  warm.Preload({plain});
  EXPECT_EQ(LoadCounts(warm), (std::vector<uint64_t>{1, 0, 1, 0, 0})) << "DWARF, no table";

  // The other way: the helper claims a table nobody has, and reads it.
  uint64_t in_libc = reinterpret_cast<uint64_t>(&std::qsort) + 1;
  warm.Preload({in_libc});
  EXPECT_EQ(LoadCounts(warm)[1], 1u);
  std::vector<std::string> warm_has = warm.FilesWithSymbols();
  ASSERT_EQ(warm_has.size(), 1u);
  EXPECT_NE(warm_has[0], have[0]);
  EXPECT_FALSE(claims->Claim(warm_has[0]));
  EXPECT_TRUE(claims->Claim("/nonexistent\nabcd"));

  // A Symbolizer without claims reads every table it preloads.
  Symbolizer alone(OwnModules());
  alone.Preload({plain, in_libc});
  EXPECT_EQ(LoadCounts(alone)[1], 2u);
}

bool IsLoaded(const char* name_part) {
  bool found = false;
  std::pair<const char*, bool*> query(name_part, &found);
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto* f = static_cast<std::pair<const char*, bool*>*>(data);
        if (info->dlpi_name != nullptr && std::strstr(info->dlpi_name, f->first) != nullptr) {
          *f->second = true;
        }
        return 0;
      },
      &query);
  return found;
}

// libdwfl tries debuginfod once a module's debug file is not on disk: with
// no server configured, the client (and libcurl, GnuTLS, ...) stays
// unloaded (debuginfod_gate.h). libstdc++ has no debug file here.
TEST(SymbolizerTest, DebuginfodIsNotLoadedWithoutAServer) {
  if (IsLoaded("libdebuginfod")) GTEST_SKIP() << "loaded earlier (DEBUGINFOD_URLS was set)";
  unsetenv("DEBUGINFOD_URLS");
  Symbolizer symbolizer(OwnModules());
  uint64_t in_libstdcxx = reinterpret_cast<uint64_t>(&std::terminate) + 1;
  const Module* module = symbolizer.FindModule(in_libstdcxx);
  ASSERT_NE(module, nullptr);
  ASSERT_TRUE(absl::StrContains(module->path, "libstdc++")) << module->path;
  symbolizer.Symbolize(in_libstdcxx);
  SymbolizerLoads loads = symbolizer.Loads();
  if (loads.debug_info_missing == 0) GTEST_SKIP() << "libstdc++ has debug info here";
  EXPECT_EQ(loads.debug_info_missing, 1u);
  // libdwfl asks once per process (pthread_once), whichever test was first.
  EXPECT_EQ(DebuginfodLoadsDeclined(), 1u);
  EXPECT_FALSE(IsLoaded("libdebuginfod"));
  EXPECT_FALSE(IsLoaded("libcurl"));
}

TEST(SymbolizerTest, HundredThousandStacksSymbolizeEachAddressOnce) {
  std::vector<Module> modules = OwnModules();
  std::vector<std::pair<uint64_t, uint64_t>> text;  // executable ranges
  for (const Module& m : modules) {
    if (!absl::StrContains(m.path, "libc.so") && !absl::StrContains(m.path, "libstdc++") &&
        !absl::StrContains(m.path, "analyzer_symbolizer_test")) {
      continue;
    }
    for (const auto& s : m.segments) {
      if (s.flags & PF_X) text.push_back({m.load_address + s.vaddr, s.memsz});
    }
  }
  ASSERT_GE(text.size(), 2u);
  std::mt19937_64 rng(1);
  std::vector<uint64_t> pool(50000);
  for (uint64_t& ip : pool) {
    auto [start, size] = text[rng() % text.size()];
    ip = start + 1 + rng() % (size - 1);
  }
  Symbolizer symbolizer(modules);
  auto begin = std::chrono::steady_clock::now();
  size_t frames = 0;
  std::vector<uint64_t> stack(12);
  for (int i = 0; i < 100000; ++i) {
    for (uint64_t& ip : stack) ip = pool[rng() % pool.size()];
    frames += symbolizer.SymbolizeStack(stack).size();
  }
  double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - begin).count();
  std::printf("symbolized 100000 stacks (%zu frames, 50000 unique addresses) in %.2f s\n",
              frames, seconds);
  std::sort(pool.begin(), pool.end());
  uint64_t unique = std::unique(pool.begin(), pool.end()) - pool.begin();
  EXPECT_EQ(symbolizer.Stats().addresses, unique);
}

}  // namespace
}  // namespace heapsight::analyzer
