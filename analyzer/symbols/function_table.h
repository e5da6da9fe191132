// analyzer/symbols/function_table.h: a module's function symbols, sorted by
// address with one name per address, read straight from the ELF symbol
// table libdwfl chose.
//
// The symbolizer names a return address by the function symbol containing
// it (symbolizer.cc's SymbolAt). node's binary has 110 k symbols: read one
// by one through dwfl_module_getsym_info (about 270 instructions each: a
// section header lookup per symbol) and sorted with std::sort by (address,
// binding, size), the table cost about 75 M instructions, a seventh of a
// node report's main thread, for the thousand addresses the report asks
// about. Here the table's Elf64_Sym array is walked in place (the same
// candidates libdwfl gives), sorted by address with a radix sort, and
// each address's name chosen when a lookup reaches it (FunctionTable).
//
// One name per address: of the function symbols starting there, the global
// one before the weak one before the local one (glibc's __GI_ aliases
// last), then the longest; among aliases equal in all three (identical
// code under several names: libc's printf and _IO_printf, node's folded
// template instances; node's binary has 6,473 such starts, libc's 338),
// the shortest name, then the first in byte order (FunctionAliasBefore).
// Until 2026-12-06 that last choice was std::sort's over the whole table,
// a function of the table's order that only a full sort could answer
// (node's table was sorted on a thread of its own for it); a rule on the
// names lets any sort give it, and the lookup choose it, and gives the
// name a user knows: printf, not _IO_printf; free, not cfree;
// _nl_make_l10nflist, not _nl_make_l10nflist.localalias.
#ifndef HEAPSIGHT_ANALYZER_SYMBOLS_FUNCTION_TABLE_H_
#define HEAPSIGHT_ANALYZER_SYMBOLS_FUNCTION_TABLE_H_

#include <cstdint>
#include <vector>

#include <elfutils/libdwfl.h>

namespace heapsight::analyzer {

struct FunctionSymbol {
  uint64_t start;
  uint64_t end;      // start + size (start + 1 for a symbol without a size)
  const char* name;  // owned by the module's libelf
};

// A function symbol as read, before PickFunctionSymbols.
struct FunctionCandidate {
  uint64_t start;
  uint64_t end;
  const char* name;
  uint32_t rank;  // lower is preferred: global 0, weak 1, local 2, __GI_ alias 3
};

// The rank of a defined function symbol of binding `bind` named `name`.
uint32_t FunctionSymbolRank(int bind, const char* name);

inline constexpr uint64_t kMaxPackedStart = UINT32_MAX;
inline constexpr uint64_t kMaxPackedSize = (uint64_t{1} << 30) - 1;

// A candidate as one integer and a name: start in the high 32 bits, rank
// in the next 2, and kMaxPackedSize less the size (end - start) in the low
// 30 (so that the key orders as FunctionCandidateBefore); `index` names
// the candidate (its position, or in a table read directly its name's
// offset in the string table).
struct PackedFunctionCandidate {
  uint64_t key;
  uint32_t index;

  uint64_t start() const { return key >> 32; }
  uint64_t end() const { return start() + (kMaxPackedSize - (key & kMaxPackedSize)); }
  uint32_t rank() const { return static_cast<uint32_t>(key >> 30) & 3; }
};

// `candidates` packed in their order, or false (and `packed` unspecified)
// when one does not fit: a start above kMaxPackedStart, an end not above
// its start (wrapped), a size above kMaxPackedSize or a rank above 3.
bool PackFunctionCandidates(const std::vector<FunctionCandidate>& candidates,
                            std::vector<PackedFunctionCandidate>* packed);

// The order PickFunctionSymbols sorts candidates in: by start, then the
// lowest rank, then the greatest end.
inline bool FunctionCandidateBefore(const FunctionCandidate& a, const FunctionCandidate& b) {
  if (a.start != b.start) return a.start < b.start;
  if (a.rank != b.rank) return a.rank < b.rank;
  return a.end > b.end;
}

// Among aliases equal in start, rank and end, whether `a` is kept before
// `b`: the shorter name without its symbol version (clock_gettime@@GLIBC_2.17
// before __clock_gettime), then the first in byte order (the default
// version "@@" before the others).
bool FunctionAliasBefore(const char* a, const char* b);

// The order that decides which candidate names a start: FunctionCandidateBefore,
// then FunctionAliasBefore among aliases equal in all three (a total order on
// distinct names). PickFunctionSymbols sorts by it and keeps each start's
// first; FunctionTable::Find chooses the same candidate by it.
bool FunctionSymbolBefore(const FunctionCandidate& a, const FunctionCandidate& b);

// Sorted by start, one symbol per start: the lowest rank, then the
// greatest end, then FunctionAliasBefore's name (a function of the
// candidates' set, not of their order), by std::sort of the candidates:
// the definition FunctionTable answers by, and its path for candidates
// that do not pack.
std::vector<FunctionSymbol> PickFunctionSymbols(std::vector<FunctionCandidate> candidates);

// The symbol SymbolAt (symbolizer.cc) names `addr` by in a table sorted
// by start with one symbol per start: of the (at most) 8 symbols starting
// last at or before `addr`, the one starting last that contains it (symbols
// may nest or overlap); null if none does.
const char* FindFunctionSymbol(const std::vector<FunctionSymbol>& symbols, uint64_t addr);
// The scan's reach: how many symbols back from `addr` it looks.
inline constexpr int kFunctionSymbolScanBack = 8;

// A table read directly (ReadPackedFunctionSymbols): its candidates packed
// in table order, each `index` the offset of its name in `strings`, each
// rank the binding's only (global 0, weak 1, local 2): the name is not
// read (below).
struct PackedFunctionTable {
  std::vector<PackedFunctionCandidate> packed;
  const char* strings = nullptr;  // owned by the module's libelf
};

// A module's function symbols: Find(addr) is
// FindFunctionSymbol(PickFunctionSymbols(candidates), addr).
//
// The candidates are kept, sorted by start only (a radix sort: two passes
// for node's binary and for libc), and the symbol of a start is chosen
// when a lookup reaches it: of its candidates with a non-empty name, the
// lowest rank (a __GI_ name's 3 told then), the greatest end, then
// FunctionAliasBefore. A report looks up about a thousand addresses; node's
// binary has 110 k symbols whose names fill 7.5 MB: choosing every start's
// symbol when the table is read touched every name (the empty-name and
// __GI_ tests, ~9,000 alias comparisons of long C++ names: about 4 ms of the
// analysing thread, before the pass could classify its first site) and
// wrote a 1.9 MB table of the winners. Thread-safe to read.
class FunctionTable {
 public:
  FunctionTable() = default;
  // A table read directly (consumed).
  explicit FunctionTable(PackedFunctionTable table);
  // Any candidates (each rank FunctionSymbolRank's).
  explicit FunctionTable(std::vector<FunctionCandidate> candidates);

  const char* Find(uint64_t addr) const;
  // PickFunctionSymbols' whole answer (every start chosen; for tests).
  std::vector<FunctionSymbol> Symbols() const;

 private:
  const char* NameOf(uint32_t index) const {
    return strings_ != nullptr ? strings_ + index : names_[index];
  }
  // The chosen candidate among sorted_[first, end) (one start), or null
  // when every name there is empty.
  const PackedFunctionCandidate* Choose(size_t first, size_t end) const;

  std::vector<PackedFunctionCandidate> sorted_;  // by start
  const char* strings_ = nullptr;                // names by offset (a direct read)
  std::vector<const char*> names_;               // else by position
  std::vector<FunctionSymbol> symbols_;          // candidates that do not pack: picked at once
};

// How ReadFunctionSymbols read the table.
struct FunctionTableRead {
  bool direct = false;      // walked the Elf64_Sym array (else dwfl_module_getsym_info)
  uint64_t symbols = 0;     // entries in the table
  uint64_t candidates = 0;  // defined function symbols with a name offset among them
};

// The function symbols of `module`'s symbol table (the one libdwfl uses:
// .symtab of the file or of its separate debug file, else .dynsym). Reads
// the table's array directly when it is one plain ELF64 table (no
// auxiliary table, no extended section indices, not relocatable) and a
// sample of its entries reads the same through dwfl_module_getsym_info;
// otherwise, or when `allow_direct` is false (the tests' reference),
// through dwfl_module_getsym_info.
FunctionTable ReadFunctionSymbols(Dwfl_Module* module, FunctionTableRead* read = nullptr,
                                  bool allow_direct = true);

// ReadFunctionSymbols' direct path: true and *table when `module`'s table
// is read directly and every candidate packs (then FunctionTable(*table)
// is what ReadFunctionSymbols returns), else false (*table unspecified).
// No name is read beyond the libdwfl tests of the sample.
bool ReadPackedFunctionSymbols(Dwfl_Module* module, PackedFunctionTable* table,
                               FunctionTableRead* read = nullptr);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_SYMBOLS_FUNCTION_TABLE_H_
