// tests/scenarios/early_allocations_test.cc: issue 14 fault 3. Allocations
// made before heapsight's constructor runs (in the constructors of
// libraries the loader initializes first) are recorded, with their stacks,
// and classified at exit as memcheck classifies them.
//
// early_ctor_program links early_ctor_lib, whose constructor allocates.
// Expected classes checked against memcheck 3.19 (valgrind --leak-check=full
// --show-leak-kinds=all --run-libc-freeres=no --run-cxx-freeres=no):
// definitely lost 4002 (1 block), indirectly lost 4003 (1), still reachable
// 20,115 bytes in 5 blocks (4001, 4005, 4006, 4007 and stdout's 4096-byte
// buffer). ls: libselinux's constructor makes 3 allocations (1,616 bytes)
// before ours runs; its leak summary is compared with memcheck's live.
#include <gtest/gtest.h>
#include <stdio.h>

#include <map>
#include <sstream>
#include <unordered_map>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

using format::LeakClass;
using format::RecordTag;

std::string Capture(const std::string& command) {
  std::string out;
  FILE* p = popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

const format::Record* LeakScan(const TraceContents& t) {
  const format::Record* scan = nullptr;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kLeakScan) scan = &r;
  }
  return scan;
}

// {bytes, blocks} of one class in a kLeakScan record.
std::pair<uint64_t, uint64_t> Summary(const format::Record& scan, LeakClass c) {
  size_t i = static_cast<size_t>(c) - 1;
  return {scan.leak_scan.class_bytes[i], scan.leak_scan.class_blocks[i]};
}

TEST(EarlyAllocations, LibraryConstructorAllocationsAreRecordedAndClassified) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("early_ctor_program")}, dir);
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.out, "early done\n");
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  ASSERT_TRUE(t.complete);

  // Every allocation of the constructor is in the trace (4004 freed).
  MagicCounts c = CountMagic(t, 4001, 4008);
  EXPECT_EQ(c.by_size, (std::map<uint64_t, int>{
                           {4001, 1}, {4002, 1}, {4003, 1}, {4004, 1}, {4005, 1}, {4006, 1},
                           {4007, 1}}));
  EXPECT_EQ(c.frees.size(), 1u);  // 4004's free

  // Classes by size, as memcheck has them.
  std::unordered_map<uint64_t, uint64_t> size_of;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kAlloc || r.tag == RecordTag::kRealloc) size_of[r.id] = r.size;
  }
  std::map<uint64_t, LeakClass> classes;
  for (const auto& r : t.records) {
    if (r.tag != RecordTag::kBlockClasses) continue;
    for (uint64_t id : r.block_classes.ids) {
      if (size_of[id] >= 4001 && size_of[id] <= 4007) classes[size_of[id]] = r.block_classes.leak_class;
    }
  }
  EXPECT_EQ(classes, (std::map<uint64_t, LeakClass>{{4001, LeakClass::kReachable},
                                                    {4002, LeakClass::kDefinite},
                                                    {4003, LeakClass::kIndirect},
                                                    {4005, LeakClass::kReachable},
                                                    {4006, LeakClass::kReachable},
                                                    {4007, LeakClass::kReachable}}));
  const format::Record* scan = LeakScan(t);
  ASSERT_NE(scan, nullptr);
  EXPECT_EQ(Summary(*scan, LeakClass::kDefinite), std::make_pair(uint64_t{4002}, uint64_t{1}));
  EXPECT_EQ(Summary(*scan, LeakClass::kIndirect), std::make_pair(uint64_t{4003}, uint64_t{1}));
  EXPECT_EQ(Summary(*scan, LeakClass::kPossible), std::make_pair(uint64_t{0}, uint64_t{0}));
  EXPECT_EQ(Summary(*scan, LeakClass::kReachable), std::make_pair(uint64_t{20115}, uint64_t{5}));

  // The stacks name the constructor (and the loader that called it).
  std::string leaks = Capture("'" + BuildPath("cli/heapsight") + "' leaks '" + run.traces[0] + "'");
  size_t direct = leaks.find("Direct leak of 4002 byte(s)");
  ASSERT_NE(direct, std::string::npos) << leaks;
  size_t next = leaks.find("\n\n", direct);
  std::string block = leaks.substr(direct, next - direct);
  EXPECT_NE(block.find("in MakeLostPair"), std::string::npos) << block;
  EXPECT_NE(block.find("in EarlyLibConstructor"), std::string::npos) << block;
  EXPECT_NE(block.find("in _dl_init"), std::string::npos) << block;
}

// HEAPSIGHT_HEAP_LIMIT counts from the same first allocation as the trace:
// with 16 KiB, the constructor's blocks (4001, 4005, 4006 usable sizes)
// leave no room for 4003 (its failure is the constructor's), nor for main's
// 4007 and stdout's buffer.
TEST(EarlyAllocations, HeapLimitCountsFromTheFirstAllocation) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("early_ctor_program")}, dir,
                            {{"HEAPSIGHT_HEAP_LIMIT", "16K"}});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  TraceContents t = ReadTrace(run.traces[0]);
  ASSERT_EQ(t.error, "");
  std::vector<uint64_t> failed;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kAllocFailed) failed.push_back(r.size);
  }
  EXPECT_EQ(failed, (std::vector<uint64_t>{4003, 4007, 4096}));
}

// "  still reachable: 33,817 bytes in 168 blocks" -> {33817, 168}.
std::pair<uint64_t, uint64_t> MemcheckLine(const std::string& text, const std::string& label) {
  size_t at = text.find(label + ":");
  if (at == std::string::npos) return {~0ull, ~0ull};
  std::string rest = text.substr(at + label.size() + 1, 80);
  std::string digits;
  std::vector<uint64_t> numbers;
  for (char ch : rest) {
    if (ch >= '0' && ch <= '9') {
      digits += ch;
    } else if (ch == ',' && !digits.empty()) {
      continue;
    } else if (!digits.empty()) {
      numbers.push_back(std::stoull(digits));
      digits.clear();
    }
    if (ch == '\n') break;
  }
  if (numbers.size() < 2) return {~0ull, ~0ull};
  return {numbers[0], numbers[1]};
}

TEST(EarlyAllocations, LsSelinuxConstructorIsRecordedAndLsMatchesMemcheck) {
  std::string dir = MakeTempDir();
  std::string listed = SourcePath("preload");
  RunResult run = RunTraced({"/usr/bin/ls", listed}, dir, {{"LC_ALL", "C"}});
  ASSERT_EQ(run.exit_code, 0) << run.err;
  ASSERT_EQ(run.traces.size(), 1u);
  // libselinux's constructor (no symbol for it: the library is stripped)
  // allocates 3 blocks, 1,616 bytes, through fopen and getdelim.
  std::string heapsight = "'" + BuildPath("cli/heapsight") + "' ";
  std::string folded = Capture(heapsight + "collapse --include-runtime --metric=alloc_count '" +
                               run.traces[0] + "'");
  std::string folded_bytes = Capture(heapsight + "collapse --include-runtime --metric=alloc_bytes '" +
                                     run.traces[0] + "'");
  auto sum_selinux = [](const std::string& text) {
    uint64_t sum = 0;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.find("libselinux.so.1") == std::string::npos) continue;
      if (line.find("_dl_init") == std::string::npos) continue;
      sum += std::stoull(line.substr(line.rfind(' ') + 1));
    }
    return sum;
  };
  EXPECT_EQ(sum_selinux(folded), 3u) << folded;
  EXPECT_EQ(sum_selinux(folded_bytes), 1616u) << folded_bytes;

  // The leak summary equals memcheck's (when valgrind is installed).
  if (Capture("command -v valgrind").empty()) GTEST_SKIP() << "valgrind not installed";
  std::string memcheck = Capture(
      "LC_ALL=C valgrind --leak-check=full --show-leak-kinds=all --run-libc-freeres=no "
      "--run-cxx-freeres=no /usr/bin/ls '" + listed + "' 2>&1 >/dev/null");
  TraceContents t = ReadTrace(run.traces[0]);
  const format::Record* scan = LeakScan(t);
  ASSERT_NE(scan, nullptr);
  EXPECT_EQ(MemcheckLine(memcheck, "definitely lost"), Summary(*scan, LeakClass::kDefinite))
      << memcheck;
  EXPECT_EQ(MemcheckLine(memcheck, "indirectly lost"), Summary(*scan, LeakClass::kIndirect))
      << memcheck;
  EXPECT_EQ(MemcheckLine(memcheck, "possibly lost"), Summary(*scan, LeakClass::kPossible))
      << memcheck;
  EXPECT_EQ(MemcheckLine(memcheck, "still reachable"), Summary(*scan, LeakClass::kReachable))
      << memcheck;
}

}  // namespace
}  // namespace heapsight::testing
