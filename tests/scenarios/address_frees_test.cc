// tests/scenarios/address_frees_test.cc: the preload's side of address
// frees (HEAPSIGHT_PAIRING=address, trace format version 6): the records a
// real program's events get (addresses, order values, bad and mismatched
// frees decided from the cells), and the table mode kept where address
// frees do not apply. The analyzer's pairing of such traces is tested with
// the analyzer (tests/analyzer, tests/corpus).
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

using format::Api;
using format::ApiFamily;
using format::FamilyOf;
using format::FreeError;
using format::kAddressOrderNone;
using format::RecordTag;

const std::map<std::string, std::string> kAddress = {{"HEAPSIGHT_PAIRING", "address"}};

// name=0x... pairs the program printed.
std::map<std::string, uint64_t> Addresses(const std::string& out) {
  std::map<std::string, uint64_t> m;
  size_t pos = 0;
  while ((pos = out.find('=', pos)) != std::string::npos) {
    size_t start = out.find_last_of(" \n", pos);
    start = start == std::string::npos ? 0 : start + 1;
    std::string name = out.substr(start, pos - start);
    m[name] = std::strtoull(out.c_str() + pos + 1, nullptr, 16);  // "(nil)" reads as 0
    ++pos;
  }
  return m;
}

TraceContents RunOne(const std::string& mode, const std::map<std::string, std::string>& env,
                     RunResult* run) {
  std::string dir = MakeTempDir();
  *run = RunTraced({ScenarioProgram("address_frees_program"), mode}, dir, env);
  EXPECT_EQ(run->traces.size(), 1u) << mode;
  if (run->traces.empty()) return {};
  TraceContents t = ReadTrace(run->traces[0]);
  EXPECT_EQ(t.error, "");
  EXPECT_TRUE(t.complete);
  return t;
}

bool Magic(uint64_t size) { return size >= 7000 && size < 7300; }

TEST(AddressFrees, OneThreadsRecordsCarryAddressesAndNoOrder) {
  RunResult run;
  TraceContents t = RunOne("basic", kAddress, &run);
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.err, "");
  EXPECT_EQ(t.header.version, 6u);
  EXPECT_NE(t.header.flags & format::kFileFlagAddressFrees, 0u);
  std::map<std::string, uint64_t> a = Addresses(run.out);
  ASSERT_EQ(a.size(), 11u) << run.out;
  ASSERT_EQ(a["huge"], 0u);
  ASSERT_EQ(a["z2"], 0u);
  // What the trace says happened at each printed address, in file order
  // (one thread: file order is event order).
  std::map<uint64_t, std::vector<std::string>> at;
  int mismatches = 0;
  int failed = 0;
  for (const auto& r : t.records) {
    switch (r.tag) {
      case RecordTag::kAlloc:
        if (Magic(r.size)) {
          at[r.address].push_back("alloc " + std::to_string(r.size));
          EXPECT_EQ(r.order, kAddressOrderNone) << r.size;
        }
        break;
      case RecordTag::kRealloc:
        at[r.old_address].push_back("realloc-from");
        at[r.address].push_back("realloc-to " + std::to_string(r.size));
        EXPECT_EQ(r.order, kAddressOrderNone);
        EXPECT_EQ(r.old_order, kAddressOrderNone);
        break;
      case RecordTag::kFree:
        at[r.address].push_back(std::string("free ") +
                                (r.api == Api::kRealloc ? "by realloc"
                                 : FamilyOf(r.api) == ApiFamily::kMalloc ? "by free"
                                 : FamilyOf(r.api) == ApiFamily::kNew    ? "by delete"
                                                                         : "by delete[]"));
        EXPECT_EQ(r.order, kAddressOrderNone);
        EXPECT_EQ(r.id, 0u);
        break;
      case RecordTag::kFreeError:
        EXPECT_EQ(r.free_error.error, FreeError::kMismatchedFree);
        EXPECT_EQ(r.address, a["m"]);
        EXPECT_EQ(r.id, 0u);  // the cells know no ids
        ++mismatches;
        break;
      case RecordTag::kAllocFailed:
        if (r.size >= SIZE_MAX / 4) ++failed;
        break;
      default:
        break;
    }
  }
  EXPECT_EQ(mismatches, 1);
  EXPECT_EQ(failed, 1);
  using V = std::vector<std::string>;
  EXPECT_EQ(at[a["a"]], V({"alloc 7001"}));  // never freed
  EXPECT_EQ(at[a["b"]], V({"alloc 7002", "free by delete[]"}));
  EXPECT_EQ(at[a["c"]], V({"alloc 7003", "free by delete"}));
  // A failed realloc leaves its block live and writes no realloc record.
  EXPECT_EQ(at[a["q"]], V({"alloc 7006", "free by free"}));
  // realloc(z, 0) returned NULL: a free by realloc.
  EXPECT_EQ(at[a["z"]], V({"alloc 7007", "free by realloc"}));
  // The mismatched free is still a free of the block.
  EXPECT_EQ(at[a["m"]], V({"alloc 7008", "free by free"}));
  // p1 -> p2 -> p3: realloc records name both addresses (p2 may equal p1).
  ASSERT_NE(a["p3"], a["p2"]) << "the second realloc did not move";
  if (a["p1"] == a["p2"]) {
    EXPECT_EQ(at[a["p1"]], V({"alloc 7004", "realloc-from", "realloc-to 7005", "realloc-from"}));
  } else {
    EXPECT_EQ(at[a["p1"]], V({"alloc 7004", "realloc-from"}));
    EXPECT_EQ(at[a["p2"]], V({"realloc-to 7005", "realloc-from"}));
  }
  EXPECT_EQ(at[a["p3"]], V({"realloc-to 70006", "free by free"}));
}

// Blocks allocated by one thread and freed by another: every free is a
// hand-off (its order value is set, its count even: not live), and so is
// every allocation at an address another thread used last (count odd).
TEST(AddressFrees, HandOffsBetweenThreadsCarryOrderValues) {
  RunResult run;
  TraceContents t = RunOne("handoff", kAddress, &run);
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(run.out, "handed off 800 blocks\n");
  std::set<uint64_t> magic;
  uint32_t allocating_thread = 0;
  int allocs = 0;
  for (const auto& r : t.records) {
    if (r.tag != RecordTag::kAlloc || r.size != 7100) continue;
    ++allocs;
    magic.insert(r.address);
    allocating_thread = format::AllocIdThread(r.id);
    if (r.order != kAddressOrderNone) {
      EXPECT_EQ((r.order - 1) % 2, 1u) << "an allocation's count is odd";
    }
  }
  EXPECT_EQ(allocs, 800);
  EXPECT_NE(allocating_thread, 0u);
  int handed_frees = 0;
  for (const auto& r : t.records) {
    if (r.tag != RecordTag::kFree || magic.count(r.address) == 0) continue;
    if (r.order != kAddressOrderNone) {
      EXPECT_EQ((r.order - 1) % 2, 0u) << "a free's count is even";
      ++handed_frees;
    }
  }
  // Each of the 800 blocks was freed by the other thread.
  EXPECT_EQ(handed_frees, 800);
}

TEST(AddressFrees, BadFreesAreToldFromTheCells) {
  RunResult run;
  TraceContents t = RunOne("bad", kAddress, &run);
  EXPECT_EQ(run.exit_code, 0);  // HEAPSIGHT_ON_BAD_FREE=skip (the default)
  EXPECT_NE(run.out.find("realloc of a stack address: NULL\nsurvived\n"), std::string::npos);
  std::map<std::string, uint64_t> a = Addresses(run.out);
  std::vector<std::pair<FreeError, uint64_t>> errors;
  std::vector<Api> apis;
  int frees_of_e = 0;
  for (const auto& r : t.records) {
    if (r.tag == RecordTag::kFreeError) {
      errors.emplace_back(r.free_error.error, r.address);
      apis.push_back(r.api);
      EXPECT_EQ(r.id, 0u);
      EXPECT_EQ(r.free_error.action, format::FreeAction::kSkipped);
    } else if (r.tag == RecordTag::kFree && r.address == a["e"]) {
      ++frees_of_e;
    }
  }
  std::vector<std::pair<FreeError, uint64_t>> want = {
      {FreeError::kDoubleFree, a["d"]},      {FreeError::kInvalidFree, a["local"]},
      {FreeError::kInvalidFree, a["e"] + 8}, {FreeError::kInvalidFree, a["e"] + 16},
      {FreeError::kInvalidFree, a["local"]},
  };
  EXPECT_EQ(errors, want);
  EXPECT_EQ(apis, std::vector<Api>({Api::kFree, Api::kFree, Api::kFree, Api::kFree,
                                    Api::kRealloc}));
  EXPECT_EQ(frees_of_e, 1);  // the skipped frees left e live
}

// Address frees are for exact traces: sampled and compact traces stay in
// table mode (versions 4 and 5), with one line on stderr unless quiet.
TEST(AddressFrees, SampledAndCompactTracesKeepTableMode) {
  const std::string line =
      "HEAPSIGHT_PAIRING=address is for exact traces; with HEAPSIGHT_SAMPLE_BYTES frees are "
      "paired by table (format version 4 or 5)\n";
  RunResult run;
  std::map<std::string, std::string> env = kAddress;
  env["HEAPSIGHT_SAMPLE_BYTES"] = "1";
  TraceContents t = RunOne("basic", env, &run);
  EXPECT_EQ(run.exit_code, 0);
  EXPECT_EQ(t.header.version, 4u);
  EXPECT_EQ(t.header.flags & format::kFileFlagAddressFrees, 0u);
  EXPECT_NE(run.err.find(line), std::string::npos) << run.err;
  env = kAddress;
  env["HEAPSIGHT_COMPACT_FREES"] = "1";
  t = RunOne("basic", env, &run);
  EXPECT_EQ(t.header.version, 5u);
  EXPECT_NE(run.err.find("with HEAPSIGHT_COMPACT_FREES frees are paired by table"),
            std::string::npos)
      << run.err;
  env["HEAPSIGHT_QUIET"] = "1";
  t = RunOne("basic", env, &run);
  EXPECT_EQ(t.header.version, 5u);
  EXPECT_EQ(run.err, "");
  // The default stays table mode, version 4.
  t = RunOne("basic", {}, &run);
  EXPECT_EQ(t.header.version, 4u);
  EXPECT_EQ(run.err, "");
}

}  // namespace
}  // namespace heapsight::testing
