// tests/analyzer/symbols/runtime_filter_test.cc: which stacks are the C/C++
// runtime's own (rules in analyzer/symbols/runtime_filter.h). The real cases
// (libstdc++'s pool, glibc's DTV) are covered by tests/corpus.
#include "analyzer/symbols/runtime_filter.h"

#include <cxxabi.h>

#include <cstdlib>
#include <string>

#include "analyzer/symbols/symbol_names.h"
#include "analyzer/symbols/symbolizer.h"
#include "tests/analyzer/fake_module.h"
#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

using testing::FakeModule;

TEST(RuntimeFilterTest, Rules) {
  Symbolizer symbolizer({FakeModule(1, "/nonexistent/prog", 0x100000),
                         FakeModule(2, "/nonexistent/ld-linux-x86-64.so.2", 0x200000),
                         FakeModule(3, "/nonexistent/libc.so.6", 0x300000),
                         FakeModule(4, "/nonexistent/libstdc++.so.6", 0x400000)});
  const uint64_t prog = 0x100100, ld = 0x200100, libc = 0x300100, cxx = 0x400100;
  // Rule 1: ld.so asked for memory (the DTV: allocate_dtv <- pthread_create <- main).
  EXPECT_EQ(ClassifySite({ld, libc, prog}, symbolizer), SiteKind::kRuntime);
  // Rule 4: only runtime libraries on the stack (a libstdc++ static constructor).
  EXPECT_EQ(ClassifySite({cxx, ld, ld}, symbolizer), SiteKind::kRuntime);
  // The program called into libc, which allocated for it (strdup, fopen...).
  EXPECT_EQ(ClassifySite({libc, prog}, symbolizer), SiteKind::kProgram);
  EXPECT_EQ(ClassifySite({prog}, symbolizer), SiteKind::kProgram);
  EXPECT_EQ(ClassifySite({}, symbolizer), SiteKind::kProgram);
  EXPECT_EQ(ClassifySite({0x42}, symbolizer), SiteKind::kProgram);  // unknown module
  EXPECT_TRUE(IsRuntimeLibrary("/usr/lib/x86_64-linux-gnu/libstdc++.so.6"));
  EXPECT_TRUE(IsRuntimeLibrary("/build/preload/libheapsight.so"));
  EXPECT_FALSE(IsRuntimeLibrary("/usr/lib/libcrypto.so.3"));
  EXPECT_FALSE(IsRuntimeLibrary("/home/u/liblocal.so"));
  EXPECT_TRUE(IsDynamicLoader("/lib64/ld-linux-x86-64.so.2"));
  EXPECT_TRUE(IsDynamicLoader("/lib/ld.so.1"));
  EXPECT_TRUE(IsDynamicLoader("/lib/ld64.so.2"));
  EXPECT_FALSE(IsDynamicLoader("/lib/x86_64-linux-gnu/libc.so.6"));
  EXPECT_FALSE(IsDynamicLoader("/usr/lib/ld-helper/libfoo.so"));
}

std::string DemangleForTest(const char* mangled) {
  int status = 0;
  char* out = abi::__cxa_demangle(StripSymbolVersion(mangled).c_str(), nullptr, nullptr, &status);
  std::string name = status == 0 && out != nullptr ? out : StripSymbolVersion(mangled);
  std::free(out);
  return name;
}

// The names the classification leaves undemangled are ones every name test
// of the rules answers "no" for once demangled; the others are demangled.
TEST(RuntimeFilterTest, PlainNestedNamesNeedNoDemangling) {
  for (const char* plain : {"_ZN2v88internal4Heap2GCEv", "_ZNK4node11Environment7isolateEv",
                            "_ZN4node13AsyncResourceD2Ev@@V1", "_ZN2v84base2OS5AbortEv.cold",
                            "_ZNSt6vectorIiSaIiEE9_M_insertEv",
                            "_ZN2v88internal3FooIiEEPNS0_3BarEv",  // a return type first
                            "_ZN3foo3barEvNOT_MANGLED"}) {
    EXPECT_TRUE(IsPlainNestedName(plain)) << plain;
    const std::string name = DemangleForTest(plain);
    const std::string bare = BareFunctionName(name);
    EXPECT_FALSE(IsAllocatorBareName(bare)) << name;
    EXPECT_FALSE(name.starts_with("_dl_")) << name;
    EXPECT_NE(bare, "_IO_file_doallocate") << name;
    // Qualified, unless it did not demangle (then it is the mangled name).
    if (name != StripSymbolVersion(plain)) {
      EXPECT_NE(bare.find("::"), std::string::npos) << name;
    }
  }
  // Allocator entry points, ld.so's internals, stdio's buffer, heapsight's
  // own: demangled and tested.
  for (const char* asked : {"_Znwm", "_ZdlPvm", "_ZL6mallocm", "malloc", "_dl_allocate_tls",
                            "_IO_file_doallocate", "_ZN9heapsight7preload5AllocEm",
                            "_ZN3foo8_dl_initEv", "_Z3foov", ""}) {
    EXPECT_FALSE(IsPlainNestedName(asked)) << asked;
  }
  EXPECT_FALSE(IsPlainNestedName(nullptr));
}

}  // namespace
}  // namespace heapsight::analyzer
