// tests/analyzer/symbols/function_table_test.cc: PickFunctionSymbols' choice
// of one name per address, and ReadFunctionSymbols' direct walk of the
// symbol table giving exactly what reading it through
// dwfl_module_getsym_info gives (this test binary's .symtab, and libc's,
// whose table may be its separate debug file's).
#include "analyzer/symbols/function_table.h"

#include <elf.h>
#include <gelf.h>
#include <link.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

extern "C" __attribute__((noinline, used)) int HeapsightFunctionTableMarker(int x) {
  asm volatile("" ::: "memory");
  return x * 3 + 1;
}

// One function under four names, as libc has printf and _IO_printf: three
// global aliases equal in start and size, and a weak one with the shortest
// name (the rank comes first).
extern "C" __attribute__((noinline, used)) int HeapsightAliasTarget(int x) {
  asm volatile("" ::: "memory");
  return x * 5 + 2;
}
extern "C" int HzAliasB(int) noexcept __attribute__((alias("HeapsightAliasTarget"), used));
extern "C" int HzAliasA(int) noexcept __attribute__((alias("HeapsightAliasTarget"), used));
extern "C" int Hzw(int) noexcept __attribute__((weak, alias("HeapsightAliasTarget")));

TEST(FunctionTableTest, RanksAndSizesPickOneNamePerAddress) {
  EXPECT_EQ(FunctionSymbolRank(STB_GLOBAL, "malloc"), 0u);
  EXPECT_EQ(FunctionSymbolRank(STB_WEAK, "malloc"), 1u);
  EXPECT_EQ(FunctionSymbolRank(STB_LOCAL, "helper"), 2u);
  EXPECT_EQ(FunctionSymbolRank(STB_GLOBAL, "__GI_malloc"), 3u);
  EXPECT_EQ(FunctionSymbolRank(STB_GLOBAL, "__Gx"), 0u);
  EXPECT_EQ(FunctionSymbolRank(STB_GLOBAL, "__GI"), 0u);  // too short for the prefix
  EXPECT_EQ(FunctionSymbolRank(STB_LOCAL, "__GI_"), 3u);
  EXPECT_EQ(FunctionSymbolRank(STB_WEAK, "_"), 1u);
  EXPECT_EQ(FunctionSymbolRank(STB_GLOBAL, "_ZN2v88internal4Heap2GCEv"), 0u);
  std::vector<FunctionCandidate> c = {
      {0x300, 0x310, "c_local", 2},  {0x100, 0x120, "a_weak", 1},
      {0x100, 0x110, "a_global_short", 0}, {0x100, 0x130, "a_global_long", 0},
      {0x200, 0x201, "b_gi", 3},     {0x200, 0x240, "b_local", 2},
      {0x300, 0x310, "c_gi", 3},
  };
  std::vector<FunctionSymbol> out = PickFunctionSymbols(c);
  ASSERT_EQ(out.size(), 3u);
  EXPECT_EQ(out[0].start, 0x100u);
  EXPECT_EQ(out[0].end, 0x130u);
  EXPECT_STREQ(out[0].name, "a_global_long");  // global before weak, then the longest
  EXPECT_EQ(out[1].start, 0x200u);
  EXPECT_STREQ(out[1].name, "b_local");  // a local before a __GI_ alias
  EXPECT_EQ(out[1].end, 0x240u);
  EXPECT_STREQ(out[2].name, "c_local");
  EXPECT_TRUE(PickFunctionSymbols({}).empty());
}

// FindFunctionSymbol's answer over PickFunctionSymbols' table at each
// symbol's first, middle and last address, just past it, and just before.
void ExpectSameAnswers(const FunctionTable& table, const std::vector<FunctionSymbol>& want) {
  for (const FunctionSymbol& s : want) {
    for (uint64_t addr : {s.start - 1, s.start, s.start + (s.end - s.start) / 2, s.end - 1, s.end}) {
      const char* expected = FindFunctionSymbol(want, addr);
      const char* got = table.Find(addr);
      ASSERT_EQ(got, expected) << std::hex << addr << " " << (got ? got : "null") << " "
                               << (expected ? expected : "null");
    }
  }
}

// FunctionTable over `c` gives PickFunctionSymbols' table (the same
// alias, not just an equal name) and its lookups.
void ExpectSamePick(const std::vector<FunctionCandidate>& c) {
  FunctionTable table(c);
  std::vector<FunctionSymbol> got = table.Symbols();
  std::vector<FunctionSymbol> want = PickFunctionSymbols(c);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(got[i].start, want[i].start) << i;
    ASSERT_EQ(got[i].end, want[i].end) << i;
    ASSERT_EQ(got[i].name, want[i].name) << i;
  }
  ExpectSameAnswers(table, want);
}

TEST(FunctionTableTest, PackedKeysOrderAsTheCandidates) {
  std::mt19937_64 rng(7);
  std::vector<FunctionCandidate> c;
  for (int i = 0; i < 2000; ++i) {
    uint64_t start = rng() % 64;
    uint64_t size = rng() % 4 == 0 ? kMaxPackedSize - rng() % 3 : 1 + rng() % 8;
    c.push_back({start, start + size, "x", static_cast<uint32_t>(rng() % 4)});
  }
  c.push_back({kMaxPackedStart, kMaxPackedStart + 1, "top", 0});
  std::vector<PackedFunctionCandidate> packed;
  ASSERT_TRUE(PackFunctionCandidates(c, &packed));
  ASSERT_EQ(packed.size(), c.size());
  for (size_t i = 0; i < c.size(); ++i) {
    ASSERT_EQ(packed[i].index, i);
    for (size_t j = 0; j < c.size(); j += 7) {
      ASSERT_EQ(packed[i].key < packed[j].key, FunctionCandidateBefore(c[i], c[j])) << i << " " << j;
    }
  }
}

TEST(FunctionTableTest, PackingRefusesWhatDoesNotFit) {
  std::vector<PackedFunctionCandidate> packed;
  EXPECT_TRUE(PackFunctionCandidates({}, &packed));
  EXPECT_FALSE(PackFunctionCandidates({{kMaxPackedStart + 1, kMaxPackedStart + 2, "a", 0}}, &packed));
  EXPECT_FALSE(PackFunctionCandidates({{0x10, 0x10 + kMaxPackedSize + 1, "a", 0}}, &packed));
  EXPECT_FALSE(PackFunctionCandidates({{UINT32_MAX, 0, "wrapped", 0}}, &packed));
  EXPECT_FALSE(PackFunctionCandidates({{0x10, 0x10, "empty", 0}}, &packed));
  EXPECT_FALSE(PackFunctionCandidates({{0x10, 0x20, "a", 4}}, &packed));
}

TEST(FunctionTableTest, AliasesTiedInKeyKeepTheShortestNameThenTheFirstInByteOrder) {
  EXPECT_TRUE(FunctionAliasBefore("printf", "_IO_printf"));
  EXPECT_FALSE(FunctionAliasBefore("_IO_printf", "printf"));
  EXPECT_TRUE(FunctionAliasBefore("free", "cfree"));
  EXPECT_TRUE(FunctionAliasBefore("strtol", "strtoq"));  // same length: byte order
  EXPECT_FALSE(FunctionAliasBefore("strtol", "strtol"));
  EXPECT_TRUE(FunctionAliasBefore("_nl_make_l10nflist", "_nl_make_l10nflist.localalias"));
  // Versions are not part of the name; the default one first.
  EXPECT_TRUE(FunctionAliasBefore("clock_gettime@@GLIBC_2.17", "__clock_gettime"));
  EXPECT_TRUE(FunctionAliasBefore("clock_gettime@@GLIBC_2.17", "clock_gettime@GLIBC_2.2.5"));
  EXPECT_FALSE(FunctionAliasBefore("clock_gettime@GLIBC_2.2.5", "clock_gettime@@GLIBC_2.17"));
  std::vector<FunctionCandidate> c = {
      {0x100, 0x140, "_IO_printf", 0}, {0x100, 0x140, "printf", 0},
      {0x100, 0x140, "pf", 1},  // shortest, but weak
      {0x100, 0x120, "p", 0},   // shortest, but ends first
      {0x200, 0x210, "strtoq", 1}, {0x200, 0x210, "strtoll", 1}, {0x200, 0x210, "strtol", 1},
  };
  // Every order of the candidates gives the same names (the rule is on the
  // names, not on where the table lists them).
  std::mt19937_64 rng(3);
  for (int round = 0; round < 20; ++round) {
    std::shuffle(c.begin(), c.end(), rng);
    std::vector<FunctionSymbol> out = PickFunctionSymbols(c);
    ASSERT_EQ(out.size(), 2u);
    EXPECT_STREQ(out[0].name, "printf");
    EXPECT_EQ(out[0].end, 0x140u);
    EXPECT_STREQ(out[1].name, "strtol");
    ExpectSamePick(c);
  }
}

TEST(FunctionTableTest, WideAndEqualStartsPickAsSortingTheCandidates) {
  // The radix sort takes as many passes as the starts' span needs: a far
  // outlier makes it three (32 bits), a single start none.
  static const char* const kNames[] = {"a", "bb", "c", "dd", "e", "ff"};
  std::mt19937_64 rng(5);
  std::vector<FunctionCandidate> clustered;
  for (int i = 0; i < 3000; ++i) {
    uint64_t start = 0x1000 + (rng() % 500) * 4;
    clustered.push_back({start, start + 1 + rng() % 8, kNames[rng() % 6],
                         static_cast<uint32_t>(rng() % 4)});
  }
  clustered.push_back({kMaxPackedStart, kMaxPackedStart + 1, "top", 0});
  ExpectSamePick(clustered);
  std::vector<FunctionCandidate> one_start;
  for (int i = 0; i < 100; ++i) one_start.push_back({0x40, 0x48, kNames[rng() % 6], 2});
  std::vector<FunctionSymbol> out = PickFunctionSymbols(one_start);
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::strlen(out[0].name), 1u);
  ExpectSamePick(one_start);
}

TEST(FunctionTableTest, TableMatchesSortingTheCandidatesTiesIncluded) {
  // Many aliases equal in start, rank and end under different names: the
  // table names the alias a sort of the whole table keeps.
  static const char* const kNames[] = {"n0", "n1", "n2", "n3", "n4", "n5", "n6", "n7"};
  std::mt19937_64 rng(11);
  for (int round = 0; round < 20; ++round) {
    std::vector<FunctionCandidate> c;
    size_t n = 1 + rng() % 5000;
    for (size_t i = 0; i < n; ++i) {
      uint64_t start = 0x1000 + (rng() % (n / 4 + 1)) * 16;
      uint64_t size = 1 + rng() % 3;
      c.push_back({start, start + size, kNames[rng() % 8], static_cast<uint32_t>(rng() % 2)});
    }
    ExpectSamePick(c);
    // One that does not pack: the table picks at once, the same answers.
    c.push_back({uint64_t{1} << 40, (uint64_t{1} << 40) + 4, "far", 0});
    std::vector<PackedFunctionCandidate> packed;
    ASSERT_FALSE(PackFunctionCandidates(c, &packed));
    ExpectSamePick(c);
  }
}

// A table read directly: ranks of the binding only and names by offset,
// none read until a lookup; empty names skipped and __GI_ names ranked
// last when the lookup chooses, as PickFunctionSymbols does when reading
// them at once. Also spans the scan-back over starts without a name.
TEST(FunctionTableTest, DirectReadNamesAreTestedWhenLookedUp) {
  std::string strings(1, '\0');  // offset 0: the empty name
  auto add = [&](const char* name) {
    uint32_t offset = static_cast<uint32_t>(strings.size());
    strings += name;
    strings += '\0';
    return offset;
  };
  const uint32_t empty = 0;
  const uint32_t gi = add("__GI_memcpy");
  const uint32_t memcpy_name = add("memcpy");
  const uint32_t outer = add("outer");
  const uint32_t f = add("f");
  std::mt19937_64 rng(9);
  for (int round = 0; round < 30; ++round) {
    PackedFunctionTable packed;
    std::vector<FunctionCandidate> named;  // what libdwfl gives: no empty names
    auto push = [&](uint64_t start, uint64_t size, int bind, uint32_t name) {
      const uint32_t rank = bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2;
      packed.packed.push_back({(start << 32) | (uint64_t{rank} << 30) | (kMaxPackedSize - size), name});
      const char* text = strings.c_str() + name;
      if (text[0] != '\0') named.push_back({start, start + size, text, FunctionSymbolRank(bind, text)});
    };
    push(0x1000, 0x10000, STB_GLOBAL, outer);  // contains everything below
    for (int i = 0; i < 40; ++i) {
      const uint64_t start = 0x1100 + (rng() % 64) * 0x40;
      const uint32_t names[] = {empty, gi, memcpy_name, f};
      push(start, 1 + rng() % 0x30, static_cast<int>(rng() % 3), names[rng() % 4]);
    }
    std::shuffle(packed.packed.begin(), packed.packed.end(), rng);
    packed.strings = strings.c_str();
    FunctionTable table(std::move(packed));
    std::vector<FunctionSymbol> want = PickFunctionSymbols(named);
    std::vector<FunctionSymbol> got = table.Symbols();
    ASSERT_EQ(got.size(), want.size());
    for (size_t i = 0; i < got.size(); ++i) {
      ASSERT_EQ(got[i].start, want[i].start);
      ASSERT_EQ(got[i].end, want[i].end);
      ASSERT_STREQ(got[i].name, want[i].name);
    }
    for (uint64_t addr = 0xff0; addr < 0x2200; addr += 3) {
      const char* expected = FindFunctionSymbol(want, addr);
      const char* name = table.Find(addr);
      ASSERT_EQ(name == nullptr, expected == nullptr) << std::hex << addr;
      if (name != nullptr) {
        ASSERT_STREQ(name, expected) << std::hex << addr;
      }
    }
  }
}

const Dwfl_Callbacks kCallbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = nullptr,
    .debuginfo_path = nullptr,
};

struct Session {
  explicit Session(const std::string& path) {
    dwfl = dwfl_begin(&kCallbacks);
    dwfl_report_begin(dwfl);
    module = dwfl_report_elf(dwfl, "m", path.c_str(), -1, 0, true);
    dwfl_report_end(dwfl, nullptr, nullptr);
  }
  ~Session() { dwfl_end(dwfl); }
  Dwfl* dwfl = nullptr;
  Dwfl_Module* module = nullptr;
};

std::string SelfPath() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

std::string LibcPath() {
  std::string path;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        if (info->dlpi_name != nullptr && std::strstr(info->dlpi_name, "libc.so") != nullptr) {
          *static_cast<std::string*>(data) = info->dlpi_name;
        }
        return 0;
      },
      &path);
  return path;
}

void ExpectSameAsLibdwfl(const std::string& path) {
  Session s(path);
  ASSERT_NE(s.module, nullptr) << path;
  FunctionTableRead read;
  FunctionTable direct_table = ReadFunctionSymbols(s.module, &read);
  std::vector<FunctionSymbol> direct = direct_table.Symbols();
  // The reference: every symbol through dwfl_module_getsym_info, as the
  // symbolizer read tables before.
  FunctionTableRead reference_read;
  std::vector<FunctionSymbol> reference =
      ReadFunctionSymbols(s.module, &reference_read, /*allow_direct=*/false).Symbols();
  EXPECT_TRUE(read.direct) << path;
  EXPECT_FALSE(reference_read.direct) << path;
  EXPECT_EQ(read.symbols, static_cast<uint64_t>(dwfl_module_getsymtab(s.module)));
  EXPECT_EQ(read.candidates, reference_read.candidates);
  ASSERT_EQ(direct.size(), reference.size()) << path;
  for (size_t i = 0; i < direct.size(); ++i) {
    ASSERT_EQ(direct[i].start, reference[i].start) << path << " #" << i;
    ASSERT_EQ(direct[i].end, reference[i].end) << path << " #" << i;
    ASSERT_EQ(direct[i].name, reference[i].name) << path << " #" << i;  // the same string, not a copy
  }
  ExpectSameAnswers(direct_table, reference);
}

TEST(FunctionTableTest, DirectReadOfThisBinaryMatchesLibdwflAndFindsTheMarker) {
  ExpectSameAsLibdwfl(SelfPath());
  Session s(SelfPath());
  std::vector<FunctionSymbol> table = ReadFunctionSymbols(s.module).Symbols();
  // The marker's ELF address: its runtime address less this binary's load bias.
  uint64_t bias = 0;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        if (info->dlpi_name == nullptr || info->dlpi_name[0] == '\0') {
          *static_cast<uint64_t*>(data) = info->dlpi_addr;
          return 1;
        }
        return 0;
      },
      &bias);
  uint64_t marker = reinterpret_cast<uint64_t>(&HeapsightFunctionTableMarker) - bias;
  int found = 0;
  for (const FunctionSymbol& f : table) {
    if (std::strcmp(f.name, "HeapsightFunctionTableMarker") == 0) {
      ++found;
      EXPECT_EQ(f.start, marker);
      EXPECT_GT(f.end, f.start + 1);  // it has a size
    }
  }
  EXPECT_EQ(found, 1);
  for (size_t i = 1; i < table.size(); ++i) ASSERT_LT(table[i - 1].start, table[i].start);
  // The aliased function is named by its shortest global alias, the first
  // of two in byte order, wherever the table lists them.
  uint64_t aliased = reinterpret_cast<uint64_t>(&HeapsightAliasTarget) - bias;
  const char* name = ReadFunctionSymbols(s.module).Find(aliased + 1);
  ASSERT_NE(name, nullptr);
  EXPECT_STREQ(name, "HzAliasA");
}

TEST(FunctionTableTest, DirectReadOfLibcMatchesLibdwfl) {
  std::string libc = LibcPath();
  if (libc.empty()) GTEST_SKIP() << "no libc.so mapped";
  ExpectSameAsLibdwfl(libc);
}

// The candidates of a real table (read as ReadFunctionSymbols' libdwfl
// path reads them) give the same pick as sorting them directly.
void ExpectRealTablePicksAsBefore(const std::string& path) {
  Session s(path);
  ASSERT_NE(s.module, nullptr) << path;
  std::vector<FunctionCandidate> c;
  int n = dwfl_module_getsymtab(s.module);
  for (int i = 0; i < n; ++i) {
    GElf_Sym sym;
    GElf_Addr value = 0;
    const char* name = dwfl_module_getsym_info(s.module, i, &sym, &value, nullptr, nullptr, nullptr);
    if (name == nullptr || name[0] == '\0' || GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
        sym.st_shndx == SHN_UNDEF) {
      continue;
    }
    uint64_t size = sym.st_size == 0 ? 1 : sym.st_size;
    c.push_back({value, value + size, name, FunctionSymbolRank(GELF_ST_BIND(sym.st_info), name)});
  }
  ASSERT_FALSE(c.empty()) << path;
  std::vector<PackedFunctionCandidate> packed;
  EXPECT_TRUE(PackFunctionCandidates(c, &packed)) << path;
  ExpectSamePick(c);
}

TEST(FunctionTableTest, RealTablesPickAsSortingTheCandidates) {
  ExpectRealTablePicksAsBefore(SelfPath());
  std::string libc = LibcPath();
  if (!libc.empty()) ExpectRealTablePicksAsBefore(libc);
}

TEST(FunctionTableTest, NoModuleNoSymbols) {
  FunctionTableRead read;
  read.direct = true;
  FunctionTable none = ReadFunctionSymbols(nullptr, &read);
  EXPECT_TRUE(none.Symbols().empty());
  EXPECT_EQ(none.Find(0x1000), nullptr);
  EXPECT_FALSE(read.direct);
  EXPECT_EQ(read.symbols, 0u);
  EXPECT_EQ(read.candidates, 0u);
}

}  // namespace
}  // namespace heapsight::analyzer
