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
  EXPECT_EQ(o.MAX_DEPTH, 64);
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
  EXPECT_EQ(o.MAX_DEPTH, 64);
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

}  // namespace
}  // namespace heapsight::preload
