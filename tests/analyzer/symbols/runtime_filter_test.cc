// tests/analyzer/symbols/runtime_filter_test.cc: which stacks are the C/C++
// runtime's own (rules in analyzer/symbols/runtime_filter.h). The real cases
// (libstdc++'s pool, glibc's DTV) are covered by tests/corpus.
#include "analyzer/symbols/runtime_filter.h"

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

}  // namespace
}  // namespace heapsight::analyzer
