// tests/analyzer/model/fork_inheritance_test.cc: a version-6 fork child's
// inherited blocks read from its parent's trace (ReadForkInheritance), and
// the child's analysis with and without that trace. Synthetic traces
// (TestTraceWriter) with the preload's fork sequence: the parent writes
// kFork after fork() returned, the child's trace names the parent's.
#include "analyzer/model/fork_inheritance.h"

#include <unistd.h>

#include <string>
#include <tuple>
#include <vector>

#include "analyzer/model/address_pairing.h"
#include "analyzer/model/trace_model.h"
#include "gtest/gtest.h"
#include "tests/analyzer/test_trace_writer.h"

namespace heapsight::analyzer {
namespace {

using format::Api;
using testing::TestTraceWriter;

constexpr uint64_t kParentPid = 100, kChildPid = 200;
constexpr uint64_t kA = 0x10000, kB = 0x20000, kC = 0x30000, kD = 0x40000, kE = 0x50000;

std::string TempPath(const std::string& name) {
  return ::testing::TempDir() + "/fork_inheritance." + name + "." + std::to_string(getpid()) +
         ".hst";
}

// Writes `w`'s trace to TempPath(name) and returns that path.
std::string Save(TestTraceWriter& w, const std::string& name) {
  std::string path = TempPath(name);
  EXPECT_TRUE(w.WriteFile(path));
  return path;
}

// The parent's opening: its stacks 1 and 2, A (stack 1, malloc, 100
// bytes) and B (stack 2, calloc, 200) allocated at 10 and 11.
void BeginParent(TestTraceWriter& w) {
  w.UseAddressFrees();
  w.Process(0, 1, "/bin/parent", {"parent"});
  w.StackNode(0, 1, 0, 0x401000);
  w.StackNode(0, 2, 0, 0x402000);
  w.AllocAt(0, 10, Api::kMalloc, 100, 1, kA);
  w.AllocAt(0, 11, Api::kCalloc, 200, 2, kB);
}

// A version-6 fork child's opening, as the preload writes it at `at`: its
// header flag and its kProcess record naming the parent's trace.
void BeginForkChild(TestTraceWriter& w, uint64_t at, const std::string& parent) {
  w.UseAddressFrees();
  w.EditHeader([](format::FileHeader& h) { h.flags |= format::kFileFlagForkChild; });
  w.Process(0, at, "/bin/parent", {"parent"}, kParentPid, parent);
}

// The parent: A (stack 1, 100 bytes) and B (stack 2, 200) live at the
// fork at 200000; C freed long before; thread 1 frees B at 199999 (its clock
// read before the fork, its cell cleared after: the child has B); after
// the fork A is freed and D allocated (neither seen by the child).
std::string WriteParent(const std::string& name, uint64_t fork_child_pid = kChildPid) {
  TestTraceWriter w(kParentPid, 1);
  BeginParent(w);
  w.AllocAt(0, 12, Api::kMalloc, 300, 1, kC);
  w.FreeAt(0, 13, kC);
  w.Flush(0);
  w.FreeAt(1, 199999, kB);
  w.Flush(1);
  w.Fork(0, 200000, fork_child_pid);
  w.FreeAt(0, 200001, kA);
  w.AllocAt(0, 200002, Api::kMalloc, 400, 2, kD);
  w.End(0, 300000);
  w.Flush(0);
  return Save(w, name);
}

// The child: A, B and E (never the parent's) inherited with their usable
// sizes and no stack, as the preload writes them; A freed, B and E leaked.
std::string WriteChild(const std::string& name, const std::string& parent) {
  TestTraceWriter w(kChildPid, kParentPid);
  BeginForkChild(w, 200000, parent);
  w.StackNode(0, 1, 0, 0x401000);
  w.StackNode(0, 2, 0, 0x402000);
  w.Inherited(0, 200000, kA, Api::kMalloc, 104, 0);
  w.Inherited(0, 200000, kB, Api::kMalloc, 216, 0);
  w.Inherited(0, 200000, kE, Api::kMalloc, 24, 0);
  w.FreeAt(0, 200100, kA);
  w.End(0, 200200);
  w.Flush(0);
  return Save(w, name);
}

TEST(ForkInheritanceTest, TheParentsBlocksLiveAtTheFork) {
  std::string parent = WriteParent("parent1");
  std::string child = WriteChild("child1", parent);
  ForkInheritance f = ReadForkInheritance(child, kChildPid);
  EXPECT_EQ(f.missing, "");
  EXPECT_EQ(f.parent_path, parent);
  ASSERT_EQ(f.blocks.count(kA), 1u);
  EXPECT_EQ(f.blocks[kA].stack, 1u);
  EXPECT_EQ(f.blocks[kA].size, 100u);
  EXPECT_EQ(f.blocks[kA].api, Api::kMalloc);
  // Freed 1 us before the kFork: within the window, still the child's.
  ASSERT_EQ(f.blocks.count(kB), 1u);
  EXPECT_EQ(f.blocks[kB].stack, 2u);
  EXPECT_EQ(f.blocks[kB].size, 200u);
  EXPECT_EQ(f.blocks[kB].api, Api::kCalloc);
  EXPECT_EQ(f.blocks.count(kC), 0u);  // freed long before the fork
  EXPECT_EQ(f.blocks.count(kD), 0u);  // allocated after it
  EXPECT_EQ(f.blocks.size(), 2u);
}

// The child's analysis: A and B take the parent's stacks, apis and sizes;
// E (not the parent's at the fork) stays as written, and is counted.
TEST(ForkInheritanceTest, ChildAnalysisTakesTheParentsStacksAndSizes) {
  std::string parent = WriteParent("parent2");
  std::string child = WriteChild("child2", parent);
  AddressPairingStats stats;
  AnalyzeOptions options;
  options.address_pairing = &stats;
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(child, options);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(stats.inherited_from_parent, 2u);
  EXPECT_EQ(stats.inherited_unresolved, 1u);
  uint64_t seen = 0;
  for (const Site& s : p->sites) {
    if (s.stats.inherited_count == 0) continue;
    ++seen;
    if (s.stack == 1) {
      EXPECT_EQ(s.api, Api::kMalloc);
      EXPECT_EQ(s.stats.inherited_bytes, 100u);
      EXPECT_EQ(s.stats.leaked_bytes, 0u);
    } else if (s.stack == 2) {
      EXPECT_EQ(s.api, Api::kCalloc);
      EXPECT_EQ(s.stats.inherited_bytes, 200u);
      EXPECT_EQ(s.stats.leaked_bytes, 200u);
    } else {
      EXPECT_EQ(s.stack, 0u);
      EXPECT_EQ(s.stats.inherited_bytes, 24u);
    }
  }
  EXPECT_EQ(seen, 3u);
  EXPECT_EQ(p->totals.leaked_bytes, 224u);
  int said = 0;
  for (const std::string& w : p->warnings) {
    if (w == "1 blocks inherited at the fork show no allocation stack, and the size the "
             "child recorded (the usable size in traces written before 2026-12-08 and for "
             "mmap'ed blocks): they were not live at the fork in the parent's trace " +
                 parent) {
      ++said;
    }
  }
  EXPECT_EQ(said, 1);
}

// No parent trace: the records as written, and a warning with the count.
TEST(ForkInheritanceTest, MissingParentKeepsTheRecordsAndSaysSo) {
  std::string gone = TempPath("gone");
  std::string child = WriteChild("child3", gone);
  ForkInheritance f = ReadForkInheritance(child, kChildPid);
  EXPECT_EQ(f.parent_path, "");
  EXPECT_EQ(f.missing, "the parent's trace " + gone + " was not found");
  EXPECT_TRUE(f.blocks.empty());
  AddressPairingStats stats;
  AnalyzeOptions options;
  options.address_pairing = &stats;
  absl::StatusOr<ProcessProfile> p = AnalyzeTrace(child, options);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(stats.inherited_from_parent, 0u);
  EXPECT_EQ(stats.inherited_unresolved, 3u);
  EXPECT_EQ(p->totals.leaked_bytes, 216u + 24u);
  int said = 0;
  for (const std::string& w : p->warnings) {
    if (w == "3 blocks inherited at the fork show no allocation stack, and the size the "
             "child recorded (the usable size in traces written before 2026-12-08 and for "
             "mmap'ed blocks): the parent's trace " + gone + " was not found") {
      ++said;
    }
  }
  EXPECT_EQ(said, 1);
}

// A parent trace of another child's fork (no kFork of this pid) gives
// nothing, and says so.
TEST(ForkInheritanceTest, ParentWithoutThisForkGivesNothing) {
  std::string parent = WriteParent("parent4", /*fork_child_pid=*/999);
  std::string child = WriteChild("child4", parent);
  ForkInheritance f = ReadForkInheritance(child, kChildPid);
  EXPECT_EQ(f.parent_path, parent);
  EXPECT_EQ(f.missing, parent + ": no fork of pid 200 in this trace");
  EXPECT_TRUE(f.blocks.empty());
}

// A moved recording: the parent's trace is found by its file name in the
// child's directory when the recorded path is gone.
TEST(ForkInheritanceTest, FindsAMovedParentByName) {
  std::string parent = WriteParent("parent5");
  std::string recorded = "/nonexistent/dir/" + parent.substr(parent.rfind('/') + 1);
  std::string child = WriteChild("child5", recorded);
  std::string why;
  EXPECT_EQ(FindForkParentTrace(child, &why), ::testing::TempDir() + "/" +
                                                  parent.substr(parent.rfind('/') + 1));
  ForkInheritance f = ReadForkInheritance(child, kChildPid);
  EXPECT_EQ(f.missing, "");
  EXPECT_EQ(f.blocks.size(), 2u);
}

// A parent that forks two children: 200 at 200000 (A and B live), 201 at
// 400000 (B and D live; A was freed before, and is the child's only if the
// child lists it: the pass keeps freed blocks until a later free moves the
// window past them).
std::string WriteTwoForkParent(const std::string& name) {
  TestTraceWriter w(kParentPid, 1);
  BeginParent(w);
  w.Fork(0, 200000, 200);
  w.FreeAt(0, 200001, kA);
  w.AllocAt(0, 200002, Api::kMalloc, 400, 2, kD);
  w.Fork(0, 400000, 201);
  w.End(0, 500000);
  w.Flush(0);
  return Save(w, name);
}

// A child of `parent` with pid `pid`, forked at `at`, inheriting `addresses`.
std::string WriteForkChild(const std::string& name, const std::string& parent, uint64_t pid,
                           uint64_t at, const std::vector<uint64_t>& addresses) {
  TestTraceWriter w(pid, kParentPid);
  BeginForkChild(w, at, parent);
  for (uint64_t a : addresses) w.Inherited(0, at, a, Api::kMalloc, 104, 0);
  w.End(0, at + 100);
  w.Flush(0);
  return Save(w, name);
}

// ForkInheritanceSource: one pass over the parent for both children, and
// each child gets what ReadForkInheritance gives it alone.
TEST(ForkInheritanceSourceTest, OnePassOverTheParentForAllItsChildren) {
  std::string parent = WriteTwoForkParent("src_parent");
  std::string first = WriteForkChild("src_first", parent, 200, 200000, {kA, kB});
  std::string second = WriteForkChild("src_second", parent, 201, 400000, {kB, kD});
  ForkInheritanceSource source({parent, first, second});
  ForkInheritance f1 = source.Take(first, 200);
  ForkInheritance f2 = source.Take(second, 201);
  EXPECT_EQ(source.parent_passes(), 1u);
  EXPECT_EQ(source.shared_takes(), 2u);
  EXPECT_EQ(f1.missing, "");
  EXPECT_EQ(f1.parent_path, parent);
  ASSERT_EQ(f1.blocks.size(), 2u);
  EXPECT_EQ(f1.blocks[kA].size, 100u);
  EXPECT_EQ(f1.blocks[kB].stack, 2u);
  ASSERT_EQ(f2.blocks.count(kB), 1u);
  ASSERT_EQ(f2.blocks.count(kD), 1u);
  EXPECT_EQ(f2.blocks[kB].size, 200u);
  EXPECT_EQ(f2.blocks[kD].size, 400u);
  EXPECT_EQ(f2.blocks[kD].stack, 2u);
  for (const auto& [path, pid, got] :
       {std::tuple{first, uint64_t{200}, &f1}, std::tuple{second, uint64_t{201}, &f2}}) {
    ForkInheritance alone = ReadForkInheritance(path, pid);
    ASSERT_EQ(alone.blocks.size(), got->blocks.size()) << path;
    for (const auto& [address, b] : alone.blocks) {
      ASSERT_EQ(got->blocks.count(address), 1u) << path;
      EXPECT_EQ(got->blocks.at(address).stack, b.stack);
      EXPECT_EQ(got->blocks.at(address).size, b.size);
      EXPECT_EQ(got->blocks.at(address).api, b.api);
    }
  }
  // A second Take of the same child (a trace analyzed twice) reads its
  // parent itself: the kept map was given away.
  EXPECT_EQ(source.Take(first, 200).blocks.size(), 2u);
  EXPECT_EQ(source.shared_takes(), 2u);
}

// A child not among the traces given, and two children of one parent with
// the same pid (which map is whose would depend on the order of the
// analyses): each reads its parent itself, as without the source.
TEST(ForkInheritanceSourceTest, UnlistedChildrenAndReusedPidsReadTheirParent) {
  std::string parent = WriteTwoForkParent("src_parent2");
  std::string listed = WriteForkChild("src_listed", parent, 201, 400000, {kB, kD});
  std::string unlisted = WriteForkChild("src_unlisted", parent, 200, 200000, {kA, kB});
  ForkInheritanceSource source({parent, listed});
  EXPECT_EQ(source.Take(unlisted, 200).blocks.size(), 2u);
  EXPECT_EQ(source.Take(listed, 201).blocks.size(), ReadForkInheritance(listed, 201).blocks.size());
  EXPECT_EQ(source.shared_takes(), 1u);

  std::string twin1 = WriteForkChild("src_twin1", parent, 200, 200000, {kA, kB});
  std::string twin2 = WriteForkChild("src_twin2", parent, 200, 200000, {kA, kB});
  ForkInheritanceSource twins({parent, twin1, twin2});
  EXPECT_EQ(twins.Take(twin1, 200).blocks.size(), 2u);
  EXPECT_EQ(twins.Take(twin2, 200).blocks.size(), 2u);
  EXPECT_EQ(twins.parent_passes(), 0u);
  EXPECT_EQ(twins.shared_takes(), 0u);
}

// The analysis with a source is the analysis without one.
TEST(ForkInheritanceSourceTest, AnalysisIsTheSameWithTheSource) {
  std::string parent = WriteTwoForkParent("src_parent3");
  std::string first = WriteForkChild("src_first3", parent, 200, 200000, {kA, kB});
  std::string second = WriteForkChild("src_second3", parent, 201, 400000, {kB, kD});
  ForkInheritanceSource source({parent, first, second});
  for (const std::string& path : {first, second}) {
    AddressPairingStats alone_stats, shared_stats;
    AnalyzeOptions alone, shared;
    alone.address_pairing = &alone_stats;
    shared.address_pairing = &shared_stats;
    shared.fork_inheritances = &source;
    absl::StatusOr<ProcessProfile> a = AnalyzeTrace(path, alone);
    absl::StatusOr<ProcessProfile> b = AnalyzeTrace(path, shared);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(shared_stats.inherited_from_parent, 2u);
    EXPECT_EQ(alone_stats.inherited_from_parent, shared_stats.inherited_from_parent);
    EXPECT_EQ(alone_stats.inherited_unresolved, shared_stats.inherited_unresolved);
    EXPECT_EQ(a->totals.leaked_bytes, b->totals.leaked_bytes);
    EXPECT_EQ(a->totals.leaked_bytes, path == first ? 300u : 600u);
  }
  EXPECT_EQ(source.shared_takes(), 2u);
}

}  // namespace
}  // namespace heapsight::analyzer
