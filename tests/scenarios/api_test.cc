// tests/scenarios/api_test.cc: every allocation API, exact counts, bytes
// and the realloc corner cases (programs/api_program.cc).
#include <gtest/gtest.h>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

using format::Api;

TEST(ApiScenario, EveryApiExactly) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("api_program")}, dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.out, "api done\n");
  EXPECT_EQ(run.err, "");
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);
  EXPECT_FALSE(t.truncated);
  MagicCounts c = CountMagic(t, 1000, 1100);

  std::map<Api, int> want_allocs = {
      {Api::kMalloc, 3 + 1 + 1 + 1},  // 3 x 1001, 1005, 1027, 1029
      {Api::kCalloc, 1},
      {Api::kRealloc, 2},         // realloc(NULL, 1003) + growth to 1004
      {Api::kReallocArray, 2},    // reallocarray(NULL) + growth
      {Api::kPosixMemalign, 1},
      {Api::kAlignedAlloc, 2},    // 1010, 1028
      {Api::kMemalign, 1},
      {Api::kValloc, 1},
      {Api::kPvalloc, 1},
      {Api::kNew, 2},  // 1015, 1016
      {Api::kNewArray, 2},
      {Api::kNewNothrow, 1},
      {Api::kNewArrayNothrow, 1},
      {Api::kNewAligned, 2},
      {Api::kNewArrayAligned, 2},
      {Api::kNewAlignedNothrow, 1},
      {Api::kNewArrayAlignedNothrow, 1},
  };
  EXPECT_EQ(c.allocs, want_allocs);

  std::map<Api, int> want_frees = {
      {Api::kFree, 3 + 1 + 1 + 1 + 1 + 1 + 1 + 1 + 1},  // 1001x3, 1002, 1005, 1008, 1009-1013
      {Api::kRealloc, 2},        // growth frees 1003; realloc(p, 0) frees 1004
      {Api::kReallocArray, 1},   // growth frees 1006
      {Api::kDelete, 1},
      {Api::kDeleteSized, 1},
      {Api::kDeleteArray, 1},
      {Api::kDeleteArraySized, 1},
      {Api::kDeleteNothrow, 1},
      {Api::kDeleteArrayNothrow, 1},
      {Api::kDeleteAligned, 1},
      {Api::kDeleteArrayAligned, 1},
      {Api::kDeleteSizedAligned, 1},
      {Api::kDeleteArraySizedAligned, 1},
      {Api::kDeleteAlignedNothrow, 1},
      {Api::kDeleteArrayAlignedNothrow, 1},
      {Api::kFreeSized, 1},
      {Api::kFreeAlignedSized, 1},
  };
  EXPECT_EQ(c.frees, want_frees);

  std::map<Api, int> want_failed = {
      {Api::kRealloc, 1}, {Api::kMalloc, 1}, {Api::kNewNothrow, 1}, {Api::kNew, 1},
      {Api::kNewArray, 1}};  // once, after the new-handler loop gave up
  EXPECT_EQ(c.failed, want_failed);
  EXPECT_EQ(c.reallocs, 2);  // the two growths are kRealloc records

  uint64_t want_bytes = 3 * 1001 + 1002 + 1003 + 1004 + 1005 + 1006 + 1008;
  for (uint64_t s = 1009; s <= 1029; ++s) {
    if (s != 1014) want_bytes += s;
  }
  EXPECT_EQ(c.bytes, want_bytes);
  ASSERT_EQ(c.live.size(), 1u);
  EXPECT_EQ(c.live.begin()->second, 1029u);

  EXPECT_EQ(UnpairedFrees(t), 0u);
  EXPECT_EQ(CountTag(t, format::RecordTag::kFreeError), 0);
}

}  // namespace
}  // namespace heapsight::testing
