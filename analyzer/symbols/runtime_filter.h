// analyzer/symbols/runtime_filter.h: tells the C/C++ runtime's own blocks apart from
// the program's.
//
// Runtime blocks (kind "runtime") are left out of every program number (the
// peak and the heap over time too: the analysis classifies a site when it
// first allocates) and never reported as leaks; reports mention their total
// on one line (docs/glossary.md, "Runtime blocks"). A site is
// runtime when its stack (allocator frames already dropped) shows that:
//  1. the code asking for memory is in ld.so (ld-linux*.so: the per-thread
//     DTV from _dl_allocate_tls/allocate_dtv, dlopen bookkeeping, ...) or is
//     an ld.so-internal function (_dl_*);
//  2. the code asking for memory is glibc's stdio buffer allocator
//     (_IO_file_doallocate): the buffer belongs to the FILE, which glibc frees
//     in __libc_freeres; Valgrind does not report it either;
//  3. a frame is libstdc++'s emergency exception-handling pool constructor
//     ((anonymous namespace)::pool::pool, eh_alloc.cc);
//  4. every frame lies in a runtime library (ld.so, libc, libm, libstdc++,
//     libgcc_s, libpthread, libdl, heapsight itself): the runtime allocated
//     for itself, e.g. in a static constructor before main. The pool of
//     rule 3 is caught by this rule when libstdc++ has no symbols.
// A stack with no frames is the program's.
#ifndef HEAPSIGHT_ANALYZER_RUNTIME_FILTER_H_
#define HEAPSIGHT_ANALYZER_RUNTIME_FILTER_H_

#include <cstdint>
#include <string>
#include <vector>

namespace heapsight::analyzer {

class Symbolizer;
struct Module;

// Whose a site's blocks are (trace_model.h keeps one per Site).
enum class SiteKind : uint8_t {
  kProgram = 0,  // made by the program (what reports count)
  kRuntime = 1,  // made by the C/C++ runtime for itself (the rules above)
};

// Classifies the stack `ips` (innermost first, as recorded).
SiteKind ClassifySite(const std::vector<uint64_t>& ips, Symbolizer& symbolizer);

// The per-frame tests behind ClassifySite, for classifiers that remember
// them along a stack trie (model/site_classifier.h). `module` is
// symbolizer.FindModule(ip).
// Rule 4's: the frame lies in a runtime library.
bool IsRuntimeFrame(const Module* module);
// A leading frame the classification drops (heapsight's own, or an
// allocator function), as SymbolizeStack drops it.
bool IsLeadingAllocatorFrame(uint64_t ip, const Module* module, Symbolizer& symbolizer);
// Rules 1 and 2, on the first frame not dropped.
SiteKind ClassifyTopFrame(uint64_t ip, const Module* module, Symbolizer& symbolizer);
// Rule 3's test of one frame (libstdc++'s emergency EH pool).
bool IsEhPoolFrame(uint64_t ip, const Module* module, Symbolizer& symbolizer);
// IsEhPoolFrame's test of the module alone: a frame outside libstdc++ is
// never the EH pool's (callers that cache per-module facts ask it once).
bool MayHoldEhPool(const Module& module);

// Whether the mangled symbol name `raw` (null: no symbol) is one that the
// allocator test (IsLeadingAllocatorFrame) and rules 1 and 2
// (ClassifyTopFrame) all answer "no" for without demangling it: a nested
// name ("_ZN...", "_ZNK...") demangles to a qualified name ("a::b::f" once
// BareFunctionName has taken it apart) and every allocator entry point and
// rule 2's name are unqualified; what the demangled name starts with is its
// return type or its first scope, and an identifier that starts "_dl_"
// (rule 1) is spelled as is in the mangled name, as are the one qualified
// allocator prefix ("heapsight::preload": "9heapsight") and rule 2's name,
// so a name holding none of them passes. A name that does not demangle
// comes back as given ("_ZN..."), which no test matches either. node's
// classification demangled ~600 such names (Demangle and BareFunctionName:
// ~12 M instructions on the analysing thread) to answer these tests.
bool IsPlainNestedName(const char* raw);

// True if `path`'s basename is one of the runtime libraries of rule 4.
bool IsRuntimeLibrary(const std::string& path);

// True if `path`'s basename is the dynamic loader's (ld-linux*, ld.so*,
// ld64.so*): a runtime library whose frames are mostly in its own
// allocations' stacks (rule 1's sites), which reports seldom print.
bool IsDynamicLoader(const std::string& path);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_RUNTIME_FILTER_H_
