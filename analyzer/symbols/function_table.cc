// analyzer/symbols/function_table.cc: see function_table.h.
#include "analyzer/symbols/function_table.h"

#include <elf.h>
#include <gelf.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <memory>
#include <utility>

namespace heapsight::analyzer {
namespace {

// Through libdwfl, one symbol at a time (any table libdwfl can read).
void ReadThroughLibdwfl(Dwfl_Module* module, int n, std::vector<FunctionCandidate>* out) {
  for (int i = 0; i < n; ++i) {
    GElf_Sym sym;
    GElf_Addr value = 0;
    const char* name = dwfl_module_getsym_info(module, i, &sym, &value, nullptr, nullptr, nullptr);
    if (name == nullptr || name[0] == '\0' || GELF_ST_TYPE(sym.st_info) != STT_FUNC ||
        sym.st_shndx == SHN_UNDEF) {
      continue;
    }
    uint64_t size = sym.st_size == 0 ? 1 : sym.st_size;
    out->push_back({value, value + size, name, FunctionSymbolRank(GELF_ST_BIND(sym.st_info), name)});
  }
}

// The table libdwfl reads `module`'s n symbols from, when it is one plain
// ELF64 symbol table of one file; else false.
struct DirectTable {
  const Elf64_Sym* syms = nullptr;
  const char* strings = nullptr;
  size_t strings_size = 0;
  std::vector<char> alloc;  // by section index: SHF_ALLOC (libdwfl biases only those)
  GElf_Addr bias = 0;
};

bool FindDirectTable(Dwfl_Module* module, int n, DirectTable* t) {
  // The file of the first and of the last entry: libdwfl appends an
  // auxiliary table's (.gnu_debugdata) after the main one's, from another Elf.
  GElf_Sym sym;
  GElf_Addr value = 0;
  Elf* first = nullptr;
  Elf* last = nullptr;
  Dwarf_Addr first_bias = 0, last_bias = 0;
  if (dwfl_module_getsym_info(module, 0, &sym, &value, nullptr, &first, &first_bias) == nullptr ||
      dwfl_module_getsym_info(module, n - 1, &sym, &value, nullptr, &last, &last_bias) == nullptr ||
      first == nullptr || first != last || first_bias != last_bias) {
    return false;
  }
  Elf* elf = first;
  GElf_Ehdr ehdr;
  if (gelf_getclass(elf) != ELFCLASS64 || gelf_getehdr(elf, &ehdr) == nullptr ||
      ehdr.e_type == ET_REL) {
    return false;
  }
  size_t shnum = 0;
  if (elf_getshdrnum(elf, &shnum) != 0) return false;
  t->alloc.assign(shnum, 0);
  Elf_Scn* symtab = nullptr;
  Elf_Scn* dynsym = nullptr;
  GElf_Shdr table_shdr{};
  GElf_Shdr dynsym_shdr{};
  for (Elf_Scn* scn = elf_nextscn(elf, nullptr); scn != nullptr; scn = elf_nextscn(elf, scn)) {
    GElf_Shdr shdr;
    if (gelf_getshdr(scn, &shdr) == nullptr) return false;
    size_t index = elf_ndxscn(scn);
    if (index < shnum) t->alloc[index] = (shdr.sh_flags & SHF_ALLOC) != 0;
    if (shdr.sh_type == SHT_SYMTAB_SHNDX) return false;  // extended section indices
    if (shdr.sh_type != SHT_SYMTAB && shdr.sh_type != SHT_DYNSYM) continue;
    if (shdr.sh_entsize != sizeof(Elf64_Sym) ||
        shdr.sh_size / sizeof(Elf64_Sym) != static_cast<uint64_t>(n)) {
      continue;
    }
    if (shdr.sh_type == SHT_SYMTAB && symtab == nullptr) {
      symtab = scn;
      table_shdr = shdr;
    } else if (shdr.sh_type == SHT_DYNSYM && dynsym == nullptr) {
      dynsym = scn;
      dynsym_shdr = shdr;
    }
  }
  // libdwfl prefers .symtab.
  if (symtab == nullptr) {
    symtab = dynsym;
    table_shdr = dynsym_shdr;
  }
  if (symtab == nullptr) return false;
  Elf_Data* data = elf_getdata(symtab, nullptr);
  Elf_Scn* strscn = elf_getscn(elf, table_shdr.sh_link);
  Elf_Data* strdata = strscn != nullptr ? elf_getdata(strscn, nullptr) : nullptr;
  if (data == nullptr || data->d_type != ELF_T_SYM || data->d_buf == nullptr ||
      data->d_size < static_cast<size_t>(n) * sizeof(Elf64_Sym) || strdata == nullptr ||
      strdata->d_buf == nullptr) {
    return false;
  }
  t->syms = static_cast<const Elf64_Sym*>(data->d_buf);
  t->strings = static_cast<const char*>(strdata->d_buf);
  t->strings_size = strdata->d_size;
  t->bias = first_bias;
  return true;
}

// The address libdwfl gives symbol `s` (dwfl_module_getsym_info's value).
uint64_t DirectValue(const DirectTable& t, const Elf64_Sym& s) {
  uint16_t shndx = s.st_shndx;
  if (shndx == SHN_ABS || shndx == SHN_UNDEF || shndx == SHN_COMMON) return s.st_value;
  // A section libdwfl cannot find counts as allocated, as reserved indices do.
  bool alloc = shndx >= SHN_LORESERVE || shndx >= t.alloc.size() || t.alloc[shndx] != 0;
  return alloc ? s.st_value + t.bias : s.st_value;
}

// Whether `module`'s table is `t`, one that the walk below reads as
// libdwfl does.
bool OpenDirect(Dwfl_Module* module, int n, DirectTable* t) {
  if (!FindDirectTable(module, n, t)) return false;
  // A sample read through libdwfl must agree (name and address), else
  // something this walk does not know (an architecture's address mask, a
  // function descriptor) is in play: read it libdwfl's way.
  auto agrees = [&](int i) {
    const Elf64_Sym& s = t->syms[i];
    GElf_Sym sym;
    GElf_Addr value = 0;
    const char* name = dwfl_module_getsym_info(module, i, &sym, &value, nullptr, nullptr, nullptr);
    const char* mine = s.st_name < t->strings_size ? t->strings + s.st_name : nullptr;
    if (name != mine) return false;
    return name == nullptr || s.st_shndx == SHN_UNDEF || value == DirectValue(*t, s);
  };
  for (int i = 0; i < n; i += n / 64 + 1) {
    if (!agrees(i)) return false;
  }
  return agrees(n - 1);
}

// Calls add(start, end, bind, name_offset) for each defined function
// symbol of `t` with a name offset inside t.strings, in table order: the
// candidates ReadThroughLibdwfl would give, less those whose name is empty
// (the name is not read here: FunctionTable skips those when it looks);
// false if the table has an entry the walk does not know (SHN_XINDEX) or
// `add` returns false.
template <typename Add>
bool WalkDirect(const DirectTable& t, int n, Add add) {
  for (int i = 0; i < n; ++i) {
    const Elf64_Sym& s = t.syms[i];
    if (ELF64_ST_TYPE(s.st_info) != STT_FUNC || s.st_shndx == SHN_UNDEF) continue;
    if (s.st_shndx == SHN_XINDEX) return false;
    if (s.st_name >= t.strings_size) continue;  // libdwfl: no name
    uint64_t value = DirectValue(t, s);
    uint64_t size = s.st_size == 0 ? 1 : s.st_size;
    if (!add(value, value + size, ELF64_ST_BIND(s.st_info), s.st_name)) return false;
  }
  return true;
}

// PackFunctionCandidates' test and key for one candidate.
bool Packs(uint64_t start, uint64_t end, uint32_t rank) {
  return start <= kMaxPackedStart && end > start && end - start <= kMaxPackedSize && rank <= 3;
}
uint64_t PackedKey(uint64_t start, uint64_t end, uint32_t rank) {
  return (start << 32) | (uint64_t{rank} << 30) | (kMaxPackedSize - (end - start));
}

// The rank of a binding alone (FunctionSymbolRank less the __GI_ test).
uint32_t BindingRank(int bind) { return bind == STB_GLOBAL ? 0 : bind == STB_WEAK ? 1 : 2; }

bool IsGlibcInternalAlias(const char* name) {
  // Character by character, not strncmp: most of a C++ binary's names start
  // with '_' ("_Z...").
  return name[0] == '_' && name[1] == '_' && name[2] == 'G' && name[3] == 'I' && name[4] == '_';
}

// `packed` sorted by start (stable; the order within a start does not
// matter to FunctionTable). A radix sort of the start less the lowest,
// 11 bits a pass: two passes over node's 86 k candidates (21 bits of
// span) and libc's; std::sort of the whole table took about 15 M
// instructions for node's.
void SortByStart(std::vector<PackedFunctionCandidate>& packed) {
  const size_t n = packed.size();
  if (n < 2) return;
  uint64_t lowest = UINT64_MAX;
  uint64_t highest = 0;
  for (const PackedFunctionCandidate& c : packed) {
    lowest = std::min(lowest, c.start());
    highest = std::max(highest, c.start());
  }
  constexpr int kDigitBits = 11;
  constexpr uint64_t kDigitMask = (uint64_t{1} << kDigitBits) - 1;
  const int bits = std::bit_width(highest - lowest);
  if (bits == 0) return;
  // Not value-initialized: every element is written by a pass before it is read.
  std::unique_ptr<PackedFunctionCandidate[]> spare(new PackedFunctionCandidate[n]);
  PackedFunctionCandidate* from = packed.data();
  PackedFunctionCandidate* to = spare.get();
  for (int shift = 0; shift < bits; shift += kDigitBits) {
    std::array<uint32_t, kDigitMask + 1> place{};
    for (size_t i = 0; i < n; ++i) ++place[((from[i].start() - lowest) >> shift) & kDigitMask];
    uint32_t sum = 0;
    for (uint32_t& p : place) {
      const uint32_t count = p;
      p = sum;
      sum += count;
    }
    for (size_t i = 0; i < n; ++i) {
      to[place[((from[i].start() - lowest) >> shift) & kDigitMask]++] = from[i];
    }
    std::swap(from, to);
  }
  if (from != packed.data()) std::copy(from, from + n, packed.data());
}

}  // namespace

uint32_t FunctionSymbolRank(int bind, const char* name) {
  // glibc's internal aliases (__GI_foo) name the same code as foo.
  return IsGlibcInternalAlias(name) ? 3 : BindingRank(bind);
}

bool FunctionAliasBefore(const char* a, const char* b) {
  // The version is not part of the name ("clock_gettime@@GLIBC_2.17" is
  // shorter than "__clock_gettime"); between versions of one name, byte
  // order puts the default one ("@@") first.
  const size_t la = std::strcspn(a, "@");
  const size_t lb = std::strcspn(b, "@");
  if (la != lb) return la < lb;
  return std::strcmp(a, b) < 0;
}

bool FunctionSymbolBefore(const FunctionCandidate& a, const FunctionCandidate& b) {
  if (FunctionCandidateBefore(a, b)) return true;
  if (FunctionCandidateBefore(b, a)) return false;
  return FunctionAliasBefore(a.name, b.name);
}

bool PackFunctionCandidates(const std::vector<FunctionCandidate>& candidates,
                            std::vector<PackedFunctionCandidate>* packed) {
  if (candidates.size() > UINT32_MAX) return false;
  packed->clear();
  packed->reserve(candidates.size());
  for (size_t i = 0; i < candidates.size(); ++i) {
    const FunctionCandidate& c = candidates[i];
    if (!Packs(c.start, c.end, c.rank)) return false;
    packed->push_back({PackedKey(c.start, c.end, c.rank), static_cast<uint32_t>(i)});
  }
  return true;
}

std::vector<FunctionSymbol> PickFunctionSymbols(std::vector<FunctionCandidate> candidates) {
  std::sort(candidates.begin(), candidates.end(), FunctionSymbolBefore);
  std::vector<FunctionSymbol> out;
  out.reserve(candidates.size());
  for (const FunctionCandidate& c : candidates) {
    if (!out.empty() && out.back().start == c.start) continue;
    out.push_back({c.start, c.end, c.name});
  }
  return out;
}

const char* FindFunctionSymbol(const std::vector<FunctionSymbol>& symbols, uint64_t addr) {
  auto it = std::upper_bound(symbols.begin(), symbols.end(), addr,
                             [](uint64_t a, const FunctionSymbol& s) { return a < s.start; });
  for (int i = 0; i < kFunctionSymbolScanBack && it != symbols.begin(); ++i) {
    --it;
    if (addr < it->end) return it->name;
  }
  return nullptr;
}

FunctionTable::FunctionTable(PackedFunctionTable table)
    : sorted_(std::move(table.packed)), strings_(table.strings) {
  SortByStart(sorted_);
}

FunctionTable::FunctionTable(std::vector<FunctionCandidate> candidates) {
  if (!PackFunctionCandidates(candidates, &sorted_)) {
    sorted_.clear();
    symbols_ = PickFunctionSymbols(std::move(candidates));
    return;
  }
  names_.reserve(candidates.size());
  for (const FunctionCandidate& c : candidates) names_.push_back(c.name);
  SortByStart(sorted_);
}

const PackedFunctionCandidate* FunctionTable::Choose(size_t first, size_t end) const {
  const PackedFunctionCandidate* best = nullptr;
  FunctionCandidate best_candidate{};
  for (size_t k = first; k < end; ++k) {
    const PackedFunctionCandidate& c = sorted_[k];
    const char* name = NameOf(c.index);
    if (name[0] == '\0') continue;  // libdwfl gives no such symbol
    // The packed rank is the binding's (a directly read table's names are
    // not read until here): the __GI_ test told now.
    const FunctionCandidate candidate{c.start(), c.end(), name,
                                      IsGlibcInternalAlias(name) ? 3 : c.rank()};
    if (best == nullptr || FunctionSymbolBefore(candidate, best_candidate)) {
      best = &c;
      best_candidate = candidate;
    }
  }
  return best;
}

const char* FunctionTable::Find(uint64_t addr) const {
  if (!symbols_.empty()) return FindFunctionSymbol(symbols_, addr);
  // FindFunctionSymbol's scan over the starts at or before `addr`, each
  // start's symbol chosen as the scan reaches it.
  size_t end = static_cast<size_t>(
      std::upper_bound(sorted_.begin(), sorted_.end(), addr,
                       [](uint64_t a, const PackedFunctionCandidate& c) { return a < c.start(); }) -
      sorted_.begin());
  for (int starts = 0; end > 0 && starts < kFunctionSymbolScanBack;) {
    const uint64_t start = sorted_[end - 1].start();
    size_t first = end - 1;
    while (first > 0 && sorted_[first - 1].start() == start) --first;
    const PackedFunctionCandidate* symbol = Choose(first, end);
    end = first;
    if (symbol == nullptr) continue;  // no candidate with a name: no symbol there
    ++starts;
    if (addr < symbol->end()) return NameOf(symbol->index);
  }
  return nullptr;
}

std::vector<FunctionSymbol> FunctionTable::Symbols() const {
  if (!symbols_.empty()) return symbols_;
  std::vector<FunctionSymbol> out;
  for (size_t first = 0; first < sorted_.size();) {
    size_t end = first + 1;
    while (end < sorted_.size() && sorted_[end].start() == sorted_[first].start()) ++end;
    if (const PackedFunctionCandidate* c = Choose(first, end)) {
      out.push_back({c->start(), c->end(), NameOf(c->index)});
    }
    first = end;
  }
  return out;
}

bool ReadPackedFunctionSymbols(Dwfl_Module* module, PackedFunctionTable* table,
                               FunctionTableRead* read) {
  int n = module != nullptr ? dwfl_module_getsymtab(module) : -1;
  DirectTable t;
  if (n <= 0 || !OpenDirect(module, n, &t)) return false;
  // Packed straight from the table (the binding's rank, the name's offset
  // carried), no candidate vector in between, and no name read: node's
  // names fill 7.5 MB, which the empty-name and __GI_ tests of every
  // candidate touched (about 1.4 ms of page mapping and cache misses).
  std::vector<PackedFunctionCandidate>& packed = table->packed;
  packed.clear();
  packed.reserve(static_cast<size_t>(n));
  bool packs = WalkDirect(t, n, [&](uint64_t start, uint64_t end, int bind, uint32_t name) {
    const uint32_t rank = BindingRank(bind);
    if (!Packs(start, end, rank)) return false;
    packed.push_back({PackedKey(start, end, rank), name});
    return true;
  });
  if (!packs) return false;
  table->strings = t.strings;
  if (read != nullptr) {
    read->direct = true;
    read->symbols = static_cast<uint64_t>(n);
    read->candidates = packed.size();
  }
  return true;
}

FunctionTable ReadFunctionSymbols(Dwfl_Module* module, FunctionTableRead* read,
                                  bool allow_direct) {
  if (allow_direct) {
    PackedFunctionTable table;
    if (ReadPackedFunctionSymbols(module, &table, read)) return FunctionTable(std::move(table));
  }
  std::vector<FunctionCandidate> candidates;
  int n = module != nullptr ? dwfl_module_getsymtab(module) : -1;
  bool direct = false;
  DirectTable t;
  if (n > 0 && allow_direct && OpenDirect(module, n, &t)) {
    // A candidate that does not pack: the candidates themselves.
    direct = WalkDirect(t, n, [&](uint64_t start, uint64_t end, int bind, uint32_t name_offset) {
      const char* name = t.strings + name_offset;
      if (name[0] != '\0') candidates.push_back({start, end, name, FunctionSymbolRank(bind, name)});
      return true;
    });
  }
  if (n > 0 && !direct) {
    candidates.clear();
    ReadThroughLibdwfl(module, n, &candidates);
  }
  if (read != nullptr) {
    read->direct = direct;
    read->symbols = n > 0 ? static_cast<uint64_t>(n) : 0;
    read->candidates = candidates.size();
  }
  return FunctionTable(std::move(candidates));
}

}  // namespace heapsight::analyzer
