// analyzer/symbols/symbol_names.h: the one set of rules for how a frame is
// named, used by every command.
//
// - BareFunctionName: the short name of a demangled function, as pprof's
//   Function.name, folded stacks and flame graphs show it, and as the
//   allocator and runtime filters match it ("foo::Bar::make", not
//   "void foo::Bar::make(int) const").
// - StripSymbolVersion: an ELF symbol version is not part of the name (the
//   symbolizer applies it to every symbol before demangling).
// - UnknownFrameName: a frame without a function name ("libfoo.so+0x1a2b");
//   BaseName: the module part of it, which the filters match.
#ifndef HEAPSIGHT_ANALYZER_SYMBOLS_SYMBOL_NAMES_H_
#define HEAPSIGHT_ANALYZER_SYMBOLS_SYMBOL_NAMES_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace heapsight::analyzer {

// BareFunctionName()
//
// Removes from a demangled C++ function name its parameter list, the
// qualifiers after it (const, volatile, &, &&, noexcept, throw()), a leading
// return type, and clone suffixes (" [clone .cold]", and ".cold",
// ".isra.0", ".constprop.0", ".part.0", ... on C names). Template arguments,
// scopes, "(anonymous namespace)", lambdas, ABI tags on the name
// ("[abi:cxx11]") and operator names ("operator<", "operator<< <char>",
// "operator()", "operator new[]", "operator<=>", "operator bool") stay
// intact. Names without a parameter list (C and Rust symbols, names already
// short) only lose clone suffixes. Never fails; garbage comes back as given.
//
// Examples:
//   BareFunctionName("void foo::Bar<int>::make<char>(int) const")
//     == "foo::Bar<int>::make<char>"
//   BareFunctionName("std::string std::operator+<char>(std::string const&, char const*)")
//     == "std::operator+<char>"
//   BareFunctionName("parse_args.isra.0") == "parse_args"
std::string BareFunctionName(std::string_view demangled);

// StripSymbolVersion()
//
// Removes an ELF symbol version suffix, everything from the first '@' of a
// symbol name: "__libc_start_main@@GLIBC_2.34" -> "__libc_start_main",
// "memcpy@GLIBC_2.2.5" -> "memcpy". No identifier and no mangled name
// contains '@'. A name that starts with '@' is returned unchanged.
std::string StripSymbolVersion(std::string_view name);

// UnknownFrameName()
//
// Display name of an address that could not be symbolized: the module's
// base name and the offset in it ("libfoo.so+0x1a2b"), or the bare address
// when the module is unknown ("0x7f001234").
std::string UnknownFrameName(std::string_view module_path, uint64_t module_offset,
                             uint64_t address);

// BaseName()
//
// The last component of a path (a module's or a source file's):
// "/usr/lib/libfoo.so.1" -> "libfoo.so.1" ("" for a path that ends in '/').
std::string BaseName(std::string_view path);

}  // namespace heapsight::analyzer

#endif  // HEAPSIGHT_ANALYZER_SYMBOLS_SYMBOL_NAMES_H_
