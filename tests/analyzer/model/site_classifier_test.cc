// tests/analyzer/model/site_classifier_test.cc: SiteClassifier, the
// classification remembered per stack node, answers what the walk of the
// whole stack and ClassifySite answer (kind and provisional flag), on random
// tries over a program, ld.so, libc, libstdc++, heapsight's preload and
// addresses in no module, with cut markers at roots, nodes not read yet,
// and modules added midway (Reset).
#include "analyzer/model/site_classifier.h"

#include <random>
#include <vector>

#include "analyzer/symbols/symbolizer.h"
#include "tests/analyzer/fake_module.h"
#include "format/trace_format.h"
#include "gtest/gtest.h"

namespace heapsight::analyzer {
namespace {

using testing::FakeModule;

std::vector<Module> Modules(bool with_late) {
  std::vector<Module> m = {FakeModule(1, "/nonexistent/prog", 0x100000),
                           FakeModule(2, "/nonexistent/ld-linux-x86-64.so.2", 0x200000),
                           FakeModule(3, "/nonexistent/libc.so.6", 0x300000),
                           FakeModule(4, "/nonexistent/libstdc++.so.6", 0x400000),
                           FakeModule(5, "/nonexistent/libheapsight.so", 0x500000)};
  if (with_late) m.push_back(FakeModule(6, "/nonexistent/libplugin.so", 0x600000));
  return m;
}

uint64_t RandomIp(std::mt19937_64& rng) {
  // Mostly runtime libraries, so that rule 4 and the dropped frames happen.
  static const uint64_t kBases[] = {0x100000, 0x200000, 0x300000, 0x300000, 0x400000,
                                    0x500000, 0x500000, 0x600000, 0x900000};
  return kBases[rng() % 9] + 0x100 + rng() % 0x1000;
}

TEST(SiteClassifierTest, MatchesTheWholeStackWalkOnRandomTries) {
  std::mt19937_64 rng(16);
  int runtime = 0, provisional = 0, checked = 0;
  for (int round = 0; round < 20; ++round) {
    StackTrie nodes;
    std::vector<uint64_t> ids;
    uint64_t next = 1;
    // Roots: plain, self-parented, or a cut marker.
    for (int r = 0; r < 3; ++r) {
      uint64_t id = next++;
      uint64_t ip = r == 2 ? format::kStackCutMarker + 7 : RandomIp(rng);
      nodes.Define(id, r == 1 ? id : 0, ip);
      ids.push_back(id);
    }
    SiteClassifier classifier;
    // Told of every node as it is defined (SiteClassifier::Defined), as the
    // analysis does, under the symbolizer of the moment; the modules
    // change at step 1500, and the nodes defined then wait for a
    // Classify's walk (the analysis resets its classifier at the next
    // site).
    SiteClassifier eager;
    Symbolizer early(Modules(false));
    Symbolizer late(Modules(true));
    for (int step = 0; step < 3000; ++step) {
      Symbolizer& symbolizer = step < 1500 ? early : late;
      auto define = [&](uint64_t id, uint64_t parent, uint64_t ip) {
        if (nodes.Define(id, parent, ip) && step != 1500) eager.Defined(id, parent, ip, symbolizer);
      };
      // Grow the trie: a child of a random node (deep chains now and then,
      // in some rounds one past kMaxDepth), now and then a node defined
      // again (the first definition holds).
      uint64_t parent = ids[rng() % ids.size()];
      int len = round % 5 == 0 && step == 700 ? 4100 : rng() % 10 == 0 ? 40 : 1;
      for (int k = 0; k < len; ++k) {
        uint64_t id = next++;
        define(id, parent, RandomIp(rng));
        ids.push_back(id);
        parent = id;
      }
      if (rng() % 20 == 0) define(ids[rng() % ids.size()], ids[rng() % ids.size()], RandomIp(rng));
      // A node whose parent is not read yet.
      if (rng() % 50 == 0) {
        uint64_t id = next++;
        define(id, 1000000 + next, RandomIp(rng));
        ids.push_back(id);
      }
      if (step == 1500) {
        classifier.Reset();
        eager.Reset();
      }
      uint64_t leaf = rng() % 20 == 0 ? 999999999 : ids[rng() % ids.size()];
      bool want_provisional = false, got_provisional = false, eager_provisional = false;
      SiteKind want =
          SiteClassifier::ClassifyWalking(leaf, nodes, symbolizer, &want_provisional);
      SiteKind got = classifier.Classify(leaf, nodes, symbolizer, &got_provisional);
      ASSERT_EQ(got, want) << "round " << round << " step " << step << " leaf " << leaf;
      ASSERT_EQ(got_provisional, want_provisional) << "round " << round << " leaf " << leaf;
      SiteKind eager_got = eager.Classify(leaf, nodes, symbolizer, &eager_provisional);
      ASSERT_EQ(eager_got, want) << "round " << round << " step " << step << " leaf " << leaf;
      ASSERT_EQ(eager_provisional, want_provisional) << "round " << round << " leaf " << leaf;
      runtime += want == SiteKind::kRuntime;
      provisional += want_provisional;
      ++checked;
    }
  }
  // Both kinds and both flags happened.
  EXPECT_GT(runtime, 100);
  EXPECT_LT(runtime, checked - 100);
  EXPECT_GT(provisional, 100);
  EXPECT_LT(provisional, checked - 100);
}

TEST(SiteClassifierTest, RemembersEveryNodeClassifiedThroughAndForgetsOnReset) {
  Symbolizer symbolizer(Modules(false));
  StackTrie nodes;
  // A chain of 20 program frames under libc <- heapsight (dropped): the
  // program's.
  nodes.Define(1, 0, 0x100200);
  for (uint64_t n = 2; n <= 20; ++n) nodes.Define(n, n - 1, 0x100200 + n);
  nodes.Define(21, 20, 0x300200);
  nodes.Define(22, 21, 0x500200);
  // ld.so <- libc : every frame a runtime library (rule 4).
  nodes.Define(30, 0, 0x300300);
  nodes.Define(31, 30, 0x200300);
  // A node id past the array (a corrupt or hand-made trace) under node 20.
  const uint64_t huge = SiteClassifier::kDenseLimit + 5;
  nodes.Define(huge, 20, 0x300400);
  SiteClassifier c;
  bool provisional = false;
  EXPECT_EQ(c.Classify(22, nodes, symbolizer, &provisional), SiteKind::kProgram);
  EXPECT_EQ(c.remembered_nodes(), 22u);  // every node from 22 to the root
  // The top-frame tests of heapsight's frame (dropped) and libc's (kept).
  EXPECT_EQ(c.remembered_top_frames(), 2u);
  EXPECT_EQ(c.Classify(21, nodes, symbolizer, &provisional), SiteKind::kProgram);
  EXPECT_EQ(c.remembered_nodes(), 22u);
  EXPECT_EQ(c.remembered_top_frames(), 2u);  // libc's frame again: remembered
  EXPECT_EQ(c.Classify(31, nodes, symbolizer, &provisional), SiteKind::kRuntime);
  EXPECT_EQ(c.remembered_nodes(), 24u);
  EXPECT_EQ(c.remembered_top_frames(), 2u);  // rule 4: no top frame looked at
  EXPECT_EQ(c.Classify(huge, nodes, symbolizer, &provisional), SiteKind::kProgram);
  EXPECT_EQ(c.remembered_nodes(), 25u);
  EXPECT_FALSE(provisional);
  // A stack whose parent is not read yet is not remembered.
  nodes.Define(40, 77, 0x100400);
  EXPECT_EQ(c.Classify(40, nodes, symbolizer, &provisional), SiteKind::kProgram);
  EXPECT_TRUE(provisional);
  EXPECT_EQ(c.remembered_nodes(), 25u);
  c.Reset();
  EXPECT_EQ(c.remembered_nodes(), 0u);
  EXPECT_EQ(c.remembered_top_frames(), 0u);
  // After the reset the facts are derived again, the same.
  provisional = false;
  EXPECT_EQ(c.Classify(22, nodes, symbolizer, &provisional), SiteKind::kProgram);
  EXPECT_EQ(c.Classify(31, nodes, symbolizer, &provisional), SiteKind::kRuntime);
  EXPECT_EQ(c.remembered_nodes(), 24u);
  EXPECT_FALSE(provisional);
}

TEST(SiteClassifierTest, DefinedRemembersANodeUnderARememberedParentOnly) {
  Symbolizer symbolizer(Modules(false));
  StackTrie nodes;
  SiteClassifier c;
  // A root and its child, told as defined: both remembered, so classifying
  // the child walks nothing.
  nodes.Define(1, 0, 0x100200);
  c.Defined(1, 0, 0x100200, symbolizer);
  nodes.Define(2, 1, 0x300200);  // libc <- program
  c.Defined(2, 1, 0x300200, symbolizer);
  EXPECT_EQ(c.remembered_nodes(), 2u);
  bool provisional = false;
  EXPECT_EQ(c.Classify(2, nodes, symbolizer, &provisional), SiteKind::kProgram);
  EXPECT_EQ(c.remembered_nodes(), 2u);
  EXPECT_FALSE(provisional);
  // A self-parented root; a cut marker root (no frame): its child alone
  // in libc is rule 4's.
  nodes.Define(3, 3, 0x200300);
  c.Defined(3, 3, 0x200300, symbolizer);
  const uint64_t cut = format::kStackCutMarker + 3;
  nodes.Define(4, 0, cut);
  c.Defined(4, 0, cut, symbolizer);
  nodes.Define(5, 4, 0x300300);
  c.Defined(5, 4, 0x300300, symbolizer);
  EXPECT_EQ(c.remembered_nodes(), 5u);
  EXPECT_EQ(c.Classify(5, nodes, symbolizer, &provisional), SiteKind::kRuntime);
  // A parent not remembered (not defined, or defined before a Reset):
  // nothing remembered; the node's first Classify walks.
  c.Defined(6, 99, 0x100300, symbolizer);
  EXPECT_EQ(c.remembered_nodes(), 5u);
  c.Reset();
  nodes.Define(7, 2, 0x100400);
  c.Defined(7, 2, 0x100400, symbolizer);
  EXPECT_EQ(c.remembered_nodes(), 0u);
  EXPECT_EQ(c.Classify(7, nodes, symbolizer, &provisional), SiteKind::kProgram);
  EXPECT_EQ(c.remembered_nodes(), 3u);  // 7, 2 and 1
}

}  // namespace
}  // namespace heapsight::analyzer
