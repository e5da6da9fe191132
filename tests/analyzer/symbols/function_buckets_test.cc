// tests/analyzer/symbols/function_buckets_test.cc: FunctionBuckets::Find
// answers what FindFunctionSymbol answers over the sorted table
// (PickPackedFunctionSymbols), or kTied exactly where that answer is one of
// several aliases with different names; on generated tables (nesting,
// gaps, aliases) and on this binary's and libc's real ones.
#include "analyzer/symbols/function_buckets.h"

#include <link.h>
#include <unistd.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "analyzer/symbols/function_table.h"
#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

// A string table of names "f0", "f1", ... (offset 0: the empty name).
struct Names {
  std::string strings{'\0'};
  std::vector<uint32_t> offsets;
  explicit Names(int count) {
    for (int i = 0; i < count; ++i) {
      offsets.push_back(static_cast<uint32_t>(strings.size()));
      strings += "f" + std::to_string(i);
      strings += '\0';
    }
  }
};

uint64_t Key(uint64_t start, uint64_t size, uint32_t rank) {
  return (start << 32) | (uint64_t{rank} << 30) | (kMaxPackedSize - size);
}

// Whether the sorted table's symbol at `addr` is one of several candidates
// equal in key with different names (the case Find leaves to the table).
bool AnswerIsTied(const PackedFunctionTable& table, const std::vector<FunctionSymbol>& sorted,
                  uint64_t addr) {
  const char* name = FindFunctionSymbol(sorted, addr);
  if (name == nullptr) return false;
  const FunctionSymbol* symbol = nullptr;
  for (const FunctionSymbol& s : sorted) {
    if (s.name == name && s.start <= addr && addr < s.end) symbol = &s;
  }
  if (symbol == nullptr) return false;
  // The lowest key at that start.
  uint64_t key = UINT64_MAX;
  for (const PackedFunctionCandidate& c : table.packed) {
    if (c.start() == symbol->start) key = std::min(key, c.key);
  }
  for (const PackedFunctionCandidate& c : table.packed) {
    if (c.key == key && std::strcmp(table.strings + c.index, name) != 0) return true;
  }
  return false;
}

// Every address in [first, last] by `step`: Find agrees with the sorted table.
void ExpectSameAnswers(const PackedFunctionTable& table, uint64_t first, uint64_t last,
                       uint64_t step, int* tied = nullptr) {
  std::vector<FunctionSymbol> sorted = PickPackedFunctionSymbols(table);
  FunctionBuckets buckets(table);
  for (uint64_t addr = first; addr <= last && addr >= first; addr += step) {
    const char* expected = FindFunctionSymbol(sorted, addr);
    const char* name = nullptr;
    std::vector<const char*> aliases;
    switch (buckets.Find(addr, &name, &aliases)) {
      case FunctionBuckets::Found::kName:
        ASSERT_NE(expected, nullptr) << std::hex << addr;
        ASSERT_STREQ(name, expected) << std::hex << addr;
        break;
      case FunctionBuckets::Found::kNone:
        ASSERT_EQ(expected, nullptr) << std::hex << addr << " " << expected;
        break;
      case FunctionBuckets::Found::kTied: {
        ASSERT_TRUE(AnswerIsTied(table, sorted, addr)) << std::hex << addr;
        // The table's answer is among the aliases, each name once.
        ASSERT_GE(aliases.size(), 2u);
        int matches = 0;
        for (const char* alias : aliases) matches += std::strcmp(alias, expected) == 0;
        ASSERT_EQ(matches, 1) << std::hex << addr;
        if (tied != nullptr) ++*tied;
        break;
      }
    }
  }
}

TEST(FunctionBucketsTest, AgreesWithTheSortedTableOnGeneratedTables) {
  Names names(64);
  std::mt19937_64 rng(7);
  int tied = 0;
  for (int round = 0; round < 40; ++round) {
    PackedFunctionTable table;
    table.strings = names.strings.c_str();
    const size_t n = 1 + rng() % 600;
    const uint64_t spread = 1 + rng() % 4;  // dense (many aliases) to sparse
    for (size_t i = 0; i < n; ++i) {
      // Clusters with gaps between them; sizes from 1 (no size) to nesting.
      uint64_t start = 0x400000 + (rng() % 8) * 0x10000 + (rng() % (n * spread)) * 8;
      uint64_t size = rng() % 4 == 0 ? 1 : 1 + rng() % 200;
      uint32_t rank = static_cast<uint32_t>(rng() % 4);
      // A few names only where aliases are to be tied with the same name.
      uint32_t name = names.offsets[rng() % (round % 2 == 0 ? 3 : 64)];
      table.packed.push_back({Key(start, size, rank), name});
    }
    ExpectSameAnswers(table, 0x3fff00, 0x480000 + n * spread * 8 + 0x400, 3, &tied);
  }
  EXPECT_GT(tied, 0);  // the generator makes ties with different names
}

TEST(FunctionBucketsTest, EmptyAndSingleTables) {
  Names names(2);
  PackedFunctionTable empty;
  empty.strings = names.strings.c_str();
  FunctionBuckets none(empty);
  const char* name = nullptr;
  EXPECT_EQ(none.Find(0x1000, &name), FunctionBuckets::Found::kNone);

  PackedFunctionTable one = empty;
  one.packed.push_back({Key(0x1000, 0x10, 0), names.offsets[1]});
  FunctionBuckets single(one);
  EXPECT_EQ(single.Find(0xfff, &name), FunctionBuckets::Found::kNone);
  ASSERT_EQ(single.Find(0x1000, &name), FunctionBuckets::Found::kName);
  EXPECT_STREQ(name, "f1");
  ASSERT_EQ(single.Find(0x100f, &name), FunctionBuckets::Found::kName);
  EXPECT_EQ(single.Find(0x1010, &name), FunctionBuckets::Found::kNone);
  EXPECT_EQ(single.Find(UINT64_MAX, &name), FunctionBuckets::Found::kNone);
}

TEST(FunctionBucketsTest, ScansBackOverAsManyStartsAsTheTable) {
  // A long function and, inside it, more than kFunctionSymbolScanBack
  // later ones that end before the address: the table's scan gives up, and
  // so must Find (across buckets too: the starts are spread).
  Names names(32);
  PackedFunctionTable table;
  table.strings = names.strings.c_str();
  table.packed.push_back({Key(0x1000, 0x100000, 0), names.offsets[0]});
  for (int i = 1; i <= 20; ++i) {
    table.packed.push_back({Key(0x1000 + i * 0x1000, 0x10, 0), names.offsets[i]});
  }
  ExpectSameAnswers(table, 0x0, 0x110000, 0x100);
  FunctionBuckets buckets(table);
  const char* name = nullptr;
  EXPECT_EQ(buckets.Find(0x1000 + 3 * 0x1000 + 0x20, &name), FunctionBuckets::Found::kName);
  EXPECT_STREQ(name, "f0");  // 3 later starts, none containing it
  EXPECT_EQ(buckets.Find(0x1000 + 20 * 0x1000 + 0x20, &name), FunctionBuckets::Found::kNone);
}

const Dwfl_Callbacks kCallbacks = {
    .find_elf = dwfl_build_id_find_elf,
    .find_debuginfo = dwfl_standard_find_debuginfo,
    .section_address = nullptr,
    .debuginfo_path = nullptr,
};

void ExpectRealTableAgrees(const std::string& path) {
  Dwfl* dwfl = dwfl_begin(&kCallbacks);
  dwfl_report_begin(dwfl);
  Dwfl_Module* module = dwfl_report_elf(dwfl, "m", path.c_str(), -1, 0, true);
  dwfl_report_end(dwfl, nullptr, nullptr);
  ASSERT_NE(module, nullptr) << path;
  PackedFunctionTable table;
  FunctionTableRead read;
  ASSERT_TRUE(ReadPackedFunctionSymbols(module, &table, &read)) << path;
  EXPECT_EQ(read.candidates, table.packed.size());
  // What ReadFunctionSymbols returns, through the packed read.
  std::vector<FunctionSymbol> whole = ReadFunctionSymbols(module);
  std::vector<FunctionSymbol> picked = PickPackedFunctionSymbols(table);
  ASSERT_EQ(whole.size(), picked.size());
  for (size_t i = 0; i < whole.size(); ++i) {
    ASSERT_EQ(whole[i].start, picked[i].start);
    ASSERT_EQ(whole[i].end, picked[i].end);
    ASSERT_EQ(whole[i].name, picked[i].name);
  }
  // Every symbol's first, middle and last address, and just past it.
  FunctionBuckets buckets(table);
  for (const FunctionSymbol& s : whole) {
    for (uint64_t addr : {s.start, s.start + (s.end - s.start) / 2, s.end - 1, s.end}) {
      const char* expected = FindFunctionSymbol(whole, addr);
      const char* name = nullptr;
      FunctionBuckets::Found found = buckets.Find(addr, &name);
      if (found == FunctionBuckets::Found::kTied) {
        ASSERT_TRUE(AnswerIsTied(table, whole, addr)) << path << std::hex << " " << addr;
      } else if (found == FunctionBuckets::Found::kNone) {
        ASSERT_EQ(expected, nullptr) << path << std::hex << " " << addr;
      } else {
        ASSERT_STREQ(name, expected) << path << std::hex << " " << addr;
      }
    }
  }
  dwfl_end(dwfl);
}

std::string SelfPath() {
  char buf[4096];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  return n > 0 ? std::string(buf, static_cast<size_t>(n)) : "";
}

TEST(FunctionBucketsTest, RealTablesAgree) {
  ExpectRealTableAgrees(SelfPath());
  std::string libc;
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        if (info->dlpi_name != nullptr && std::strstr(info->dlpi_name, "libc.so") != nullptr) {
          *static_cast<std::string*>(data) = info->dlpi_name;
        }
        return 0;
      },
      &libc);
  if (!libc.empty()) ExpectRealTableAgrees(libc);
}

}  // namespace
}  // namespace heapsight::analyzer
