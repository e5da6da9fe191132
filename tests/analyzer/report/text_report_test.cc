// tests/analyzer/report/text_report_test.cc: `heapsight report` text, golden.
#include "analyzer/report/text_report.h"

#include <unistd.h>

#include <cstdio>

#include "gtest/gtest.h"
#include "tests/analyzer/golden.h"
#include "tests/analyzer/sample_trace.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer {
namespace {

std::string Normalize(std::string text, const std::string& path, const std::string& as) {
  for (size_t pos; (pos = text.find(path)) != std::string::npos;) text.replace(pos, path.size(), as);
  return text;
}

TEST(TextReportTest, SingleProcessGolden) {
  std::string path = testing::WriteSampleTrace("report");
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(p->totals.allocs, 6u);
  EXPECT_EQ(p->totals.frees, 3u);
  EXPECT_EQ(p->totals.temporary, 1u);
  EXPECT_EQ(p->runtime_totals.allocs, 1u);
  testing::ExpectGolden("report_sample.txt", Normalize(FormatReport({&*p}), path, "TRACE"));
}

TEST(TextReportTest, FamilyAndCutShortGolden) {
  std::string a = testing::WriteSampleTrace("report_a");
  std::string b = testing::WriteSampleTrace("report_b", /*with_end=*/false);
  absl::StatusOr<ProcessProfile> pa = AnalyzeTrace(a);
  absl::StatusOr<ProcessProfile> pb = AnalyzeTrace(b);
  ASSERT_TRUE(pa.ok() && pb.ok());
  std::string text = FormatReport({&*pa, &*pb});
  text = Normalize(Normalize(text, a, "TRACE_A"), b, "TRACE_B");
  // Issue 12: a disk-full trace also ends without kEnd; the status line names
  // every cause instead of guessing "killed".
  EXPECT_NE(text.find("status: TRACE CUT SHORT: the trace ends without an end record (the process "
                      "was killed, is still running, or writing the trace failed)"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("== total (2 processes)"), std::string::npos);
  testing::ExpectGolden("report_family.txt", text);
}

// Markers carry the live heap at their moment; the heap limit's marker gets
// its own line; the status line is the end record's.
TEST(TextReportTest, MarkersHeapLimitAndExitStatus) {
  using format::Api;
  testing::TestTraceWriter w(/*pid=*/77, /*ppid=*/1);
  w.Process(1, 0, "/nonexistent/limit_prog", {"limit_prog"});
  uint64_t a = w.Alloc(1, 1000, Api::kMalloc, 4096, 0);
  w.Alloc(1, 2000, Api::kMalloc, 1 << 20, 0);
  w.Marker(1, 2500, "filled");
  w.Free(1, 3000, a);
  w.Alloc(1, 4000, Api::kNew, 3 << 20, 0);
  w.Marker(1, 31894, "heap-limit");
  w.AllocFailed(1, 32194, 65536);
  w.Marker(1, 40000, "heap-limit");  // only the first one counts
  w.End(1, 50000, 3);
  std::string path = ::testing::TempDir() + "/markers." + std::to_string(getpid()) + ".hst";
  ASSERT_TRUE(w.WriteFile(path));
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok()) << p.status();
  ASSERT_EQ(p->markers.size(), 3u);
  EXPECT_EQ(p->markers[0].heap_bytes, 4096u + (1u << 20));
  EXPECT_EQ(p->markers[0].heap_blocks, 2u);
  EXPECT_EQ(p->markers[1].time_us, 31894u);
  EXPECT_EQ(p->markers[1].heap_bytes, (1u << 20) + (3u << 20));
  EXPECT_EQ(p->markers[1].heap_blocks, 2u);
  std::string text = FormatReport({&*p});
  EXPECT_NE(text.find("status: complete, exit status 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("markers (time since the start, live heap then):\n"
                      "  \"filled\" at 2.500 ms: 1,052,672 bytes (1.0 MiB) in 2 blocks\n"
                      "  \"heap-limit\" at 31.894 ms: 4,194,304 bytes (4.0 MiB) in 2 blocks\n"
                      "  \"heap-limit\" at 40.000 ms: 4,194,304 bytes (4.0 MiB) in 2 blocks\n"
                      "heap limit hit at 31.894 ms: live heap 4,194,304 bytes (4.0 MiB) in 2 "
                      "blocks\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("failed allocations: 1\n"), std::string::npos) << text;
  std::remove(path.c_str());

  // _exit's status, from a trace whose end record says so.
  testing::TestTraceWriter w2(/*pid=*/78, /*ppid=*/1);
  w2.Process(1, 0, "/nonexistent/quick", {"quick"});
  w2.End(1, 10, 42, format::EndReason::kUnderscoreExit);
  std::string path2 = ::testing::TempDir() + "/exit42." + std::to_string(getpid()) + ".hst";
  ASSERT_TRUE(w2.WriteFile(path2));
  absl::StatusOr<ProcessProfile> p2 = AnalyzeTrace(path2);
  ASSERT_TRUE(p2.ok()) << p2.status();
  EXPECT_EQ(p2->exit_status, 42);
  std::string text2 = FormatReport({&*p2});
  EXPECT_NE(text2.find("status: complete, _exit status 42\n"), std::string::npos) << text2;
  EXPECT_EQ(text2.find("markers"), std::string::npos) << text2;
  std::remove(path2.c_str());
}

// The sample on the coarse clock (kFileFlagCoarseClock), ending at 504 ms.
TEST(TextReportTest, CoarseClockTimesHaveNoMicroseconds) {
  testing::TestTraceWriter w(/*pid=*/4646, /*ppid=*/1);
  w.EditHeader([](format::FileHeader& h) { h.flags |= format::kFileFlagCoarseClock; });
  testing::BuildSampleTrace(w, /*with_end=*/false);
  w.End(1, 504000, 0);
  std::string path = ::testing::TempDir() + "/report_coarse." + std::to_string(getpid()) + ".hst";
  w.WriteFile(path);
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok()) << p.status();
  std::string text = FormatReport({&*p});
  EXPECT_NE(text.find("duration: 504 ms, "), std::string::npos) << text;
  EXPECT_NE(text.find(" at 0 ms\n"), std::string::npos) << text;  // peak at 200 us
  EXPECT_NE(text.find("\"loaded\" at 0 ms: "), std::string::npos) << text;
  EXPECT_EQ(text.find("504.000 ms"), std::string::npos) << text;
  EXPECT_EQ(text.find(" us"), std::string::npos) << text;
}

TEST(TextReportTest, AnImageThatEndedInExecDiscardedItsBlocks) {
  testing::TestTraceWriter w(/*pid=*/4747, /*ppid=*/1);
  testing::BuildSampleTrace(w, /*with_end=*/false);
  w.ExecEnd(1, 400, "/bin/ls");
  std::string path = ::testing::TempDir() + "/report_exec." + std::to_string(getpid()) + ".hst";
  w.WriteFile(path);
  std::string other = testing::WriteSampleTrace("report_exec_other");
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  absl::StatusOr<ProcessProfile> q = AnalyzeTrace(other);
  ASSERT_TRUE(p.ok() && q.ok());
  std::string text = FormatReport({&*p, &*q});
  EXPECT_NE(text.find("ended in exec: 6,200 bytes in 3 blocks discarded by exec (not leaks)\n"),
            std::string::npos)
      << text;
  // The family's total counts only the process that exited.
  EXPECT_NE(text.find("== total (2 processes)"), std::string::npos);
  size_t total = text.find("== total");
  EXPECT_NE(text.find("not freed at exit: 6,200 bytes in 3 blocks\n", total), std::string::npos)
      << text;
}

// Issue 13: a sampled trace's report prints estimates and says so, with
// error bounds; temporaries are not known there.
TEST(TextReportTest, SampledTraceTotalsAreLabelledEstimates) {
  testing::TestTraceWriter w(/*pid=*/4848, /*ppid=*/1);
  w.EditHeader([](format::FileHeader& h) {
    h.flags |= format::kFileFlagSampled;
    h.sample_period_bytes = 65536;
  });
  w.StackNode(0, 1, 0, 0x401000);
  for (uint64_t i = 0; i < 10; ++i) w.Alloc(0, 10 + i, format::Api::kMalloc, 1000, 1);
  w.End(0, 100, 0);
  std::string path = ::testing::TempDir() + "/report_sampled." + std::to_string(getpid()) + ".hst";
  ASSERT_TRUE(w.WriteFile(path));
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
  ASSERT_TRUE(p.ok()) << p.status();
  std::string text = FormatReport({&*p});
  // 10 samples of 1,000 bytes, each standing for 1/(1 - exp(-1000/65536)) =
  // 66.037 allocations: 660,372.7 bytes, rounded (allocated) or truncated
  // (live blocks, Go's scaling).
  EXPECT_NE(text.find("sampled trace: one allocation per 65,536 bytes (64.0 KiB) allocated was "
                      "recorded, on average (HEAPSIGHT_SAMPLE_BYTES), 10 allocations of 10,000 "
                      "bytes in all; totals are estimates"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("bytes allocated: 660,373 bytes (644.9 KiB) (estimate, +/- 414,482 bytes (404.8 KiB)) in 660 (estimate, +/- 414) allocations\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("peak heap: 660,372 bytes (644.9 KiB) (estimate, +/- 414,482 bytes (404.8 KiB)) in 660 blocks at 19 us\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("not freed at exit: 660,372 bytes (644.9 KiB) (estimate, +/- 414,482 bytes (404.8 KiB)) in 660 blocks\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("temporary allocations: not known in a sampled trace"), std::string::npos);
  // The family's summary says it in the same words as each process's.
  std::string family = FormatReport({&*p, &*p});
  size_t said = 0;
  for (size_t at = family.find("temporary allocations: not known in a sampled trace\n");
       at != std::string::npos;
       at = family.find("temporary allocations: not known in a sampled trace\n", at + 1)) {
    ++said;
  }
  EXPECT_EQ(said, 3u) << family;
}

}  // namespace
}  // namespace heapsight::analyzer
