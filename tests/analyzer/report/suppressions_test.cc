// tests/analyzer/report/suppressions_test.cc: LSan-style `leak:` patterns.
#include "analyzer/report/suppressions.h"

#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

TEST(SuppressionsTest, PatternMatching) {
  EXPECT_TRUE(SuppressionPatternMatches("leak_one", "leak_one"));
  EXPECT_TRUE(SuppressionPatternMatches("leak", "my_leak_one"));  // substring
  EXPECT_TRUE(SuppressionPatternMatches("^my_", "my_leak_one"));
  EXPECT_FALSE(SuppressionPatternMatches("^leak", "my_leak_one"));
  EXPECT_TRUE(SuppressionPatternMatches("one$", "my_leak_one"));
  EXPECT_FALSE(SuppressionPatternMatches("leak$", "my_leak_one"));
  EXPECT_TRUE(SuppressionPatternMatches("^my_*_one$", "my_leak_one"));
  EXPECT_TRUE(SuppressionPatternMatches("ns::*::f", "ns::a::b::f(int)"));
  EXPECT_FALSE(SuppressionPatternMatches("^ns::*::g$", "ns::a::b::f"));
  EXPECT_TRUE(SuppressionPatternMatches("libfoo.so", "/usr/lib/libfoo.so.1"));
  EXPECT_FALSE(SuppressionPatternMatches("", "x"));
  // Pathological patterns finish quickly.
  EXPECT_FALSE(SuppressionPatternMatches("^*a*a*a*a*a*a*a*a*b$", std::string(5000, 'a')));
}

TEST(SuppressionsTest, ParsesCommentsAndRejectsOtherTypes) {
  auto s = Suppressions::Parse("# comment\n\n  leak:foo  \nleak:^bar$\n", "supp.txt");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->patterns().size(), 2u);
  EXPECT_EQ(s->patterns()[0], "foo");
  EXPECT_EQ(s->patterns()[1], "^bar$");
  auto bad = Suppressions::Parse("leak:ok\nrace:foo\n", "supp.txt");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(),
            "supp.txt:2: unsupported suppression type `race` (only `leak:` is supported)");
  EXPECT_FALSE(Suppressions::Parse("leak:\n", "s").ok());
  EXPECT_FALSE(Suppressions::Parse("nonsense\n", "s").ok());
  EXPECT_FALSE(Suppressions::Load("/nonexistent/supp").ok());
  EXPECT_TRUE(Suppressions::Load("")->empty());
}

TEST(SuppressionsTest, MatchesFunctionFileOrModuleOfAnyFrame) {
  Module m;
  m.path = "/usr/lib/libthird.so.2";
  SymbolizedLocation a, b;
  a.frames.push_back({"alloc_block", "/src/a.c", 12, false});
  b.module = &m;
  b.frames.push_back({"", "", 0, false});
  std::vector<const SymbolizedLocation*> stack = {&a, &b};
  auto by_fn = Suppressions::Parse("leak:alloc_block\n", "s");
  auto by_file = Suppressions::Parse("leak:a.c$\n", "s");
  auto by_module = Suppressions::Parse("leak:libthird\n", "s");
  auto none = Suppressions::Parse("leak:zzz\n", "s");
  ASSERT_NE(by_fn->Match(stack), nullptr);
  EXPECT_EQ(*by_fn->Match(stack), "alloc_block");
  EXPECT_NE(by_file->Match(stack), nullptr);
  EXPECT_NE(by_module->Match(stack), nullptr);
  EXPECT_EQ(none->Match(stack), nullptr);
}

}  // namespace
}  // namespace heapsight::analyzer
