// analyzer/symbols/symbolizer.h: offline symbolization of recorded addresses with
// elfutils libdwfl, using the module records of a trace.
//
// Every module gets its own Dwfl session (modules loaded at the same address
// at different times, e.g. after dlclose, never collide). Debug info comes
// from the file itself or from separate debug files found by elfutils'
// standard lookup: by build id under each debug directory
// (<dir>/.build-id/xx/yyyy.debug; the directories are /usr/lib/debug, or
// the colon-separated HEAPSIGHT_DEBUGINFO_PATH), by .gnu_debuglink next to
// the file, and from debuginfod servers when DEBUGINFOD_URLS is set (at the
// process's start: libdw reads it then). Results are cached per address:
// each unique address is symbolized once. A frame that cannot be resolved
// keeps module + offset, and Stats() says why. ELF files are untrusted: a
// missing, unreadable or garbage file only loses names.
#ifndef HEAPSIGHT_ANALYZER_SYMBOLIZER_H_
#define HEAPSIGHT_ANALYZER_SYMBOLIZER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "analyzer/symbols/module.h"
#include "analyzer/symbols/symbol_names.h"

namespace heapsight::analyzer {

struct SourceFrame {
  std::string function;  // demangled, "" if unknown
  std::string file;      // "" if unknown
  int line = 0;          // 0 if unknown
  bool inlined = false;  // true for frames inlined into the next one
};

// Whether an address got a function name, and if not, why.
enum class SymbolStatus : uint8_t {
  kSymbolized,         // a function name (from the symbol table or DWARF)
  kNoModule,           // in no module the trace recorded (JIT code, unmapped)
  kModuleUnreadable,   // the module's file is missing, not regular or not ELF
  kNoDebugInfo,        // no symbol covers it, and no debug info was found
                       // (stripped, no debug file by build id, no debuginfod)
  kNoSymbol,           // debug info was read but names no function there
};

// Unique addresses symbolized, and those left without a function name by
// reason (SymbolStatus).
struct SymbolStats {
  uint64_t addresses = 0;
  uint64_t no_module = 0;
  uint64_t module_unreadable = 0;
  uint64_t no_debug_info = 0;
  uint64_t no_symbol = 0;

  uint64_t unsymbolized() const {
    return no_module + module_unreadable + no_debug_info + no_symbol;
  }
  SymbolStats& operator+=(const SymbolStats& o);
};

// What a Symbolizer has read so far, over its own and its adopted files
// (each distinct file once). Symbol tables and debug info are read lazily,
// only for the files of the addresses asked about; compilation units are
// indexed only when an address in them is symbolized.
struct SymbolizerLoads {
  uint64_t files_opened = 0;        // ELF files given a libdwfl session
  uint64_t symbol_tables = 0;       // symbol tables read and sorted
  uint64_t debug_info_loaded = 0;   // files whose DWARF was read (found)
  uint64_t debug_info_missing = 0;  // files looked for DWARF that have none
  uint64_t units_indexed = 0;       // compilation units whose functions were indexed
};

struct SymbolizedLocation {
  uint64_t address = 0;           // as recorded
  SymbolStatus status = SymbolStatus::kSymbolized;
  const Module* module = nullptr;  // owned by the Symbolizer; null if none
  uint64_t module_offset = 0;     // address - load_address (ELF vaddr)
  // Innermost inlined function first; the last entry is the real
  // (out-of-line) function. Never empty: an unknown frame has one entry
  // with empty function/file.
  std::vector<SourceFrame> frames;
};

// UnknownFrameName (symbol_names.h) of the location's module and offset:
// "module+0xoffset" (basename of the module) or "0xaddress".
std::string UnknownFrameName(const SymbolizedLocation& location);

// A file's function table as one Symbolizer read it, shared with others
// (symbolizer.cc).
struct SharedFunctionTable;

// The files (path and build id) whose symbol table one of several
// Symbolizers has started to read (Symbolizer::ShareSymbolTableClaims), and
// the tables themselves: a table one of them needs is read once, by the
// first to ask, and the others wait for it and share it (node's binary:
// 110 k symbols, about 35 M instructions, read by both the analysing thread
// and the debug-info helper before). Thread-safe.
class SymbolTableClaims {
 public:
  // True the first time `file` is claimed.
  bool Claim(const std::string& file);
  // `file`'s table: `build`'s, called by the first caller only; later ones
  // wait for it.
  std::shared_ptr<const SharedFunctionTable> Table(
      const std::string& file, const std::function<std::shared_ptr<const SharedFunctionTable>()>& build);

  // Called (on the reading thread) before a table of at least
  // kLargeTableSymbols entries is read through these claims: the analysis
  // learns that its thread is about to spend a few ms in the read (node's
  // 110 k symbols: ~3 ms, 10 ms before the radix sort), the second core
  // idle meanwhile. Set before use.
  static constexpr int kLargeTableSymbols = 50'000;
  void OnLargeTableRead(std::function<void()> callback) { on_large_read_ = std::move(callback); }
  void NoteTableRead(int symbols) const {
    if (symbols >= kLargeTableSymbols && on_large_read_) on_large_read_();
  }

 private:
  std::function<void()> on_large_read_;
  struct Slot {
    std::once_flag once;
    std::shared_ptr<const SharedFunctionTable> table;
  };
  std::mutex mu_;
  absl::flat_hash_set<std::string> files_;
  absl::flat_hash_map<std::string, std::shared_ptr<Slot>> tables_;
};

class Symbolizer {
 public:
  explicit Symbolizer(std::vector<Module> modules);
  ~Symbolizer();
  Symbolizer(const Symbolizer&) = delete;
  Symbolizer& operator=(const Symbolizer&) = delete;

  // Symbolizes `ip`. Return addresses (every frame of a recorded stack) are
  // looked up at ip - 1 so the call instruction, not the next line, is named.
  // The reference stays valid for the Symbolizer's lifetime.
  const SymbolizedLocation& Symbolize(uint64_t ip, bool is_return_address = true);

  // The demangled name of the function symbol containing return address
  // `ip` from the module's symbol table only ("" if none): no DWARF is read,
  // which is what keeps classifying a site cheap when its module's debug
  // info is large (libc's takes tens of milliseconds to decompress).
  // Memoized per address: each unique address is looked up and demangled
  // once (classifying every new site asked again for every frame). The
  // reference stays valid for the Symbolizer's lifetime.
  const std::string& SymbolName(uint64_t ip);
  // BareFunctionName(SymbolName(ip)), memoized the same way: the runtime
  // classification asks it of the top frame of every new site, and a long
  // C++ name (node's) takes ~10,000 instructions to take apart.
  const std::string& BareSymbolName(uint64_t ip);
  // The symbol table's own string for return address `ip` (mangled, with
  // any symbol version), or null: what SymbolName demangles. The
  // run-time classification looks at it first, so that most of a C++
  // program's names need no demangling at all (runtime_filter.cc).
  const char* RawSymbolName(uint64_t ip);

  // The module mapped at `ip` (no DWARF work), or null.
  const Module* FindModule(uint64_t ip) const;
  // FindModule(ip), and in *first and *last the addresses around `ip`
  // (inclusive) for which FindModule's answer is the same, so that a
  // caller asking for many addresses can skip the lookup of those.
  const Module* FindModuleSpan(uint64_t ip, uint64_t* first, uint64_t* last) const;

  // Symbolizes a recorded stack (innermost first) and drops leading
  // allocator frames (heapsight's own, malloc/operator new/...). The first
  // element is the code that asked for memory.
  std::vector<const SymbolizedLocation*> SymbolizeStack(const std::vector<uint64_t>& ips);

  // Loads the symbol tables and debug info (the expensive part: reading and
  // decompressing DWARF) of the modules that contain any of `ips`, ahead of
  // the first Symbolize. For a helper thread working on its own instance
  // while the trace is still being analyzed; a later Symbolizer takes the
  // loaded modules over with AdoptSessions. Not thread-safe with other calls
  // on the same instance. The symbol tables of `symbols_elsewhere`'s files
  // (FilesWithSymbols of the Symbolizer this one will be adopted next to)
  // are not read: AdoptSessions pairs them with this instance's debug info.
  // The debug info of the C/C++ runtime's libraries (IsRuntimeLibrary:
  // libc, libstdc++, ld.so, ...) is read only with `runtime_dwarf` (never
  // the dynamic loader's: IsDynamicLoader), after the program's DWARF and
  // before the symbol tables; else Symbolize reads it if a frame there is
  // asked about.
  // `runtime_gate`, if set, is called before the runtime's DWARF is read
  // (it may block); false leaves it to Symbolize.
  void Preload(const std::vector<uint64_t>& ips,
               const std::vector<std::string>& symbols_elsewhere = {},
               bool runtime_dwarf = false,
               const std::function<bool()>& runtime_gate = nullptr);
  // Reads the debug info Preload left out: that of the C/C++ runtime's
  // libraries (not the dynamic loader's) among the modules opened so far
  // (Preload's with `runtime_dwarf` does this). For the same helper thread,
  // later in a long pass, when the report's first Symbolize of a frame
  // there would otherwise read it after the pass. Same thread rules as
  // Preload.
  void PreloadRuntimeDebugInfo();
  // Symbolizers working on separate threads that share `claims` read each
  // symbol table once where they can: reading a table claims it, and
  // Preload skips a table another has claimed (AdoptSessions pairs it with
  // this instance's debug info afterwards). Applies to the sessions opened
  // so far and later ones; a session adopted from another keeps that one's.
  void ShareSymbolTableClaims(std::shared_ptr<SymbolTableClaims> claims);
  // The files (path and build id) whose symbol table this instance has read.
  std::vector<std::string> FilesWithSymbols() const;

  // Takes over the modules `other` has opened whose file and build id match
  // (with `other`'s warnings about them), so their debug info is not read
  // again. For a file both have opened, this instance keeps its own session
  // and, if that has not read the symbol table and `other`'s has, takes
  // `other`'s table (and keeps its session alive: the names are its
  // libelf's). `other` must not be used afterwards except to be destroyed.
  void AdoptSessions(Symbolizer& other);

  const std::vector<Module>& modules() const { return modules_; }
  // The addresses symbolized so far (each once) and why some got no name.
  SymbolStats Stats() const;
  // What was read to answer so far (SymbolizerLoads).
  SymbolizerLoads Loads() const;
  // Warnings such as a build-id mismatch or a missing file, each once.
  const std::vector<std::string>& warnings() const { return warnings_; }

 private:
  struct ModuleSession;
  ModuleSession* SessionFor(const Module* module);

  std::vector<Module> modules_;
  std::vector<std::unique_ptr<ModuleSession>> sessions_;  // parallel to modules_
  // Per-address caches: return addresses (looked up at ip - 1) and exact ones.
  absl::flat_hash_map<uint64_t, std::unique_ptr<SymbolizedLocation>> cache_;
  absl::flat_hash_map<uint64_t, std::unique_ptr<SymbolizedLocation>> exact_cache_;
  // SymbolName's and BareSymbolName's memo (stable addresses: the
  // references they return must survive a rehash).
  struct NameEntry {
    const char* raw = nullptr;  // the symbol's string (null: no symbol)
    std::string name;           // Demangle(raw), once asked
    std::string bare;
    bool name_known = false;
    bool bare_known = false;
  };
  NameEntry& NameEntryOf(uint64_t ip);
  // entry.name, demangled on the first ask (SymbolName, BareSymbolName).
  static const std::string& DemangledName(NameEntry& entry);
  // By address, an entry of names_by_symbol_ (or no_name_): the addresses
  // in one function share its symbol's entry, demangled and taken apart
  // once, and only if asked (node: 942 addresses asked during the pass,
  // ~21,000 instructions each to demangle and reduce).
  absl::flat_hash_map<uint64_t, NameEntry*> symbol_names_;
  absl::flat_hash_map<const char*, std::unique_ptr<NameEntry>> names_by_symbol_;
  NameEntry no_name_;  // addresses without a symbol
  // One libdwfl session per distinct (path, build-id): modules loaded more
  // than once share it.
  absl::flat_hash_map<std::string, ModuleSession*> session_by_file_;
  std::vector<std::unique_ptr<ModuleSession>> adopted_;  // from AdoptSessions
  size_t last_module_ = SIZE_MAX;
  // FindModule's answers as disjoint address intervals, sorted: in each,
  // the newest module containing it (every module's segments split where
  // another's begin or end). A lookup tries the interval it found last
  // (find_hint_; atomic: FindModule is const), else a binary search: the
  // classification asks for every new stack node's frame (533 k times on a
  // cc1plus trace), and a linear scan of the modules' segments from the
  // newest cost about 80 instructions a lookup, more for addresses in no
  // module (node's JIT code).
  struct ModuleInterval {
    uint64_t first;   // first address
    uint64_t last;    // last address (inclusive)
    size_t module;    // index in modules_
  };
  std::vector<ModuleInterval> intervals_;
  mutable std::atomic<size_t> find_hint_{0};
  std::vector<std::string> warnings_;
  std::shared_ptr<SymbolTableClaims> claims_;  // ShareSymbolTableClaims; may be null
};

// True if `function` names an allocator entry point (malloc, calloc, realloc,
// free, operator new/delete, aligned variants, __libc_malloc, ...).
bool IsAllocatorFunction(const std::string& function);
// The same test on a name already reduced by BareFunctionName.
bool IsAllocatorBareName(std::string_view bare);

// True for a frame of the C++ standard library or the allocator itself:
// the plumbing between the program's own frame and malloc (std::allocator,
// std::vector's growth, std::make_shared, operator new). Told by the frame's
// source file (libstdc++'s headers), else by its BareFunctionName (std::,
// __gnu_cxx::) or its module (libstdc++.so). Reports lead with
// the frames after these.
bool IsLibraryFrame(const SourceFrame& frame, const SymbolizedLocation& location);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_SYMBOLIZER_H_
