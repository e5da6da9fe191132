// tests/analyzer/symbols/symbol_names_test.cc: BareFunctionName, StripSymbolVersion,
// UnknownFrameName and BaseName.
#include "analyzer/symbols/symbol_names.h"

#include <gtest/gtest.h>

namespace heapsight::analyzer::output {
namespace {

TEST(BareFunctionNameTest, RemovesParametersAndQualifiers) {
  EXPECT_EQ(BareFunctionName("foo::Bar::make(int)"), "foo::Bar::make");
  EXPECT_EQ(BareFunctionName("foo::Bar::make(int) const"), "foo::Bar::make");
  EXPECT_EQ(BareFunctionName("foo::Bar::get() const &&"), "foo::Bar::get");
  EXPECT_EQ(BareFunctionName("f(void (*)(int), char)"), "f");
  EXPECT_EQ(BareFunctionName("g() noexcept"), "g");
  EXPECT_EQ(BareFunctionName("h[abi:cxx11](int)"), "h[abi:cxx11]");
}

TEST(BareFunctionNameTest, KeepsTemplatesAndDropsReturnType) {
  EXPECT_EQ(BareFunctionName("void foo::Bar<int>::make<char>(int) const"),
            "foo::Bar<int>::make<char>");
  EXPECT_EQ(BareFunctionName("std::vector<int, std::allocator<int> >::reserve(unsigned long)"),
            "std::vector<int, std::allocator<int> >::reserve");
  EXPECT_EQ(BareFunctionName("std::pair<int, int> make<std::pair<int, int> >(int)"),
            "make<std::pair<int, int> >");
}

TEST(BareFunctionNameTest, Operators) {
  EXPECT_EQ(BareFunctionName("foo::operator()(int) const"), "foo::operator()");
  EXPECT_EQ(BareFunctionName("foo::operator()"), "foo::operator()");
  EXPECT_EQ(BareFunctionName("operator new(unsigned long)"), "operator new");
  EXPECT_EQ(BareFunctionName("operator delete[](void*)"), "operator delete[]");
  EXPECT_EQ(BareFunctionName("std::ostream& std::operator<< <char>(std::ostream&, char const*)"),
            "std::operator<< <char>");
  EXPECT_EQ(BareFunctionName("bool operator<(A const&, A const&)"), "operator<");
  EXPECT_EQ(BareFunctionName("X::operator->()"), "X::operator->");
}

TEST(BareFunctionNameTest, AnonymousNamespacesLambdasAndPlainNames) {
  EXPECT_EQ(BareFunctionName("(anonymous namespace)::Leak(int)"), "(anonymous namespace)::Leak");
  EXPECT_EQ(BareFunctionName("main::{lambda(int)#1}::operator()(int) const"),
            "main::{lambda(int)#1}::operator()");
  EXPECT_EQ(BareFunctionName("main"), "main");
  EXPECT_EQ(BareFunctionName("foo::bar"), "foo::bar");
  EXPECT_EQ(BareFunctionName(""), "");
  EXPECT_EQ(BareFunctionName("(anonymous namespace)"), "(anonymous namespace)");
}

// Issue 13: "std::operator+<char, ...>" came out as ">" (the '<' of the
// template arguments was read as part of the operator's name).
TEST(BareFunctionNameTest, OperatorsWithTemplateArguments) {
  EXPECT_EQ(BareFunctionName("std::__cxx11::basic_string<char, std::char_traits<char>, "
                             "std::allocator<char> > std::operator+<char, std::char_traits<char>, "
                             "std::allocator<char> >(std::__cxx11::basic_string<char, "
                             "std::char_traits<char>, std::allocator<char> > const&, char const*)"),
            "std::operator+<char, std::char_traits<char>, std::allocator<char> >");
  EXPECT_EQ(BareFunctionName("bool std::operator< <int>(std::vector<int> const&, "
                             "std::vector<int> const&)"),
            "std::operator< <int>");
  EXPECT_EQ(BareFunctionName("bool operator><int>(X<int> const&, X<int> const&)"),
            "operator><int>");
  EXPECT_EQ(BareFunctionName("std::ostream& operator<<(std::ostream&, Foo const&)"), "operator<<");
  EXPECT_EQ(BareFunctionName("X& X::operator<<=(int)"), "X::operator<<=");
  EXPECT_EQ(BareFunctionName("X& X::operator>>=(int)"), "X::operator>>=");
  EXPECT_EQ(BareFunctionName("bool X::operator>=(X const&) const"), "X::operator>=");
  EXPECT_EQ(BareFunctionName("std::strong_ordering operator<=>(A const&, A const&)"),
            "operator<=>");
  EXPECT_EQ(BareFunctionName("auto ns::operator<=><int>(ns::P<int> const&, ns::P<int> const&)"),
            "ns::operator<=><int>");
  EXPECT_EQ(BareFunctionName("void* operator new[](unsigned long, std::align_val_t)"),
            "operator new[]");
  EXPECT_EQ(BareFunctionName("operator delete(void*, unsigned long)"), "operator delete");
  EXPECT_EQ(BareFunctionName("Foo::operator bool() const"), "Foo::operator bool");
  EXPECT_EQ(BareFunctionName("Foo::operator char const*() const"), "Foo::operator char const*");
  EXPECT_EQ(BareFunctionName("Foo::operator std::vector<int, std::allocator<int> >() const"),
            "Foo::operator std::vector<int, std::allocator<int> >");
  EXPECT_EQ(BareFunctionName("X::operator[](unsigned long)"), "X::operator[]");
  EXPECT_EQ(BareFunctionName("X::operator->*(int X::*)"), "X::operator->*");
  EXPECT_EQ(BareFunctionName("X::operator,(X const&)"), "X::operator,");
  // Not the keyword: a name that starts with "operator".
  EXPECT_EQ(BareFunctionName("void operators<int>(int)"), "operators<int>");
}

TEST(BareFunctionNameTest, LambdasNestedTemplatesAndScopes) {
  EXPECT_EQ(BareFunctionName("(anonymous namespace)::Count<(anonymous namespace)::Padded>"
                             "(unsigned long)"),
            "(anonymous namespace)::Count<(anonymous namespace)::Padded>");
  EXPECT_EQ(BareFunctionName("void std::_Function_base::_Base_manager<main::{lambda()#1}>::"
                             "_M_create<main::{lambda()#1}>(std::_Any_data&, main::{lambda()#1}&&, "
                             "std::integral_constant<bool, false>)"),
            "std::_Function_base::_Base_manager<main::{lambda()#1}>::_M_create<main::{lambda()#1}>");
  // DWARF-scoped names (the symbolizer's own) keep their shape.
  EXPECT_EQ(BareFunctionName("(anonymous namespace)::LargeCapture()::<lambda()>"),
            "(anonymous namespace)::LargeCapture()::<lambda()>");
  EXPECT_EQ(BareFunctionName("main::{lambda(int)#2}::operator()(int) const::{lambda()#1}::"
                             "operator()() const"),
            "main::{lambda(int)#2}::operator()(int) const::{lambda()#1}::operator()");
  EXPECT_EQ(BareFunctionName("std::map<int, std::vector<std::pair<int, int>, "
                             "std::allocator<std::pair<int, int> > > >::operator[](int const&)"),
            "std::map<int, std::vector<std::pair<int, int>, std::allocator<std::pair<int, int> > > "
            ">::operator[]");
  // A decltype in the return type compares with '<': it stays inside its parentheses.
  EXPECT_EQ(BareFunctionName("decltype ((({parm#1}<{parm#2}))) ns::less<int>(int, int)"),
            "ns::less<int>");
  EXPECT_EQ(BareFunctionName("std::__cxx11::basic_string<char, std::char_traits<char>, "
                             "std::allocator<char> > ns::to_text[abi:cxx11](int)"),
            "ns::to_text[abi:cxx11]");
  EXPECT_EQ(BareFunctionName("non-virtual thunk to Derived::run(int)"), "Derived::run");
}

TEST(BareFunctionNameTest, CloneSuffixes) {
  EXPECT_EQ(BareFunctionName("foo::bar(int) [clone .cold]"), "foo::bar");
  EXPECT_EQ(BareFunctionName("foo::bar(int) [clone .isra.0] [clone .cold]"), "foo::bar");
  EXPECT_EQ(BareFunctionName("void foo<int>(int) [clone .constprop.0]"), "foo<int>");
  EXPECT_EQ(BareFunctionName("main.cold"), "main");
  EXPECT_EQ(BareFunctionName("parse_args.isra.0"), "parse_args");
  EXPECT_EQ(BareFunctionName("step.constprop.0.isra.0"), "step");
  EXPECT_EQ(BareFunctionName("helper.part.3"), "helper");
  EXPECT_EQ(BareFunctionName("helper.lto_priv.0"), "helper");
  EXPECT_EQ(BareFunctionName("_ZN3foo3barEv.llvm.1234567"), "_ZN3foo3barEv");
  // Other dots are part of the name.
  EXPECT_EQ(BareFunctionName("version.1"), "version.1");
  EXPECT_EQ(BareFunctionName(".cold"), ".cold");
  EXPECT_EQ(BareFunctionName("coldstart"), "coldstart");
}

TEST(BareFunctionNameTest, CAndRustSymbolsStayWhole) {
  EXPECT_EQ(BareFunctionName("__libc_start_main"), "__libc_start_main");
  EXPECT_EQ(BareFunctionName("_IO_file_doallocate"), "_IO_file_doallocate");
  // Rust's legacy mangling, as __cxa_demangle prints it.
  EXPECT_EQ(BareFunctionName("alloc::raw_vec::RawVec$LT$T$C$A$GT$::grow_one::h0a1b2c3d4e5f6a7b"),
            "alloc::raw_vec::RawVec$LT$T$C$A$GT$::grow_one::h0a1b2c3d4e5f6a7b");
  EXPECT_EQ(BareFunctionName("std::rt::lang_start::_$u7b$$u7b$closure$u7d$$u7d$::h1234abcd"),
            "std::rt::lang_start::_$u7b$$u7b$closure$u7d$$u7d$::h1234abcd");
  EXPECT_EQ(BareFunctionName("core..ptr..drop_in_place$LT$alloc..vec..Vec$LT$u8$GT$$GT$"),
            "core..ptr..drop_in_place$LT$alloc..vec..Vec$LT$u8$GT$$GT$");
}

TEST(BareFunctionNameTest, NeverCrashesOnGarbage) {
  for (const char* s : {")", "(", "())", "a)", " (x)", "  ", ")))(((", "<<>>()", "operator", "&()"}) {
    std::string r = BareFunctionName(s);
    EXPECT_LE(r.size(), std::string(s).size() + 0) << s;
  }
}

TEST(StripSymbolVersionTest, RemovesElfVersions) {
  EXPECT_EQ(StripSymbolVersion("__libc_start_main@@GLIBC_2.34"), "__libc_start_main");
  EXPECT_EQ(StripSymbolVersion("memcpy@GLIBC_2.2.5"), "memcpy");
  EXPECT_EQ(StripSymbolVersion("main"), "main");
  EXPECT_EQ(StripSymbolVersion("@x"), "@x");
  // Everything from the first '@': no identifier or mangled name holds one.
  EXPECT_EQ(StripSymbolVersion("f@@"), "f");
  EXPECT_EQ(StripSymbolVersion("_ZN3foo3barEv@@LIB_1.0"), "_ZN3foo3barEv");
}

TEST(UnknownFrameNameTest, ModuleAndOffset) {
  EXPECT_EQ(UnknownFrameName("/usr/lib/libfoo.so.1", 0x1a2b, 0x7f0000001a2b), "libfoo.so.1+0x1a2b");
  EXPECT_EQ(UnknownFrameName("", 0, 0x7f001234), "0x7f001234");
  EXPECT_EQ(UnknownFrameName("app", 0x10, 0x5510), "app+0x10");
  EXPECT_EQ(UnknownFrameName("/odd/", 0x10, 0x5510), "/odd/+0x10");
  EXPECT_EQ(BaseName("/usr/lib/x86_64-linux-gnu/libc.so.6"), "libc.so.6");
  EXPECT_EQ(BaseName("[vdso]"), "[vdso]");
  EXPECT_EQ(BaseName("/odd/"), "");
}

}  // namespace
}  // namespace heapsight::analyzer::output
