// tests/analyzer/symbols/symbol_names_test.cc: StripParameters and UnknownFrameName.
#include "analyzer/symbols/symbol_names.h"

#include <gtest/gtest.h>

namespace heapsight::analyzer::output {
namespace {

TEST(StripParametersTest, RemovesParametersAndQualifiers) {
  EXPECT_EQ(StripParameters("foo::Bar::make(int)"), "foo::Bar::make");
  EXPECT_EQ(StripParameters("foo::Bar::make(int) const"), "foo::Bar::make");
  EXPECT_EQ(StripParameters("foo::Bar::get() const &&"), "foo::Bar::get");
  EXPECT_EQ(StripParameters("f(void (*)(int), char)"), "f");
  EXPECT_EQ(StripParameters("g() noexcept"), "g");
  EXPECT_EQ(StripParameters("h[abi:cxx11](int)"), "h[abi:cxx11]");
}

TEST(StripParametersTest, KeepsTemplatesAndDropsReturnType) {
  EXPECT_EQ(StripParameters("void foo::Bar<int>::make<char>(int) const"),
            "foo::Bar<int>::make<char>");
  EXPECT_EQ(StripParameters("std::vector<int, std::allocator<int> >::reserve(unsigned long)"),
            "std::vector<int, std::allocator<int> >::reserve");
  EXPECT_EQ(StripParameters("std::pair<int, int> make<std::pair<int, int> >(int)"),
            "make<std::pair<int, int> >");
}

TEST(StripParametersTest, Operators) {
  EXPECT_EQ(StripParameters("foo::operator()(int) const"), "foo::operator()");
  EXPECT_EQ(StripParameters("foo::operator()"), "foo::operator()");
  EXPECT_EQ(StripParameters("operator new(unsigned long)"), "operator new");
  EXPECT_EQ(StripParameters("operator delete[](void*)"), "operator delete[]");
  EXPECT_EQ(StripParameters("std::ostream& std::operator<< <char>(std::ostream&, char const*)"),
            "std::operator<< <char>");
  EXPECT_EQ(StripParameters("bool operator<(A const&, A const&)"), "operator<");
  EXPECT_EQ(StripParameters("X::operator->()"), "X::operator->");
}

TEST(StripParametersTest, AnonymousNamespacesLambdasAndPlainNames) {
  EXPECT_EQ(StripParameters("(anonymous namespace)::Leak(int)"), "(anonymous namespace)::Leak");
  EXPECT_EQ(StripParameters("main::{lambda(int)#1}::operator()(int) const"),
            "main::{lambda(int)#1}::operator()");
  EXPECT_EQ(StripParameters("main"), "main");
  EXPECT_EQ(StripParameters("foo::bar"), "foo::bar");
  EXPECT_EQ(StripParameters(""), "");
  EXPECT_EQ(StripParameters("(anonymous namespace)"), "(anonymous namespace)");
}

TEST(StripParametersTest, NeverCrashesOnGarbage) {
  for (const char* s : {")", "(", "())", "a)", " (x)", "  ", ")))(((", "<<>>()", "operator", "&()"}) {
    std::string r = StripParameters(s);
    EXPECT_LE(r.size(), std::string(s).size() + 0) << s;
  }
}

TEST(StripSymbolVersionTest, RemovesElfVersions) {
  EXPECT_EQ(StripSymbolVersion("__libc_start_main@@GLIBC_2.34"), "__libc_start_main");
  EXPECT_EQ(StripSymbolVersion("memcpy@GLIBC_2.2.5"), "memcpy");
  EXPECT_EQ(StripSymbolVersion("main"), "main");
  EXPECT_EQ(StripSymbolVersion("@x"), "@x");
  EXPECT_EQ(StripSymbolVersion("f@@"), "f@@");
  EXPECT_EQ(StripSymbolVersion("f@bad version"), "f@bad version");
}

TEST(UnknownFrameNameTest, ModuleAndOffset) {
  EXPECT_EQ(UnknownFrameName("/usr/lib/libfoo.so.1", 0x1a2b, 0x7f0000001a2b), "libfoo.so.1+0x1a2b");
  EXPECT_EQ(UnknownFrameName("", 0, 0x7f001234), "0x7f001234");
  EXPECT_EQ(UnknownFrameName("app", 0x10, 0x5510), "app+0x10");
}

}  // namespace
}  // namespace heapsight::analyzer::output
