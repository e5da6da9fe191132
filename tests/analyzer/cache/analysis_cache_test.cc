// tests/analyzer/cache/analysis_cache_test.cc: the analysis cache
// (analyzer/cache/analysis_cache.h) and its codec on the synthetic sample
// trace: a warm answer equals AnalyzeTrace's byte for byte (through the
// codec), options that change the analysis get their own file, a rewritten
// trace or a damaged cache file is never trusted (and never crashes), the
// file is 0600, and a symlink at its path is replaced, not followed.
// cache_cli_test.py checks the same end to end on recorded programs.
#include "analyzer/cache/analysis_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "analyzer/cache/profile_codec.h"
#include "analyzer/symbols/symbolizer.h"
#include "gtest/gtest.h"
#include "tests/analyzer/sample_trace.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer::cache {
namespace {

std::string Encoded(const ProcessProfile& p) {
  std::string out;
  EncodeProfile(p, &out);
  return out;
}

std::string ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteAll(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

class AnalysisCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = ::testing::TempDir() + "/analysis_cache_test.XXXXXX";
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    std::string sample = testing::WriteSampleTrace("cache_sample");
    trace_ = dir_ + "/heapsight.sample.4242.hst";
    WriteAll(trace_, ReadAll(sample));
    unlink(sample.c_str());
    options_.fallback_dir = dir_ + "/fallback";
  }
  void TearDown() override { std::system(("rm -rf '" + dir_ + "'").c_str()); }

  std::string CachePath(const AnalyzeOptions& o = {}) {
    return CacheFileCandidates(trace_, o, options_)[0];
  }

  ProcessProfile Analyze(const AnalyzeOptions& o, CacheOutcome expected) {
    CacheOutcome outcome;
    absl::StatusOr<ProcessProfile> p = AnalyzeTraceCached(trace_, o, options_, &outcome);
    EXPECT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(static_cast<int>(outcome), static_cast<int>(expected));
    return p.ok() ? std::move(*p) : ProcessProfile{};
  }

  std::string dir_;
  std::string trace_;
  CacheOptions options_;
};

TEST_F(AnalysisCacheTest, WarmEqualsColdEqualsUncached) {
  for (bool growth : {false, true}) {
    AnalyzeOptions o;
    o.track_growth = growth;
    absl::StatusOr<ProcessProfile> plain = AnalyzeTrace(trace_, o);
    ASSERT_TRUE(plain.ok());
    unlink(CachePath().c_str());
    ProcessProfile cold = Analyze(o, CacheOutcome::kMiss);
    ProcessProfile warm = Analyze(o, CacheOutcome::kHit);
    EXPECT_EQ(Encoded(cold), Encoded(*plain));
    EXPECT_EQ(Encoded(warm), Encoded(*plain));
    EXPECT_EQ(warm.trace_path, trace_);
    EXPECT_EQ(warm.growth.empty(), !growth);
    // The numbers of the sample (sample_trace.h), read back from the cache.
    EXPECT_EQ(warm.totals.leaked_bytes, 6200u);
    EXPECT_EQ(warm.markers.size(), 2u);
    ASSERT_NE(warm.symbolizer, nullptr);
    EXPECT_EQ(warm.symbolizer->modules().size(), 3u);
  }
}

TEST_F(AnalysisCacheTest, GrowthAndNoGrowthShareOneFileOtherMomentsDoNot) {
  AnalyzeOptions report;
  Analyze(report, CacheOutcome::kMiss);
  AnalyzeOptions html;
  html.track_growth = true;
  Analyze(html, CacheOutcome::kHit);
  AnalyzeOptions peak;
  peak.at = AnalyzeOptions::At::kPeak;
  EXPECT_NE(CachePath(peak), CachePath(report));
  ProcessProfile cold = Analyze(peak, CacheOutcome::kMiss);
  ProcessProfile warm = Analyze(peak, CacheOutcome::kHit);
  absl::StatusOr<ProcessProfile> plain = AnalyzeTrace(trace_, peak);
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(Encoded(warm), Encoded(*plain));
  AnalyzeOptions no_runtime;
  no_runtime.classify_runtime = false;
  Analyze(no_runtime, CacheOutcome::kMiss);
  Analyze(report, CacheOutcome::kHit);
}

TEST_F(AnalysisCacheTest, FileIs0600AndASymlinkIsReplacedNotFollowed) {
  std::string target = dir_ + "/victim";
  WriteAll(target, "precious");
  ASSERT_EQ(symlink(target.c_str(), CachePath().c_str()), 0);
  Analyze({}, CacheOutcome::kMiss);
  EXPECT_EQ(ReadAll(target), "precious");
  struct stat st;
  ASSERT_EQ(lstat(CachePath().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  Analyze({}, CacheOutcome::kHit);
  // A symlink to a valid cache is not read through either.
  std::string real = dir_ + "/real.cache";
  ASSERT_EQ(rename(CachePath().c_str(), real.c_str()), 0);
  ASSERT_EQ(symlink(real.c_str(), CachePath().c_str()), 0);
  Analyze({}, CacheOutcome::kMiss);
}

TEST_F(AnalysisCacheTest, GroupWritableCacheIsNotTrusted) {
  Analyze({}, CacheOutcome::kMiss);
  ASSERT_EQ(chmod(CachePath().c_str(), 0620), 0);
  Analyze({}, CacheOutcome::kMiss);
  Analyze({}, CacheOutcome::kHit);
}

TEST_F(AnalysisCacheTest, RewrittenTraceIsAnalyzedAfresh) {
  Analyze({}, CacheOutcome::kMiss);
  // One byte changed in the last chunk, same size, mtime set back.
  struct stat before;
  ASSERT_EQ(stat(trace_.c_str(), &before), 0);
  std::string data = ReadAll(trace_);
  ProcessProfile warm = Analyze({}, CacheOutcome::kHit);
  data[data.size() - 3] ^= 0x01;
  int fd = open(trace_.c_str(), O_WRONLY);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(pwrite(fd, data.data() + data.size() - 3, 1, static_cast<off_t>(data.size() - 3)), 1);
  struct timespec times[2] = {before.st_atim, before.st_mtim};
  ASSERT_EQ(futimens(fd, times), 0);
  close(fd);
  CacheOutcome outcome;
  (void)AnalyzeTraceCached(trace_, {}, options_, &outcome);  // the trace may now be bad
  EXPECT_NE(static_cast<int>(outcome), static_cast<int>(CacheOutcome::kHit));
  // Appending changes the size.
  WriteAll(trace_, ReadAll(trace_));
  fd = open(trace_.c_str(), O_WRONLY | O_APPEND);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(write(fd, "x", 1), 1);
  close(fd);
  (void)AnalyzeTraceCached(trace_, {}, options_, &outcome);
  EXPECT_NE(static_cast<int>(outcome), static_cast<int>(CacheOutcome::kHit));
}

TEST_F(AnalysisCacheTest, TruncatedOrFlippedCacheIsIgnoredAndReplaced) {
  ProcessProfile reference = Analyze({}, CacheOutcome::kMiss);
  const std::string good = ReadAll(CachePath());
  ASSERT_GT(good.size(), 40u);
  for (size_t cut : {size_t{0}, size_t{4}, size_t{12}, size_t{20}, good.size() / 2, good.size() - 1}) {
    WriteAll(CachePath(), good.substr(0, cut));
    chmod(CachePath().c_str(), 0600);
    ProcessProfile p = Analyze({}, CacheOutcome::kMiss);
    EXPECT_EQ(Encoded(p), Encoded(reference)) << "cut " << cut;
    EXPECT_EQ(ReadAll(CachePath()), good) << "cut " << cut << ": replaced";
  }
  // A flipped byte never gives another profile. It is almost always a
  // miss; the exception is a byte the zstd frame does not need for its
  // content (e.g. a larger window descriptor): the content still passes
  // the frame's checksum, so the hit is the same profile. Where that byte
  // lands depends on the payload's length (the trace's inode and mtime are
  // in it), which made a strict "always a miss" fail now and then.
  int hits = 0;
  for (size_t at = 0; at < good.size(); at += 7) {
    std::string bad = good;
    bad[at] ^= 0x5a;
    WriteAll(CachePath(), bad);
    chmod(CachePath().c_str(), 0600);
    CacheOutcome outcome;
    absl::StatusOr<ProcessProfile> p = AnalyzeTraceCached(trace_, {}, options_, &outcome);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_EQ(Encoded(*p), Encoded(reference)) << "flip at " << at;
    if (outcome == CacheOutcome::kHit) {
      ++hits;
      EXPECT_GE(at, size_t{12}) << "the magic and version are always checked";
    } else {
      EXPECT_EQ(static_cast<int>(outcome), static_cast<int>(CacheOutcome::kMiss)) << at;
      EXPECT_EQ(ReadAll(CachePath()), good) << "flip at " << at << ": replaced";
    }
  }
  EXPECT_LE(hits, 1);
}

TEST_F(AnalysisCacheTest, DecodingGarbageFailsCleanly) {
  ProcessProfile reference = Analyze({}, CacheOutcome::kMiss);
  std::string good = Encoded(reference);
  ASSERT_TRUE(DecodeProfile(good).ok());
  for (size_t cut = 0; cut < good.size(); ++cut) {
    EXPECT_FALSE(DecodeProfile(std::string_view(good).substr(0, cut)).ok()) << cut;
  }
  // Flipped bytes may decode to other numbers, but never crash or allocate
  // beyond the data (a count is checked against the bytes left).
  for (size_t at = 0; at < good.size(); ++at) {
    std::string bad = good;
    bad[at] = static_cast<char>(0xff);
    (void)DecodeProfile(bad);
  }
  EXPECT_FALSE(DecodeProfile(std::string(64, '\xff')).ok());
}

TEST_F(AnalysisCacheTest, UnwritableNextToTraceFallsBack) {
  // A directory at the cache path: the rename fails, the fallback is used.
  ASSERT_EQ(mkdir(CachePath().c_str(), 0700), 0);
  Analyze({}, CacheOutcome::kMiss);
  std::string fallback = CacheFileCandidates(trace_, {}, options_)[1];
  EXPECT_EQ(fallback.rfind(options_.fallback_dir + "/", 0), 0u);
  struct stat st;
  ASSERT_EQ(stat(fallback.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 07777, 0600u);
  Analyze({}, CacheOutcome::kHit);
}

// A version-6 fork child's analysis reads its parent's trace (the
// inherited blocks' stacks and sizes, fork_inheritance.h): a parent trace
// that goes (or comes back) makes the child's cache miss.
TEST_F(AnalysisCacheTest, ForkChildCacheFollowsItsParentTrace) {
  const std::string parent = dir_ + "/heapsight.prog.100.hst";
  {
    testing::TestTraceWriter w(100, 1);
    w.UseAddressFrees();
    w.Process(0, 1, "/bin/prog", {"prog"});
    w.StackNode(0, 1, 0, 0x401000);
    w.AllocAt(0, 10, format::Api::kMalloc, 100, 1, 0x10000);
    w.Fork(0, 20, 200);
    w.End(0, 30);
    w.Flush(0);
    ASSERT_TRUE(w.WriteFile(parent));
  }
  trace_ = dir_ + "/heapsight.prog.200.hst";
  {
    testing::TestTraceWriter w(200, 100);
    w.UseAddressFrees();
    w.EditHeader([](format::FileHeader& h) { h.flags |= format::kFileFlagForkChild; });
    w.Process(0, 20, "/bin/prog", {"prog"}, 100, parent);
    w.StackNode(0, 1, 0, 0x401000);
    w.Inherited(0, 20, 0x10000, format::Api::kMalloc, 104, 0);
    w.End(0, 30);
    w.Flush(0);
    ASSERT_TRUE(w.WriteFile(trace_));
  }
  EXPECT_EQ(Analyze({}, CacheOutcome::kMiss).totals.leaked_bytes, 100u);
  EXPECT_EQ(Analyze({}, CacheOutcome::kHit).totals.leaked_bytes, 100u);
  const std::string aside = dir_ + "/aside";
  ASSERT_EQ(rename(parent.c_str(), aside.c_str()), 0);
  ProcessProfile alone = Analyze({}, CacheOutcome::kMiss);
  EXPECT_EQ(alone.totals.leaked_bytes, 104u);  // the usable size, as recorded
  ASSERT_FALSE(alone.warnings.empty());
  EXPECT_EQ(alone.warnings.back().rfind("1 blocks inherited at the fork", 0), 0u);
  Analyze({}, CacheOutcome::kHit);
  ASSERT_EQ(rename(aside.c_str(), parent.c_str()), 0);
  EXPECT_EQ(Analyze({}, CacheOutcome::kMiss).totals.leaked_bytes, 100u);
}

TEST_F(AnalysisCacheTest, DisabledOrStdinBypasses) {
  CacheOptions off = options_;
  off.enabled = false;
  CacheOutcome outcome;
  ASSERT_TRUE(AnalyzeTraceCached(trace_, {}, off, &outcome).ok());
  EXPECT_EQ(static_cast<int>(outcome), static_cast<int>(CacheOutcome::kBypassed));
  struct stat st;
  EXPECT_NE(stat(CachePath().c_str(), &st), 0);
  setenv(kNoCacheEnv, "1", 1);
  EXPECT_FALSE(CacheEnabledByEnvironment());
  setenv(kNoCacheEnv, "0", 1);
  EXPECT_TRUE(CacheEnabledByEnvironment());
  unsetenv(kNoCacheEnv);
  EXPECT_TRUE(CacheEnabledByEnvironment());
}

}  // namespace
}  // namespace heapsight::analyzer::cache
