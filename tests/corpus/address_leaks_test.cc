// tests/corpus/address_leaks_test.cc: the leak classes of address frees
// (HEAPSIGHT_PAIRING=address, trace format version 6: the preload's leak
// scan takes its blocks from the cells, preload/leak_snapshot.h) against
// table mode's (version 4), on every case of the leak corpus, whose
// numbers memcheck confirmed (corpus_test.cc checks table mode against
// them). Per process, the leak report's definitely/indirectly/possibly
// lost and still reachable blocks and bytes must be the same. A fork
// child's inherited blocks are the one known difference: in address mode
// they carry their usable size (docs/DESIGN.md, "Address frees: the leak
// scan and fork"), so a child's bytes may exceed table mode's by at most
// 15 per inherited block, its blocks still equal.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "analyzer/model/trace_model.h"
#include "analyzer/report/leak_report.h"
#include "gtest/gtest.h"
#include "format/trace_format.h"
#include "tests/support/run_traced.h"

namespace heapsight::analyzer {
namespace {

std::string Program(const std::string& name) {
  return std::string(HEAPSIGHT_CORPUS_BIN) + "/" + name;
}

struct TracedRun {
  std::vector<ProcessProfile> profiles;  // fork children after their parents
  std::string out;
  int exit_code = 0;
};

TracedRun RunOnce(const std::string& program, bool address) {
  TracedRun run;
  std::map<std::string, std::string> env;
  if (address) env["HEAPSIGHT_PAIRING"] = "address";
  testing::RunResult r = testing::RunTraced({program}, testing::MakeTempDir(), env);
  run.out = r.out;
  run.exit_code = r.exit_code;
  for (const std::string& path : r.traces) {
    absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) continue;
    EXPECT_EQ(p->header.version, address ? format::kFormatVersionAddress : format::kFormatVersion);
    run.profiles.push_back(std::move(*p));
  }
  std::stable_sort(run.profiles.begin(), run.profiles.end(),
                   [](const ProcessProfile& a, const ProcessProfile& b) {
                     return (a.header.flags & format::kFileFlagForkChild) <
                            (b.header.flags & format::kFileFlagForkChild);
                   });
  return run;
}

class AddressLeaksTest : public ::testing::TestWithParam<std::string> {};

TEST_P(AddressLeaksTest, SameLeakClassesAsTableMode) {
  const std::string name = GetParam();
  TracedRun table = RunOnce(Program(name), false);
  TracedRun address = RunOnce(Program(name), true);
  EXPECT_EQ(address.exit_code, table.exit_code);
  EXPECT_EQ(address.out, table.out);
  ASSERT_FALSE(table.profiles.empty());
  ASSERT_EQ(address.profiles.size(), table.profiles.size());
  for (size_t i = 0; i < table.profiles.size(); ++i) {
    const ProcessProfile& t = table.profiles[i];
    const ProcessProfile& a = address.profiles[i];
    SCOPED_TRACE(absl::StrCat(name, " process ", i));
    EXPECT_TRUE(a.complete);
    EXPECT_TRUE(a.leak_classes.scanned);
    EXPECT_EQ(a.leak_classes.scanned, t.leak_classes.scanned);
    const bool child = (t.header.flags & format::kFileFlagForkChild) != 0;
    EXPECT_EQ(a.totals.inherited_blocks, t.totals.inherited_blocks);
    LeakReport rt = BuildLeakReport({&t}, Suppressions());
    LeakReport ra = BuildLeakReport({&a}, Suppressions());
    for (LeakClass k : kLeakClassesInOrder) {
      SCOPED_TRACE(static_cast<int>(k));
      EXPECT_EQ(ra.totals.classes[k].blocks, rt.totals.classes[k].blocks);
      if (!child) {
        EXPECT_EQ(ra.totals.classes[k].bytes, rt.totals.classes[k].bytes);
      } else {
        EXPECT_GE(ra.totals.classes[k].bytes, rt.totals.classes[k].bytes);
        EXPECT_LE(ra.totals.classes[k].bytes,
                  rt.totals.classes[k].bytes + 15 * t.totals.inherited_blocks);
      }
    }
    EXPECT_EQ(ra.totals.leaked.blocks, rt.totals.leaked.blocks);
    if (!child) {
      EXPECT_EQ(ra.totals.leaked.bytes, rt.totals.leaked.bytes);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, AddressLeaksTest,
                         ::testing::Values("cxx_new_leak", "direct_leak", "fork_leak",
                                           "indirect_leak", "interior_ptr", "mismatch",
                                           "no_leak_many", "realloc_leak", "still_reachable",
                                           "thread_leak"));

// fork_leak's child in address mode (expect file: 333 bytes in 2 blocks
// definitely lost, g_shared's 64 reachable): its inherited g_shared is
// reachable with its usable size, 72.
TEST(AddressLeaks, ForkChildInheritedBlockHasItsUsableSize) {
  TracedRun address = RunOnce(Program("fork_leak"), true);
  ASSERT_EQ(address.profiles.size(), 2u);
  const ProcessProfile& child = address.profiles[1];
  ASSERT_NE(child.header.flags & format::kFileFlagForkChild, 0u);
  LeakReport r = BuildLeakReport({&child}, Suppressions());
  EXPECT_EQ(r.totals.classes[LeakClass::kDefinite].blocks, 2u);
  EXPECT_EQ(r.totals.classes[LeakClass::kDefinite].bytes, 333u);
  EXPECT_EQ(r.totals.classes[LeakClass::kReachable].blocks, 1u);
  EXPECT_EQ(r.totals.classes[LeakClass::kReachable].bytes, 72u);
  EXPECT_EQ(child.totals.inherited_blocks, 1u);
  EXPECT_EQ(child.totals.inherited_bytes, 72u);
}

}  // namespace
}  // namespace heapsight::analyzer
