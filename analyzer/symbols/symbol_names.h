// analyzer/symbols/symbol_names.h: how function names are shown in profiles.
//
// pprof wants Function.name as the demangled name without its parameter
// list ("foo::Bar::make", not "foo::Bar::make(int) const"); folded stacks
// and flame graphs use the same short names so all outputs agree.
#ifndef HEAPSIGHT_ANALYZER_OUTPUT_SYMBOL_NAMES_H_
#define HEAPSIGHT_ANALYZER_OUTPUT_SYMBOL_NAMES_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace heapsight::analyzer::output {

// StripParameters()
//
// Removes the parameter list, trailing qualifiers (const, volatile, &, &&,
// noexcept, [abi:...]) and a leading return type from a demangled C++
// function name. Template arguments, "(anonymous namespace)", lambdas and
// operator names stay intact. Names without a parameter list (C functions,
// already short names) are returned unchanged. Never fails.
//
// Example:
//   StripParameters("void foo::Bar<int>::make<char>(int) const")
//     == "foo::Bar<int>::make<char>"
//   StripParameters("foo::operator()(int)") == "foo::operator()"
std::string StripParameters(std::string_view demangled);

// StripSymbolVersion()
//
// Removes an ELF symbol version suffix: "__libc_start_main@@GLIBC_2.34" ->
// "__libc_start_main", "memcpy@GLIBC_2.2.5" -> "memcpy". Other names are
// returned unchanged.
std::string StripSymbolVersion(std::string_view name);

// UnknownFrameName()
//
// Display name of an address that could not be symbolized: the module's
// base name and the offset in it ("libfoo.so+0x1a2b"), or the bare address
// when the module is unknown ("0x7f001234").
std::string UnknownFrameName(std::string_view module_path, uint64_t module_offset,
                             uint64_t address);

}  // namespace heapsight::analyzer::output

#endif  // HEAPSIGHT_ANALYZER_OUTPUT_SYMBOL_NAMES_H_
