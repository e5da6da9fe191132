// tests/preload/options_test.cc: HEAPSIGHT_* parsing (preload/options).
#include "preload/options.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

namespace heapsight::preload {
namespace {

using Env = std::map<std::string, std::string>;

const char* Lookup(const char* name, void* ctx) {
  auto* env = static_cast<Env*>(ctx);
  auto it = env->find(name);
  return it == env->end() ? nullptr : it->second.c_str();
}

TEST(Options, Defaults) {
  Env env;
  Options o;
  char error[256];
  EXPECT_TRUE(ParseOptions(Lookup, &env, &o, error, sizeof error));
  EXPECT_STREQ(error, "");
  EXPECT_STREQ(o.OUTPUT, "heapsight.%e.%p.hst");
  EXPECT_EQ(o.MAX_DEPTH, 256);
  EXPECT_STREQ(o.UNWIND, "libunwind");
  EXPECT_EQ(o.ZSTD_LEVEL, 3);
  EXPECT_EQ(o.RSS_INTERVAL_MS, 10);
  EXPECT_FALSE(o.RECORD_ADDRESSES);
  EXPECT_STREQ(o.MANIFEST, "");
  EXPECT_FALSE(o.DISABLE);
  EXPECT_FALSE(o.QUIET);
  EXPECT_EQ(ParseUnwindMode(o.UNWIND), UnwindMode::kLibunwind);
}

TEST(Options, ValuesAreParsed) {
  Env env = {{"HEAPSIGHT_OUTPUT", "/tmp/x.%p.hst"}, {"HEAPSIGHT_MAX_DEPTH", "12"},
             {"HEAPSIGHT_UNWIND", "fp"},            {"HEAPSIGHT_ZSTD_LEVEL", "0"},
             {"HEAPSIGHT_RSS_INTERVAL_MS", "0"},    {"HEAPSIGHT_RECORD_ADDRESSES", "1"},
             {"HEAPSIGHT_MANIFEST", "/tmp/m"},      {"HEAPSIGHT_DISABLE", "yes"},
             {"HEAPSIGHT_QUIET", "true"}};
  Options o;
  char error[256];
  EXPECT_TRUE(ParseOptions(Lookup, &env, &o, error, sizeof error));
  EXPECT_STREQ(o.OUTPUT, "/tmp/x.%p.hst");
  EXPECT_EQ(o.MAX_DEPTH, 12);
  EXPECT_EQ(ParseUnwindMode(o.UNWIND), UnwindMode::kFramePointer);
  EXPECT_EQ(o.ZSTD_LEVEL, 0);
  EXPECT_EQ(o.RSS_INTERVAL_MS, 0);
  EXPECT_TRUE(o.RECORD_ADDRESSES);
  EXPECT_STREQ(o.MANIFEST, "/tmp/m");
  EXPECT_TRUE(o.DISABLE);
  EXPECT_TRUE(o.QUIET);
}

TEST(Options, InvalidValuesKeepDefaultsAndSayWhy) {
  Env env = {{"HEAPSIGHT_MAX_DEPTH", "0"},
             {"HEAPSIGHT_UNWIND", "magic"},
             {"HEAPSIGHT_ZSTD_LEVEL", "abc"}};
  Options o;
  char error[256];
  EXPECT_FALSE(ParseOptions(Lookup, &env, &o, error, sizeof error));
  EXPECT_EQ(o.MAX_DEPTH, 256);
  EXPECT_STREQ(o.UNWIND, "libunwind");
  EXPECT_EQ(o.ZSTD_LEVEL, 3);
  // The first problem, in table order.
  EXPECT_STREQ(error, "invalid HEAPSIGHT_MAX_DEPTH=0; using the default");
  env = {{"HEAPSIGHT_MAX_DEPTH", "257"}};
  EXPECT_FALSE(ParseOptions(Lookup, &env, &o, error, sizeof error));
  env = {{"HEAPSIGHT_MAX_DEPTH", "256"}};
  EXPECT_TRUE(ParseOptions(Lookup, &env, &o, error, sizeof error));
  EXPECT_EQ(o.MAX_DEPTH, 256);
}

TEST(Options, TinyErrorBufferIsSafe) {
  Env env = {{"HEAPSIGHT_DISABLE", "maybe"}};
  Options o;
  char error[8];
  EXPECT_FALSE(ParseOptions(Lookup, &env, &o, error, sizeof error));
  EXPECT_EQ(std::string(error).size(), 7u);
}

// One variable at a time: does ParseOptions accept `value` for `name`?
bool Accepts(const std::string& name, const std::string& value, Options* o) {
  Env env = {{"HEAPSIGHT_" + name, value}};
  char error[256];
  bool ok = ParseOptions(Lookup, &env, o, error, sizeof error);
  // A rejection always says which variable and value, and nothing else.
  EXPECT_STREQ(error, ok ? "" : ("invalid HEAPSIGHT_" + name + "=" + value + "; using the default").c_str());
  return ok;
}

TEST(Options, IntegersAreDecimalWithAnOptionalSign) {
  Options o;
  EXPECT_TRUE(Accepts("MAX_DEPTH", "+12", &o));
  EXPECT_EQ(o.MAX_DEPTH, 12);
  EXPECT_TRUE(Accepts("MAX_DEPTH", "007", &o));
  EXPECT_EQ(o.MAX_DEPTH, 7);
  for (const char* bad : {"", "+", "-", " 12", "12 ", "12abc", "0x10", "1e2", "1.5", "-1", "-0x1"}) {
    EXPECT_FALSE(Accepts("MAX_DEPTH", bad, &o)) << "\"" << bad << "\"";
    EXPECT_EQ(o.MAX_DEPTH, 256) << "\"" << bad << "\"";
  }
  // "-0" is zero, which MAX_DEPTH rejects and ZSTD_LEVEL takes.
  EXPECT_FALSE(Accepts("MAX_DEPTH", "-0", &o));
  EXPECT_TRUE(Accepts("ZSTD_LEVEL", "-0", &o));
  EXPECT_EQ(o.ZSTD_LEVEL, 0);
}

TEST(Options, HugeNumbersAreRejectedNotWrapped) {
  Options o;
  // 2^64 + 12 would wrap to 12 in 64-bit arithmetic.
  EXPECT_FALSE(Accepts("MAX_DEPTH", "18446744073709551628", &o));
  EXPECT_EQ(o.MAX_DEPTH, 256);
  EXPECT_FALSE(Accepts("SAMPLE_BYTES", "99999999999999999999999", &o));
  EXPECT_EQ(o.SAMPLE_BYTES, 0);
  EXPECT_FALSE(Accepts("SAMPLE_BYTES", "-4096", &o));
}

TEST(Options, RangeLimitsAreInclusive) {
  struct Case {
    const char* name;
    int64_t lo, hi;
    int64_t Options::*field;
  };
  const Case cases[] = {
      {"MAX_DEPTH", 1, kMaxStackDepth, &Options::MAX_DEPTH},
      {"ZSTD_LEVEL", 0, 19, &Options::ZSTD_LEVEL},
      {"RSS_INTERVAL_MS", 0, 3600 * 1000, &Options::RSS_INTERVAL_MS},
      {"SAMPLE_BYTES", 0, int64_t{1} << 40, &Options::SAMPLE_BYTES},
      {"LEAK_SCAN_SIGNAL", 0, 64, &Options::LEAK_SCAN_SIGNAL},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Options defaults;
    Options o;
    EXPECT_TRUE(Accepts(c.name, std::to_string(c.lo), &o));
    EXPECT_EQ(o.*c.field, c.lo);
    EXPECT_TRUE(Accepts(c.name, std::to_string(c.hi), &o));
    EXPECT_EQ(o.*c.field, c.hi);
    EXPECT_FALSE(Accepts(c.name, std::to_string(c.lo - 1), &o));
    EXPECT_EQ(o.*c.field, defaults.*c.field);
    EXPECT_FALSE(Accepts(c.name, std::to_string(c.hi + 1), &o));
    EXPECT_EQ(o.*c.field, defaults.*c.field);
  }
}

TEST(Options, BooleansAreExactWords) {
  Options o;
  for (const char* yes : {"1", "yes", "true"}) {
    EXPECT_TRUE(Accepts("QUIET", yes, &o)) << yes;
    EXPECT_TRUE(o.QUIET) << yes;
  }
  for (const char* no : {"0", "no", "false", ""}) {
    EXPECT_TRUE(Accepts("UNWIND_CACHE", no, &o)) << no;
    EXPECT_FALSE(o.UNWIND_CACHE) << no;
  }
  // Case matters, and nothing else is a boolean.
  for (const char* bad : {"TRUE", "Yes", "on", "off", "2", " 1", "1 "}) {
    EXPECT_FALSE(Accepts("UNWIND_CACHE", bad, &o)) << bad;
    EXPECT_TRUE(o.UNWIND_CACHE) << bad;  // the default
  }
}

TEST(Options, StringsWithAFixedSetOfValues) {
  Options o;
  for (const char* v : {"auto", "coarse", "precise"}) {
    EXPECT_TRUE(Accepts("CLOCK", v, &o)) << v;
    EXPECT_STREQ(o.CLOCK, v);
  }
  for (const char* v : {"skip", "abort", "pass"}) {
    EXPECT_TRUE(Accepts("ON_BAD_FREE", v, &o)) << v;
    EXPECT_STREQ(o.ON_BAD_FREE, v);
  }
  for (const char* bad : {"", "Coarse", "tsc"}) {
    EXPECT_FALSE(Accepts("CLOCK", bad, &o)) << bad;
    EXPECT_STREQ(o.CLOCK, "auto");
  }
  EXPECT_FALSE(Accepts("ON_BAD_FREE", "ignore", &o));
  EXPECT_STREQ(o.ON_BAD_FREE, "skip");
  EXPECT_FALSE(Accepts("UNWIND", "", &o));
  EXPECT_FALSE(Accepts("UNWIND", "FP", &o));
  // An empty output pattern is refused; an empty manifest means none.
  EXPECT_FALSE(Accepts("OUTPUT", "", &o));
  EXPECT_STREQ(o.OUTPUT, "heapsight.%e.%p.hst");
  EXPECT_TRUE(Accepts("MANIFEST", "", &o));
  // Free-form strings are taken as they are, not checked here.
  EXPECT_TRUE(Accepts("HEAP_LIMIT", "lots", &o));
  EXPECT_STREQ(o.HEAP_LIMIT, "lots");
  EXPECT_EQ(ParseUnwindMode(nullptr), UnwindMode::kLibunwind);
  EXPECT_EQ(ParseUnwindMode("FP"), UnwindMode::kLibunwind);
}

TEST(Options, EachCallStartsFromTheDefaults) {
  Env env = {{"HEAPSIGHT_MAX_DEPTH", "5"}, {"HEAPSIGHT_QUIET", "1"}};
  Options o;
  char error[64];
  ASSERT_TRUE(ParseOptions(Lookup, &env, &o, error, sizeof error));
  ASSERT_EQ(o.MAX_DEPTH, 5);
  env = {};
  EXPECT_TRUE(ParseOptions(Lookup, &env, &o, error, sizeof error));
  EXPECT_EQ(o.MAX_DEPTH, 256);
  EXPECT_FALSE(o.QUIET);
}

TEST(Options, EveryInvalidValueIsDroppedButOnlyTheFirstIsDescribed) {
  // In table order UNWIND comes before ZSTD_LEVEL, whatever the map's order.
  Env env = {{"HEAPSIGHT_ZSTD_LEVEL", "99"}, {"HEAPSIGHT_UNWIND", "magic"},
             {"HEAPSIGHT_QUIET", "1"}};
  Options o;
  char error[256];
  EXPECT_FALSE(ParseOptions(Lookup, &env, &o, error, sizeof error));
  EXPECT_STREQ(error, "invalid HEAPSIGHT_UNWIND=magic; using the default");
  EXPECT_EQ(o.ZSTD_LEVEL, 3);
  EXPECT_TRUE(o.QUIET);  // valid values beside invalid ones still apply
}

TEST(Options, NoErrorBufferIsFine) {
  Env env = {{"HEAPSIGHT_MAX_DEPTH", "0"}};
  Options o;
  EXPECT_FALSE(ParseOptions(Lookup, &env, &o, nullptr, 0));
  char untouched[4] = {'x', 'y', 'z', '\0'};
  EXPECT_FALSE(ParseOptions(Lookup, &env, &o, untouched, 0));
  EXPECT_STREQ(untouched, "xyz");  // size 0: not even the terminator is written
}

}  // namespace
}  // namespace heapsight::preload
