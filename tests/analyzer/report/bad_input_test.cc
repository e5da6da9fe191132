// tests/analyzer/report/bad_input_test.cc: bad traces give a clear error or a
// (possibly cut-short) analysis, never a crash or a hang: empty files, random
// bytes, wrong versions, truncation at every byte, and thousands of bit-flipped
// traces (raw and zstd blocks) pushed through analysis and every report.
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <random>

#include "absl/strings/match.h"
#include "analyzer/report/leak_report.h"
#include "analyzer/report/text_report.h"
#include "analyzer/model/trace_model.h"
#include "gtest/gtest.h"
#include "tests/analyzer/sample_trace.h"

namespace heapsight::analyzer {
namespace {

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "/" + name + "." + std::to_string(getpid()) + ".hst";
}

std::string Write(const std::string& name, const std::string& bytes) {
  std::string path = TempPath(name);
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

std::string SampleBytes(bool zstd) {
  testing::TestTraceWriter w(4242, 1, 512);
  w.set_zstd(zstd);
  testing::BuildSampleTrace(w);
  w.FlushAll();
  return w.bytes();
}

// Analyzes `bytes`; on success also renders every report. Returns the status.
absl::Status Exercise(const std::string& path) {
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  if (!p.ok()) return p.status();
  LeakReport report = BuildLeakReport({&*p}, Suppressions());
  std::string text = FormatLeakText(report) + FormatReport({&*p});
  std::string json = FormatLeakJson(report);
  EXPECT_FALSE(text.empty());
  EXPECT_FALSE(json.empty());
  return absl::OkStatus();
}

TEST(BadInputTest, ClearErrors) {
  struct Case {
    std::string name, bytes, message;
  };
  std::string good = SampleBytes(false);
  std::string wrong_version = good;
  uint32_t v = 99;
  std::memcpy(&wrong_version[8], &v, 4);
  std::mt19937 rng(3);
  std::string random(5000, '\0');
  for (char& c : random) c = static_cast<char>(rng());
  std::string bad_block = good.substr(0, 64) + std::string(64, '\x55');
  std::vector<Case> cases = {
      {"empty", "", "empty file, not a heapsight trace"},
      {"random", random, "not a heapsight trace (bad magic bytes)"},
      {"short", "HEAPSGHT", "too short to be a heapsight trace (8 bytes)"},
      {"version", wrong_version, "trace format version 99 is not supported"},
      {"badblock", bad_block, "corrupt trace: no block header at offset 64"},
  };
  for (const Case& c : cases) {
    std::string path = Write(c.name, c.bytes);
    absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
    ASSERT_FALSE(p.ok()) << c.name;
    std::string message(p.status().message());
    EXPECT_TRUE(absl::StartsWith(message, path + ": ")) << message;
    EXPECT_TRUE(absl::StrContains(message, c.message)) << message;
  }
  absl::StatusOr<ProcessProfile> missing = AnalyzeTrace("/nonexistent/x.hst");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().message(), "/nonexistent/x.hst: No such file or directory");
  absl::StatusOr<ProcessProfile> dir = AnalyzeTrace("/tmp");
  EXPECT_FALSE(dir.ok());
}

TEST(BadInputTest, HeaderOnlyIsAnEmptyCutShortTrace) {
  std::string path = Write("header_only", SampleBytes(false).substr(0, 64));
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_FALSE(p->complete);
  EXPECT_EQ(p->totals.allocs, 0u);
}

TEST(BadInputTest, TruncationAtEveryByte) {
  for (bool zstd : {false, true}) {
    std::string good = SampleBytes(zstd);
    uint64_t ok = 0, cut = 0;
    for (size_t n = 64; n <= good.size(); ++n) {
      std::string path = Write("trunc", good.substr(0, n));
      absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
      ASSERT_TRUE(p.ok()) << n << ": " << p.status();  // a cut file is never an error
      if (n == good.size()) {
        EXPECT_TRUE(p->complete);
      }
      if (p->truncated) {
        EXPECT_FALSE(p->complete) << n;
      }
      ++ok;
      if (p->truncated) ++cut;
      ASSERT_TRUE(Exercise(path).ok());
    }
    EXPECT_GT(cut, 0u);
    EXPECT_EQ(ok, good.size() - 63);
  }
}

TEST(BadInputTest, ThousandsOfBitFlips) {
  for (bool zstd : {false, true}) {
    std::string good = SampleBytes(zstd);
    std::mt19937_64 rng(zstd ? 11 : 7);
    int errors = 0, analyzed = 0;
    for (int i = 0; i < 3000; ++i) {
      std::string bad = good;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) {
        size_t at = rng() % bad.size();
        bad[at] = static_cast<char>(bad[at] ^ (1u << (rng() % 8)));
      }
      if (rng() % 4 == 0) bad.resize(64 + rng() % (bad.size() - 64));
      std::string path = Write("flip", bad);
      absl::Status s = Exercise(path);
      if (s.ok()) {
        ++analyzed;
      } else {
        ++errors;
        EXPECT_TRUE(absl::StartsWith(s.message(), path + ": ")) << s.message();
      }
    }
    EXPECT_GT(errors, 0);
    EXPECT_GT(analyzed, 0);
  }
}

TEST(BadInputTest, RandomRecordsAfterAValidHeader) {
  std::string header = SampleBytes(false).substr(0, 64);
  std::mt19937_64 rng(5);
  for (int i = 0; i < 2000; ++i) {
    // A valid block header around random chunk bytes.
    uint32_t size = 32 + static_cast<uint32_t>(rng() % 400);
    std::string chunk(size, '\0');
    for (char& c : chunk) c = static_cast<char>(rng() % 24);  // mostly valid tags
    format::BlockHeader b{};
    b.magic = format::kBlockMagic;
    b.payload_size = b.raw_size = size;
    std::string bytes = header + std::string(reinterpret_cast<char*>(&b), sizeof b) + chunk;
    std::string path = Write("records", bytes);
    absl::Status s = Exercise(path);
    if (!s.ok()) {
      EXPECT_TRUE(absl::StrContains(s.message(), "corrupt trace")) << s.message();
    }
  }
}

}  // namespace
}  // namespace heapsight::analyzer
