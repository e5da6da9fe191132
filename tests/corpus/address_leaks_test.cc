// tests/corpus/address_leaks_test.cc: the leak classes of address frees
// (HEAPSIGHT_PAIRING=address, trace format version 6: the preload's leak
// scan takes its blocks from the cells, preload/leak_snapshot.h) against
// table mode's (version 4), on every case of the leak corpus, whose
// numbers memcheck confirmed (corpus_test.cc checks table mode against
// them). Per process, the leak report's definitely/indirectly/possibly
// lost and still reachable blocks and bytes must be the same, a fork
// child's too: its inherited blocks, recorded with their size (the size
// asked for, from the usable size and the cell's low bits) and no stack in
// address mode, take the stack of the parent's block from the parent's
// trace (docs/DESIGN.md, fork23). Without that trace they keep no stack.
#include <unistd.h>

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

// `drop_parents`: the parents' traces are removed before the children
// are analyzed (a child's own trace alone).
TracedRun RunOnce(const std::string& program, bool address, bool drop_parents = false) {
  TracedRun run;
  std::map<std::string, std::string> env;
  if (address) env["HEAPSIGHT_PAIRING"] = "address";
  testing::RunResult r = testing::RunTraced({program}, testing::MakeTempDir(), env);
  run.out = r.out;
  run.exit_code = r.exit_code;
  if (drop_parents) {
    std::vector<std::string> children;
    for (const std::string& path : r.traces) {
      if ((testing::ReadTrace(path).header.flags & format::kFileFlagForkChild) != 0) {
        children.push_back(path);
      } else {
        EXPECT_EQ(unlink(path.c_str()), 0);
      }
    }
    r.traces = children;
  }
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
    EXPECT_EQ(a.totals.inherited_blocks, t.totals.inherited_blocks);
    EXPECT_EQ(a.totals.inherited_bytes, t.totals.inherited_bytes);
    LeakReport rt = BuildLeakReport({&t}, Suppressions());
    LeakReport ra = BuildLeakReport({&a}, Suppressions());
    for (LeakClass k : kLeakClassesInOrder) {
      SCOPED_TRACE(static_cast<int>(k));
      EXPECT_EQ(ra.totals.classes[k].blocks, rt.totals.classes[k].blocks);
      EXPECT_EQ(ra.totals.classes[k].bytes, rt.totals.classes[k].bytes);
    }
    EXPECT_EQ(ra.totals.leaked.blocks, rt.totals.leaked.blocks);
    EXPECT_EQ(ra.totals.leaked.bytes, rt.totals.leaked.bytes);
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, AddressLeaksTest,
                         ::testing::Values("cxx_new_leak", "direct_leak", "fork_leak",
                                           "indirect_leak", "interior_ptr", "mismatch",
                                           "no_leak_many", "realloc_leak", "still_reachable",
                                           "thread_leak"));

// fork_leak's child in address mode (expect file: 333 bytes in 2 blocks
// definitely lost, g_shared's 64 reachable): its inherited g_shared has
// the size asked for, 64, from the parent's trace; without that trace the
// size the child recorded, 64 as well (usable 72: the cell's low bits give
// 64 back), and a warning for its missing stack.
TEST(AddressLeaks, ForkChildInheritedBlockTakesItsSizeFromTheParentTrace) {
  for (bool drop_parent : {false, true}) {
    SCOPED_TRACE(drop_parent ? "without the parent's trace" : "with the parent's trace");
    TracedRun address = RunOnce(Program("fork_leak"), true, drop_parent);
    ASSERT_EQ(address.profiles.size(), drop_parent ? 1u : 2u);
    const ProcessProfile& child = address.profiles.back();
    ASSERT_NE(child.header.flags & format::kFileFlagForkChild, 0u);
    const uint64_t size = 64;
    LeakReport r = BuildLeakReport({&child}, Suppressions());
    EXPECT_EQ(r.totals.classes[LeakClass::kDefinite].blocks, 2u);
    EXPECT_EQ(r.totals.classes[LeakClass::kDefinite].bytes, 333u);
    EXPECT_EQ(r.totals.classes[LeakClass::kReachable].blocks, 1u);
    EXPECT_EQ(r.totals.classes[LeakClass::kReachable].bytes, size);
    EXPECT_EQ(child.totals.inherited_blocks, 1u);
    EXPECT_EQ(child.totals.inherited_bytes, size);
    int warned = 0;
    for (const std::string& w : child.warnings) {
      warned += w.rfind("1 blocks inherited at the fork show no allocation stack", 0) == 0;
    }
    EXPECT_EQ(warned, drop_parent ? 1 : 0);
  }
}

}  // namespace
}  // namespace heapsight::analyzer
