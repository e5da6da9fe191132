// analyzer/symbols/symbolizer.cc: see symbolizer.h.
#include "analyzer/symbols/symbolizer.h"

#include <cxxabi.h>
#include <dwarf.h>
#include <elfutils/libdw.h>
#include <elfutils/libdwfl.h>
#include <sys/stat.h>

#include <cerrno>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <utility>
#include <string_view>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "analyzer/symbols/debuginfod_gate.h"
#include "analyzer/symbols/debuginfo_lookup.h"
#include "analyzer/symbols/function_table.h"
#include "analyzer/symbols/inflated_debug_file.h"
#include "analyzer/symbols/runtime_filter.h"

namespace heapsight::analyzer {
namespace {

std::string Demangle(const char* raw) {
  if (raw == nullptr) return "";
  // ELF symbol versions ("memcpy@@GLIBC_2.14") are not part of the name.
  std::string unversioned = StripSymbolVersion(raw);
  const char* name = unversioned.c_str();
  if (name[0] == '_' && name[1] == 'Z') {
    int status = 0;
    char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
    if (status == 0 && out != nullptr) {
      std::string result(out);
      std::free(out);
      return result;
    }
    std::free(out);
  }
  return unversioned;
}

std::string DieFunctionName(Dwarf_Die* die) {
  Dwarf_Attribute attr;
  const char* linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_linkage_name, &attr));
  if (linkage == nullptr) {
    linkage = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr));
  }
  if (linkage != nullptr) return Demangle(linkage);
  const char* name = dwarf_formstring(dwarf_attr_integrate(die, DW_AT_name, &attr));
  return name != nullptr ? name : "";
}

// `name` made absolute against the compilation directory, with "." and
// ".." components folded lexically.
std::string SourcePath(const char* name, const char* comp_dir) {
  std::string path = name;
  if (path.empty()) return path;
  if (path[0] != '/' && comp_dir != nullptr && comp_dir[0] == '/') {
    path = std::string(comp_dir) + "/" + path;
  }
  if (path[0] != '/') return path;
  std::vector<std::string_view> parts;
  std::string_view rest(path);
  while (!rest.empty()) {
    size_t slash = rest.find('/');
    std::string_view part = rest.substr(0, slash);
    rest = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    if (part.empty() || part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();
      continue;
    }
    parts.push_back(part);
  }
  std::string out;
  for (std::string_view part : parts) {
    out += '/';
    out += part;
  }
  return out.empty() ? "/" : out;
}

// A file as the sessions are shared: path and build id.
std::string FileKey(const Module& m) { return absl::StrCat(m.path, "\n", m.build_id_hex); }

std::string HexOf(const unsigned char* bytes, int len) {
  std::string out;
  for (int i = 0; i < len; ++i) absl::StrAppendFormat(&out, "%02x", bytes[i]);
  return out;
}

}  // namespace

// A file's function table (function_table.h) and the session whose libelf
// holds its names; shared by the Symbolizers of SymbolTableClaims.
struct SharedFunctionTable {
  FunctionTable symbols;
  std::shared_ptr<Dwfl> owner;
};

// Per-file state: the libdwfl session plus indexes that make lookups
// O(log n) instead of libdwfl's linear symbol scans and whole-CU DIE walks.
struct Symbolizer::ModuleSession {
  struct FunctionRange {
    uint64_t low;
    uint64_t high;
    Dwarf_Die die;
  };
  struct CuIndex {
    std::vector<FunctionRange> functions;  // sorted by low
    Dwarf_Files* files = nullptr;
    size_t nfiles = 0;
    std::string comp_dir;
  };

  // The session of the symbol table and the build id (owned by dwfl_owner,
  // shared with a table read through it), and (dwarf_dwfl,
  // opened by LoadDwarf) the session of the DWARF: the symbol table read
  // first must not leave libdwfl holding the compressed debug file, whose
  // DWARF it would then inflate itself.
  Dwfl* dwfl = nullptr;
  std::shared_ptr<Dwfl> dwfl_owner;
  Dwfl_Module* module = nullptr;
  Dwfl* dwarf_dwfl = nullptr;
  Dwfl_Module* dwarf_module = nullptr;
  // The inflated debug file dwarf_dwfl reads (in-memory sessions), unmapped
  // after dwfl_end.
  InflatedDebugImage dwarf_image;
  std::string path;
  bool symbols_loaded = false;
  // Set when the Symbolizer shares a SymbolTableClaims: reading the table
  // claims it (file_key) first, so that a helper thread skips it.
  std::shared_ptr<SymbolTableClaims> claims;
  std::string file_key;
  bool dwarf_tried = false;
  bool has_dwarf = false;
  bool dwarf_indexed = false;  // IndexDwarf
  // A return address of the trace in this file, as an ELF address
  // (Preload's), for IndexDwarf; UINT64_MAX: none.
  uint64_t sample_addr = UINT64_MAX;
  // The table (sorted by start), maybe read by another Symbolizer's session.
  std::shared_ptr<const SharedFunctionTable> table;
  absl::flat_hash_map<Dwarf_Off, std::unique_ptr<CuIndex>> cus;
  absl::flat_hash_map<Dwarf_Off, std::string> names;  // function DIE -> qualified name

  ~ModuleSession() {
    if (dwarf_dwfl != nullptr) dwfl_end(dwarf_dwfl);
  }

  const char* SymbolAt(uint64_t addr) {
    if (!symbols_loaded) LoadSymbols();
    return table->symbols.Find(addr);
  }

  // Reads and decompresses the module's DWARF (libdwfl would on the first
  // line or DIE lookup; done here so that it is done once and counted).
  void LoadDwarf() {
    if (dwarf_tried) return;
    dwarf_tried = true;
    if (module != nullptr) {
      // A compressed debug file found by build id: inflated into this
      // process's memory, not a memfd (OpenInMemoryDwarf).
      InMemoryDwarf in_memory = OpenInMemoryDwarf(module);
      if (in_memory.dwfl != nullptr) {
        dwarf_dwfl = in_memory.dwfl;
        dwarf_module = in_memory.module;
        dwarf_image = std::move(in_memory.image);
        Dwarf_Addr bias = 0;
        has_dwarf = dwfl_module_getdwarf(dwarf_module, &bias) != nullptr;
        return;
      }
    }
    dwarf_dwfl = dwfl_begin(&DwarfCallbacks());
    if (dwarf_dwfl == nullptr) return;
    dwfl_report_begin(dwarf_dwfl);
    dwarf_module = dwfl_report_elf(dwarf_dwfl, BaseName(path).c_str(), path.c_str(), -1, 0, true);
    dwfl_report_end(dwarf_dwfl, nullptr, nullptr);
    if (dwarf_module == nullptr) return;
    Dwarf_Addr bias = 0;
    has_dwarf = dwfl_module_getdwarf(dwarf_module, &bias) != nullptr;
  }

  // Builds libdw's and libdwfl's address index of DWARF loaded into memory
  // (the arange table, read and sorted, and every unit header up to the
  // one at `addr`: ~2 ms for libc's) with one lookup at `addr`, so that the
  // helper thread that loaded it pays for that instead of the report's first
  // Symbolize after the pass, on the one thread left running then. The line
  // table of the unit there comes along. Only for an in-memory image, whose
  // pages are resident anyway: through a memfd the walk over the unit
  // headers would map most of .debug_info into the RSS while the pass holds
  // its own memory (+7 MB on node and python when tried, node19).
  void IndexDwarf(uint64_t addr) {
    if (!has_dwarf || dwarf_indexed || dwarf_image.data() == nullptr) return;
    dwarf_indexed = true;
    Dwarf_Addr bias = 0;
    dwfl_module_addrdie(dwarf_module, addr, &bias);
    dwfl_module_getsrc(dwarf_module, addr);
  }

  void LoadSymbols() {
    symbols_loaded = true;
    auto read = [this] {
      if (claims != nullptr) claims->NoteTableRead(dwfl_module_getsymtab(module));
      auto t = std::make_shared<SharedFunctionTable>();
      t->symbols = ReadFunctionSymbols(module);
      t->owner = dwfl_owner;
      return std::shared_ptr<const SharedFunctionTable>(std::move(t));
    };
    if (claims != nullptr) {
      claims->Claim(file_key);
      table = claims->Table(file_key, read);
    } else {
      table = read();
    }
  }

  CuIndex& IndexOf(Dwarf_Die* cu) {
    auto [it, inserted] = cus.try_emplace(dwarf_dieoffset(cu), nullptr);
    if (!inserted) return *it->second;
    it->second = std::make_unique<CuIndex>();
    CuIndex& index = *it->second;
    if (dwarf_getsrcfiles(cu, &index.files, &index.nfiles) != 0) {
      index.files = nullptr;
      index.nfiles = 0;
    }
    Dwarf_Attribute attr;
    if (const char* dir = dwarf_formstring(dwarf_attr(cu, DW_AT_comp_dir, &attr))) {
      index.comp_dir = dir;
    }
    CollectFunctions(cu, index, 0);
    std::sort(index.functions.begin(), index.functions.end(),
              [](const FunctionRange& a, const FunctionRange& b) { return a.low < b.low; });
    return index;
  }

  static void CollectFunctions(Dwarf_Die* parent, CuIndex& index, int depth) {
    if (depth > 64) return;
    Dwarf_Die child;
    if (dwarf_child(parent, &child) != 0) return;
    do {
      int tag = dwarf_tag(&child);
      if (tag == DW_TAG_subprogram) {
        Dwarf_Addr base = 0, low = 0, high = 0;
        ptrdiff_t offset = 0;
        int guard = 0;
        while ((offset = dwarf_ranges(&child, offset, &base, &low, &high)) > 0 &&
               ++guard < 4096) {
          if (high > low) index.functions.push_back({low, high, child});
        }
      } else if (tag == DW_TAG_namespace || tag == DW_TAG_class_type ||
                 tag == DW_TAG_structure_type || tag == DW_TAG_union_type ||
                 tag == DW_TAG_module) {
        CollectFunctions(&child, index, depth + 1);
      }
    } while (dwarf_siblingof(&child, &child) == 0);
  }

  // The function containing `pc` in this CU, or null.
  static const FunctionRange* FunctionAt(const CuIndex& index, uint64_t pc) {
    auto it = std::upper_bound(index.functions.begin(), index.functions.end(), pc,
                               [](uint64_t a, const FunctionRange& f) { return a < f.low; });
    for (int i = 0; i < 16 && it != index.functions.begin(); ++i) {
      --it;
      if (pc < it->high) return &*it;
    }
    return nullptr;
  }

  // Inlined-subroutine DIEs containing `pc` inside `function`, outermost
  // first.
  static void InlinedChain(Dwarf_Die* parent, uint64_t pc, std::vector<Dwarf_Die>& chain,
                           int depth) {
    if (depth > 256) return;
    Dwarf_Die child;
    if (dwarf_child(parent, &child) != 0) return;
    do {
      int tag = dwarf_tag(&child);
      if (tag != DW_TAG_inlined_subroutine && tag != DW_TAG_lexical_block &&
          tag != DW_TAG_try_block && tag != DW_TAG_catch_block) {
        continue;
      }
      bool has_pc = dwarf_hasattr(&child, DW_AT_low_pc) || dwarf_hasattr(&child, DW_AT_ranges);
      if (has_pc && dwarf_haspc(&child, pc) != 1) continue;
      if (!has_pc && tag == DW_TAG_inlined_subroutine) continue;
      if (tag == DW_TAG_inlined_subroutine) chain.push_back(child);
      InlinedChain(&child, pc, chain, depth + 1);
      if (has_pc) return;
    } while (dwarf_siblingof(&child, &child) == 0);
  }

  // Qualified, demangled name of a function DIE (subprogram or inlined
  // instance), cached per DIE.
  const std::string& FunctionName(Dwarf_Die* die) {
    Dwarf_Die target = *die;
    for (int hops = 0; hops < 8; ++hops) {
      Dwarf_Attribute attr;
      Dwarf_Die next;
      if (dwarf_attr(&target, DW_AT_abstract_origin, &attr) != nullptr ||
          dwarf_attr(&target, DW_AT_specification, &attr) != nullptr) {
        if (dwarf_formref_die(&attr, &next) == nullptr) break;
        target = next;
      } else {
        break;
      }
    }
    auto [it, inserted] = names.try_emplace(dwarf_dieoffset(&target));
    if (!inserted) return it->second;
    std::string name = DieFunctionName(die);
    Dwarf_Attribute attr;
    bool has_linkage = dwarf_attr_integrate(die, DW_AT_linkage_name, &attr) != nullptr ||
                       dwarf_attr_integrate(die, DW_AT_MIPS_linkage_name, &attr) != nullptr;
    if (!has_linkage && !name.empty()) {
      Dwarf_Die* scopes = nullptr;
      int n = dwarf_getscopes_die(&target, &scopes);
      std::string prefix;
      for (int i = 1; i < n; ++i) {
        int tag = dwarf_tag(&scopes[i]);
        if (tag != DW_TAG_namespace && tag != DW_TAG_class_type &&
            tag != DW_TAG_structure_type && tag != DW_TAG_union_type) {
          continue;
        }
        const char* scope_name = dwarf_diename(&scopes[i]);
        prefix = std::string(scope_name != nullptr ? scope_name : "(anonymous namespace)") +
                 "::" + prefix;
      }
      std::free(scopes);
      name = prefix + name;
    }
    it->second = std::move(name);
    return it->second;
  }
};

std::string UnknownFrameName(const SymbolizedLocation& location) {
  if (location.module == nullptr) return UnknownFrameName("", 0, location.address);
  return UnknownFrameName(location.module->path, location.module_offset, location.address);
}

namespace {

// The address ranges module `m` answers Contains for, [first, last].
std::vector<std::pair<uint64_t, uint64_t>> RangesOf(const Module& m) {
  std::vector<std::pair<uint64_t, uint64_t>> out;
  if (m.segments.empty()) out.emplace_back(m.load_address, UINT64_MAX);
  for (const format::SegmentInfo& seg : m.segments) {
    // Contains: addr >= start && addr - start < memsz (start wraps as the
    // sum does; a segment reaching past the top ends there).
    uint64_t start = m.load_address + seg.vaddr;
    if (seg.memsz == 0) continue;
    uint64_t last = start + (seg.memsz - 1);
    out.emplace_back(start, last < start ? UINT64_MAX : last);
  }
  return out;
}

}  // namespace

Symbolizer::Symbolizer(std::vector<Module> modules) : modules_(std::move(modules)) {
  LinkDebuginfodGate();
  sessions_.resize(modules_.size());
  // FindModule's intervals: a sweep over every range's first address and
  // the address after its last, the newest (highest index) range covering
  // each piece answering it.
  struct Range {
    uint64_t first;
    uint64_t last;
    size_t module;
  };
  std::vector<Range> ranges;
  std::vector<uint64_t> points;
  for (size_t i = 0; i < modules_.size(); ++i) {
    for (const auto& [first, last] : RangesOf(modules_[i])) {
      ranges.push_back({first, last, i});
      points.push_back(first);
      if (last != UINT64_MAX) points.push_back(last + 1);
    }
  }
  std::sort(points.begin(), points.end());
  points.erase(std::unique(points.begin(), points.end()), points.end());
  std::sort(ranges.begin(), ranges.end(),
            [](const Range& a, const Range& b) { return a.first < b.first; });
  // Open ranges as (module, last), a max-heap: the newest on top; a range
  // that has ended leaves when it comes to the top.
  std::vector<std::pair<size_t, uint64_t>> open;
  size_t next = 0;
  for (size_t k = 0; k < points.size(); ++k) {
    uint64_t at = points[k];
    while (next < ranges.size() && ranges[next].first <= at) {
      open.emplace_back(ranges[next].module, ranges[next].last);
      std::push_heap(open.begin(), open.end());
      ++next;
    }
    while (!open.empty() && open.front().second < at) {
      std::pop_heap(open.begin(), open.end());
      open.pop_back();
    }
    if (open.empty()) continue;
    size_t module = open.front().first;
    uint64_t last = k + 1 < points.size() ? points[k + 1] - 1 : UINT64_MAX;
    if (!intervals_.empty() && intervals_.back().module == module &&
        intervals_.back().last + 1 == at) {
      intervals_.back().last = last;
    } else {
      intervals_.push_back({at, last, module});
    }
  }
}

Symbolizer::~Symbolizer() = default;

void Symbolizer::Preload(const std::vector<uint64_t>& ips,
                         const std::vector<std::string>& symbols_elsewhere,
                         bool runtime_dwarf, const std::function<bool()>& runtime_gate) {
  std::vector<bool> wanted(modules_.size(), false);
  std::vector<uint64_t> first_ip(modules_.size(), 0);  // a wanted module's first ip
  for (uint64_t ip : ips) {
    if (const Module* m = FindModule(ip)) {
      const size_t i = static_cast<size_t>(m - modules_.data());
      if (!wanted[i]) first_ip[i] = ip;
      wanted[i] = true;
    }
  }
  // The debug info first, every module's but the C/C++ runtime's, then the
  // symbol tables: a helper thread started as the pass begins decompresses
  // DWARF while the classifier reads the tables it needs on the
  // analysis thread, and skips each table the classifier has claimed by
  // the time it gets to it (node's: 110 k symbols, ~110 M instructions).
  for (size_t i = 0; i < modules_.size(); ++i) {
    if (!wanted[i]) continue;
    ModuleSession* session = SessionFor(&modules_[i]);
    const uint64_t offset = first_ip[i] - modules_[i].load_address;
    if (session->sample_addr == UINT64_MAX && offset > 0) session->sample_addr = offset - 1;
    // The C/C++ runtime's DWARF is left for the first Symbolize that needs
    // it: its frames are the program's calls into libc and the like, which
    // reports seldom print, and libc's is 10 MB decompressed, held from the
    // pass's start to the end (cc1plus's report prints no libc frame).
    if (session->module != nullptr && !IsRuntimeLibrary(modules_[i].path)) {
      session->LoadDwarf();
      if (session->sample_addr != UINT64_MAX) session->IndexDwarf(session->sample_addr);
    }
  }
  if (runtime_dwarf && (!runtime_gate || runtime_gate())) {
    // Before the tables, so that the analysis thread reads the ones it
    // needs meanwhile. One thread: this runs beside the pass, whose main
    // thread is the one the report waits for.
    ScopedSerialInflation serial;
    PreloadRuntimeDebugInfo();  // the sessions opened above: the wanted modules'
  }
  for (size_t i = 0; i < modules_.size(); ++i) {
    if (!wanted[i]) continue;
    ModuleSession* session = SessionFor(&modules_[i]);
    if (session->module == nullptr || session->symbols_loaded) continue;
    // A table read elsewhere is read and sorted once: AdoptSessions pairs
    // it with this instance's debug info.
    std::string key = FileKey(modules_[i]);
    if (std::find(symbols_elsewhere.begin(), symbols_elsewhere.end(), key) !=
        symbols_elsewhere.end()) {
      continue;
    }
    if (claims_ != nullptr && !claims_->Claim(key)) continue;
    session->LoadSymbols();
  }
}

void Symbolizer::PreloadRuntimeDebugInfo() {
  for (size_t i = 0; i < modules_.size(); ++i) {
    ModuleSession* session = sessions_[i].get();
    if (session == nullptr || session->module == nullptr) continue;
    // Not the loader's: its frames are in its own allocations' stacks,
    // which reports seldom print (Symbolize reads it if one does).
    if (IsRuntimeLibrary(modules_[i].path) && !IsDynamicLoader(modules_[i].path)) {
      session->LoadDwarf();
      if (session->sample_addr != UINT64_MAX) session->IndexDwarf(session->sample_addr);
    }
  }
}

bool SymbolTableClaims::Claim(const std::string& file) {
  std::lock_guard<std::mutex> lock(mu_);
  return files_.insert(file).second;
}

std::shared_ptr<const SharedFunctionTable> SymbolTableClaims::Table(
    const std::string& file,
    const std::function<std::shared_ptr<const SharedFunctionTable>()>& build) {
  std::shared_ptr<Slot> slot;
  {
    std::lock_guard<std::mutex> lock(mu_);
    std::shared_ptr<Slot>& s = tables_[file];
    if (s == nullptr) s = std::make_shared<Slot>();
    slot = s;
  }
  std::call_once(slot->once, [&] { slot->table = build(); });
  return slot->table;
}

void Symbolizer::ShareSymbolTableClaims(std::shared_ptr<SymbolTableClaims> claims) {
  claims_ = std::move(claims);
  for (auto& [key, session] : session_by_file_) {
    session->claims = claims_;
    session->file_key = key;
  }
}

std::vector<std::string> Symbolizer::FilesWithSymbols() const {
  std::vector<std::string> files;
  for (const auto& [key, session] : session_by_file_) {
    if (session->module != nullptr && session->symbols_loaded) files.push_back(key);
  }
  std::sort(files.begin(), files.end());
  return files;
}

void Symbolizer::AdoptSessions(Symbolizer& other) {
  for (size_t i = 0; i < other.sessions_.size(); ++i) {
    if (other.sessions_[i] == nullptr) continue;
    const Module& m = other.modules_[i];
    std::string key = FileKey(m);
    if (auto it = session_by_file_.find(key); it != session_by_file_.end()) {
      ModuleSession* mine = it->second;
      ModuleSession* theirs = other.sessions_[i].get();
      if (mine != theirs && !mine->symbols_loaded && theirs->symbols_loaded &&
          mine->module != nullptr && theirs->module != nullptr) {
        // Both report the file at bias 0: the same addresses.
        mine->table = theirs->table;
        mine->symbols_loaded = true;
        adopted_.push_back(std::move(other.sessions_[i]));
      }
      continue;
    }
    session_by_file_[key] = other.sessions_[i].get();
    adopted_.push_back(std::move(other.sessions_[i]));
  }
  warnings_.insert(warnings_.end(), other.warnings_.begin(), other.warnings_.end());
  other.warnings_.clear();
  other.session_by_file_.clear();
}

const Module* Symbolizer::FindModule(uint64_t ip) const {
  size_t hint = find_hint_.load(std::memory_order_relaxed);
  if (hint < intervals_.size() && intervals_[hint].first <= ip && ip <= intervals_[hint].last) {
    return &modules_[intervals_[hint].module];
  }
  // The last interval starting at or before ip.
  auto it = std::upper_bound(intervals_.begin(), intervals_.end(), ip,
                             [](uint64_t a, const ModuleInterval& m) { return a < m.first; });
  if (it == intervals_.begin()) return nullptr;
  --it;
  if (ip > it->last) return nullptr;
  find_hint_.store(static_cast<size_t>(it - intervals_.begin()), std::memory_order_relaxed);
  return &modules_[it->module];
}

const Module* Symbolizer::FindModuleSpan(uint64_t ip, uint64_t* first, uint64_t* last) const {
  // The first interval starting after ip; the one before it holds ip or
  // ends before it (then ip is in the gap up to the next one).
  auto it = std::upper_bound(intervals_.begin(), intervals_.end(), ip,
                             [](uint64_t a, const ModuleInterval& m) { return a < m.first; });
  const uint64_t next_first = it == intervals_.end() ? 0 : it->first;
  if (it != intervals_.begin() && ip <= std::prev(it)->last) {
    --it;
    *first = it->first;
    *last = it->last;
    return &modules_[it->module];
  }
  *first = it == intervals_.begin() ? 0 : std::prev(it)->last + 1;
  *last = it == intervals_.end() ? UINT64_MAX : next_first - 1;
  return nullptr;
}

Symbolizer::ModuleSession* Symbolizer::SessionFor(const Module* module) {
  size_t index = static_cast<size_t>(module - modules_.data());
  if (sessions_[index] != nullptr) return sessions_[index].get();
  std::string key = FileKey(*module);
  if (auto it = session_by_file_.find(key); it != session_by_file_.end()) return it->second;
  auto session = std::make_unique<ModuleSession>();
  ModuleSession* raw = session.get();
  sessions_[index] = std::move(session);
  session_by_file_[key] = raw;
  if (claims_ != nullptr) {
    raw->claims = claims_;
    raw->file_key = key;
  }

  const std::string& path = module->path;
  if (path.empty() || path[0] != '/') return raw;  // vdso, anonymous: no file
  // Only regular files outside the kernel's pseudo file systems: a trace is
  // untrusted and could name a FIFO, a device or /proc/kcore.
  struct stat st;
  if (absl::StartsWith(path, "/proc/") || absl::StartsWith(path, "/sys/") ||
      absl::StartsWith(path, "/dev/") || stat(path.c_str(), &st) != 0 ||
      !S_ISREG(st.st_mode)) {
    warnings_.push_back(absl::StrCat(path, ": ", errno == ENOENT ? "no such file" : "not a regular file",
                                     "; its frames show as module+offset"));
    return raw;
  }
  raw->path = path;
  raw->dwfl = dwfl_begin(&SymbolTableCallbacks());
  if (raw->dwfl == nullptr) return raw;
  raw->dwfl_owner = std::shared_ptr<Dwfl>(raw->dwfl, dwfl_end);
  dwfl_report_begin(raw->dwfl);
  // Reported at bias 0: lookups use ELF virtual addresses (module offsets).
  raw->module =
      dwfl_report_elf(raw->dwfl, BaseName(path).c_str(), path.c_str(), -1, 0, true);
  dwfl_report_end(raw->dwfl, nullptr, nullptr);
  if (raw->module == nullptr) {
    warnings_.push_back(absl::StrCat(path, ": cannot read (", dwfl_errmsg(-1),
                                     "); its frames show as module+offset"));
    return raw;
  }
  const unsigned char* bits = nullptr;
  GElf_Addr vaddr = 0;
  int len = dwfl_module_build_id(raw->module, &bits, &vaddr);
  if (!module->build_id_hex.empty() && len > 0 && HexOf(bits, len) != module->build_id_hex) {
    warnings_.push_back(absl::StrCat(path,
                                     ": build-id differs from the one recorded in the trace "
                                     "(rebuilt since?); its symbols may be wrong"));
  }
  return raw;
}

const SymbolizedLocation& Symbolizer::Symbolize(uint64_t ip, bool is_return_address) {
  auto& cache = is_return_address ? cache_ : exact_cache_;
  auto [it, inserted] = cache.try_emplace(ip, nullptr);
  if (!inserted) return *it->second;
  it->second = std::make_unique<SymbolizedLocation>();
  SymbolizedLocation& loc = *it->second;
  loc.address = ip;

  const Module* module = nullptr;
  if (last_module_ < modules_.size() && modules_[last_module_].Contains(ip)) {
    module = &modules_[last_module_];
  } else {
    module = FindModule(ip);
    if (module != nullptr) last_module_ = static_cast<size_t>(module - modules_.data());
  }
  loc.module = module;
  if (module == nullptr) {
    loc.status = SymbolStatus::kNoModule;
    loc.frames.emplace_back();
    return loc;
  }
  loc.module_offset = ip - module->load_address;
  uint64_t addr = loc.module_offset - (is_return_address && loc.module_offset > 0 ? 1 : 0);
  ModuleSession* session = SessionFor(module);
  if (session->module == nullptr) {
    loc.status = SymbolStatus::kModuleUnreadable;
    loc.frames.emplace_back();
    return loc;
  }
  const char* symname = session->SymbolAt(addr);

  std::string file;
  int line = 0;
  session->LoadDwarf();
  Dwfl_Module* mod = session->dwarf_module;
  if (mod == nullptr) {
    loc.frames.push_back({symname != nullptr ? Demangle(symname) : "", file, line, false});
    if (loc.frames.back().function.empty()) loc.status = SymbolStatus::kNoDebugInfo;
    return loc;
  }
  if (Dwfl_Line* l = dwfl_module_getsrc(mod, addr)) {
    int lineno = 0;
    if (const char* src = dwfl_lineinfo(l, nullptr, &lineno, nullptr, nullptr, nullptr)) {
      file = SourcePath(src, dwfl_line_comp_dir(l));
      line = lineno;
    }
  }

  Dwarf_Addr bias = 0;
  Dwarf_Die* cu = dwfl_module_addrdie(mod, addr, &bias);
  bool done = false;
  if (cu != nullptr) {
    uint64_t pc = addr - bias;
    ModuleSession::CuIndex& index = session->IndexOf(cu);
    if (const ModuleSession::FunctionRange* fn = ModuleSession::FunctionAt(index, pc)) {
      Dwarf_Die function = fn->die;
      std::vector<Dwarf_Die> chain;
      ModuleSession::InlinedChain(&function, pc, chain, 0);
      for (size_t i = chain.size(); i-- > 0;) {
        loc.frames.push_back({session->FunctionName(&chain[i]), file, line, true});
        // The caller's position is the call site of this inlined instance.
        Dwarf_Attribute attr;
        Dwarf_Word call_file = 0, call_line = 0;
        file.clear();
        line = 0;
        if (dwarf_formudata(dwarf_attr(&chain[i], DW_AT_call_file, &attr), &call_file) == 0 &&
            index.files != nullptr && call_file < index.nfiles) {
          if (const char* f = dwarf_filesrc(index.files, call_file, nullptr, nullptr)) {
            file = SourcePath(f, index.comp_dir.c_str());
          }
        }
        if (dwarf_formudata(dwarf_attr(&chain[i], DW_AT_call_line, &attr), &call_line) == 0) {
          line = static_cast<int>(call_line);
        }
      }
      std::string name = symname != nullptr ? Demangle(symname) : session->FunctionName(&function);
      loc.frames.push_back({std::move(name), file, line, false});
      done = true;
    }
  }
  if (!done) {
    loc.frames.push_back({symname != nullptr ? Demangle(symname) : "", file, line, false});
  }
  if (loc.frames.back().function.empty()) {
    loc.status = session->has_dwarf ? SymbolStatus::kNoSymbol : SymbolStatus::kNoDebugInfo;
  }
  return loc;
}

SymbolStats& SymbolStats::operator+=(const SymbolStats& o) {
  addresses += o.addresses;
  no_module += o.no_module;
  module_unreadable += o.module_unreadable;
  no_debug_info += o.no_debug_info;
  no_symbol += o.no_symbol;
  return *this;
}

SymbolStats Symbolizer::Stats() const {
  SymbolStats stats;
  for (const auto* cache : {&cache_, &exact_cache_}) {
    for (const auto& [ip, loc] : *cache) {
      ++stats.addresses;
      switch (loc->status) {
        case SymbolStatus::kSymbolized: break;
        case SymbolStatus::kNoModule: ++stats.no_module; break;
        case SymbolStatus::kModuleUnreadable: ++stats.module_unreadable; break;
        case SymbolStatus::kNoDebugInfo: ++stats.no_debug_info; break;
        case SymbolStatus::kNoSymbol: ++stats.no_symbol; break;
      }
    }
  }
  return stats;
}

SymbolizerLoads Symbolizer::Loads() const {
  SymbolizerLoads loads;
  for (const auto& [key, session] : session_by_file_) {
    if (session->module == nullptr) continue;
    ++loads.files_opened;
    if (session->symbols_loaded) ++loads.symbol_tables;
    if (session->dwarf_tried) ++(session->has_dwarf ? loads.debug_info_loaded : loads.debug_info_missing);
    loads.units_indexed += session->cus.size();
  }
  return loads;
}

Symbolizer::NameEntry& Symbolizer::NameEntryOf(uint64_t ip) {
  auto [it, inserted] = symbol_names_.try_emplace(ip, &no_name_);
  if (!inserted) return *it->second;
  const Module* module = FindModule(ip);
  if (module == nullptr) return no_name_;
  uint64_t offset = ip - module->load_address;
  ModuleSession* session = SessionFor(module);
  if (session->module == nullptr) return no_name_;
  const char* name = session->SymbolAt(offset > 0 ? offset - 1 : 0);
  if (name == nullptr) return no_name_;
  // The name is a function of the symbol's string alone (the same pointer
  // for every address in the function).
  auto [by_symbol, fresh] = names_by_symbol_.try_emplace(name, nullptr);
  if (fresh) {
    by_symbol->second = std::make_unique<NameEntry>();
    by_symbol->second->raw = name;
  }
  it->second = by_symbol->second.get();
  return *it->second;
}

const char* Symbolizer::RawSymbolName(uint64_t ip) { return NameEntryOf(ip).raw; }

const std::string& Symbolizer::DemangledName(NameEntry& entry) {
  if (!entry.name_known) {
    entry.name = Demangle(entry.raw);  // "" for no_name_ (raw null)
    entry.name_known = true;
  }
  return entry.name;
}

const std::string& Symbolizer::SymbolName(uint64_t ip) { return DemangledName(NameEntryOf(ip)); }

const std::string& Symbolizer::BareSymbolName(uint64_t ip) {
  NameEntry& entry = NameEntryOf(ip);
  if (!entry.bare_known) {
    entry.bare = BareFunctionName(DemangledName(entry));
    entry.bare_known = true;
  }
  return entry.bare;
}

std::vector<const SymbolizedLocation*> Symbolizer::SymbolizeStack(
    const std::vector<uint64_t>& ips) {
  std::vector<const SymbolizedLocation*> out;
  out.reserve(ips.size());
  bool leading = true;
  for (size_t i = 0; i < ips.size(); ++i) {
    const SymbolizedLocation& loc = Symbolize(ips[i], true);
    if (leading && i + 1 < ips.size()) {
      bool ours = loc.module != nullptr &&
                  absl::StartsWith(BaseName(loc.module->path), "libheapsight");
      if (ours || IsAllocatorFunction(loc.frames.back().function)) continue;
    }
    leading = false;
    out.push_back(&loc);
  }
  return out;
}

namespace {

const absl::flat_hash_set<std::string_view>& AllocatorNames() {
  static const absl::flat_hash_set<std::string_view> kNames = {
      "malloc", "calloc", "realloc", "reallocarray", "free", "cfree", "posix_memalign",
      "aligned_alloc", "memalign", "valloc", "pvalloc", "free_sized", "free_aligned_sized",
      "operator new", "operator new[]", "operator delete", "operator delete[]",
      "__libc_malloc", "__libc_calloc", "__libc_realloc", "__libc_free", "__libc_memalign",
      "__libc_valloc", "__libc_pvalloc", "__posix_memalign", "_mid_memalign",
      "__GI___libc_malloc", "__GI___libc_free", "__GI___libc_realloc", "__malloc",
      "__calloc", "__realloc", "__free", "_int_malloc", "_int_realloc", "_int_memalign",
      "tcache_init", "malloc_hook_ini", "realloc_hook_ini", "__reallocarray"};
  return kNames;
}

}  // namespace

bool IsAllocatorFunction(const std::string& function) {
  if (function.empty()) return false;
  return IsAllocatorBareName(BareFunctionName(function));
}

bool IsAllocatorBareName(std::string_view bare) {
  // Sanitizer runtimes interpose the allocator under these names.
  if (bare.starts_with("__interceptor_")) bare.remove_prefix(14);
  if (bare.starts_with("___interceptor_")) bare.remove_prefix(15);
  return AllocatorNames().contains(bare) || bare.starts_with("heapsight::preload");
}

bool IsLibraryFrame(const SourceFrame& frame, const SymbolizedLocation& location) {
  if (IsAllocatorFunction(frame.function)) return true;
  if (absl::StrContains(frame.file, "/include/c++/")) return true;
  std::string name = BareFunctionName(frame.function);
  if (absl::StartsWith(name, "std::") || absl::StartsWith(name, "__gnu_cxx::")) return true;
  return frame.function.empty() && location.module != nullptr &&
         absl::StrContains(location.module->path, "libstdc++");
}

}  // namespace heapsight::analyzer
