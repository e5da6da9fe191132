// tests/scenarios/address_pairing_test.cc: the same programs recorded in
// table mode (format version 4) and in address mode (HEAPSIGHT_PAIRING=
// address, version 6) give the same profile: every total and every call
// site's numbers that a report, leaks or pprof prints, the sites keyed by
// their frames (module and offset: ASLR moves the load addresses between
// the two runs). The leak scan is off in both (its address-mode side is
// another change's).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "analyzer/model/address_pairing.h"
#include "analyzer/model/pairing_converter.h"
#include "analyzer/model/trace_model.h"
#include "analyzer/symbols/symbolizer.h"
#include "tests/scenarios/scenario_util.h"

namespace heapsight::testing {
namespace {

using analyzer::ProcessProfile;

struct Recorded {
  ProcessProfile profile;
  analyzer::AddressPairingStats pairing;
  // Address mode: the same trace converted to version 4
  // (pairing_converter.h) and analyzed.
  ProcessProfile converted;
};

Recorded Record(const std::vector<std::string>& argv, const std::string& pairing) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced(argv, dir, {{"HEAPSIGHT_PAIRING", pairing},
                                        {"HEAPSIGHT_LEAK_SCAN", "0"},
                                        {"HEAPSIGHT_ON_BAD_FREE", "skip"}});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.traces.size(), 1u);
  Recorded r;
  if (run.traces.empty()) return r;
  analyzer::AnalyzeOptions options;
  options.address_pairing = &r.pairing;
  absl::StatusOr<ProcessProfile> p = analyzer::AnalyzeTrace(run.traces[0], options);
  EXPECT_TRUE(p.ok()) << p.status();
  if (p.ok()) r.profile = std::move(*p);
  if (pairing == "address") {
    const std::string converted = dir + "/converted.hst";
    absl::Status s = analyzer::ConvertAddressTrace(run.traces[0], converted);
    EXPECT_TRUE(s.ok()) << s;
    absl::StatusOr<ProcessProfile> c = analyzer::AnalyzeTrace(converted);
    EXPECT_TRUE(c.ok()) << c.status();
    if (c.ok()) r.converted = std::move(*c);
  }
  return r;
}

// The totals every report prints (the peak's moment only when
// `deterministic`: with more than one thread the merge may order one
// microsecond's events differently).
void ExpectSameTotals(const analyzer::Totals& x, const analyzer::Totals& y, bool deterministic) {
  EXPECT_EQ(x.allocs, y.allocs);
  EXPECT_EQ(x.frees, y.frees);
  EXPECT_EQ(x.bytes_allocated, y.bytes_allocated);
  EXPECT_EQ(x.allocs_by_api, y.allocs_by_api);
  EXPECT_EQ(x.frees_by_api, y.frees_by_api);
  EXPECT_EQ(x.leaked_bytes, y.leaked_bytes);
  EXPECT_EQ(x.leaked_blocks, y.leaked_blocks);
  EXPECT_EQ(x.temporary, y.temporary);
  EXPECT_EQ(x.unmatched_frees, y.unmatched_frees);
  EXPECT_EQ(x.bad_frees, y.bad_frees);
  EXPECT_EQ(x.failed_allocs, y.failed_allocs);
  if (deterministic) {
    EXPECT_EQ(x.peak_bytes, y.peak_bytes);
    EXPECT_EQ(x.peak_blocks, y.peak_blocks);
  }
}

// One site's numbers in two profiles (its peak count only when
// `deterministic`, as ExpectSameTotals).
void ExpectSameSiteStats(const analyzer::SiteStats& s, const analyzer::SiteStats& t,
                         bool deterministic) {
  EXPECT_EQ(s.alloc_count, t.alloc_count);
  EXPECT_EQ(s.alloc_bytes, t.alloc_bytes);
  EXPECT_EQ(s.leaked_count, t.leaked_count);
  EXPECT_EQ(s.leaked_bytes, t.leaked_bytes);
  EXPECT_EQ(s.temporary_count, t.temporary_count);
  if (deterministic) {
    EXPECT_EQ(s.peak_count, t.peak_count);
  }
}

// The version-6 analysis of a run and that of its converted version-4
// trace: the same records, so every number and every class alike (the
// peak's moment too when one thread made them all: with more, the merge
// may order one microsecond's events of two threads differently).
void ExpectConvertedAsAnalyzed(const ProcessProfile& v6, const ProcessProfile& v4,
                               bool deterministic) {
  EXPECT_EQ(v4.header.version, format::kFormatVersion);
  ExpectSameTotals(v6.totals, v4.totals, deterministic);
  ASSERT_EQ(v6.sites.size(), v4.sites.size());
  std::map<std::pair<uint64_t, format::Api>, const analyzer::Site*> by_key;
  for (const analyzer::Site& site : v4.sites) by_key[{site.stack, site.api}] = &site;
  for (const analyzer::Site& site : v6.sites) {
    auto it = by_key.find({site.stack, site.api});
    ASSERT_NE(it, by_key.end());
    ExpectSameSiteStats(site.stats, it->second->stats, deterministic);
  }
  EXPECT_EQ(v6.leak_classes.errors.size(), v4.leak_classes.errors.size());
  for (size_t i = 0; i < v6.leak_classes.errors.size() && i < v4.leak_classes.errors.size();
       ++i) {
    EXPECT_EQ(v6.leak_classes.errors[i].error, v4.leak_classes.errors[i].error);
    EXPECT_EQ(v6.leak_classes.errors[i].alloc_known, v4.leak_classes.errors[i].alloc_known);
    EXPECT_EQ(v6.leak_classes.errors[i].alloc_stack, v4.leak_classes.errors[i].alloc_stack);
  }
}

// A site's frames as (module path, offset in it), innermost first, and its api.
using SiteKey = std::tuple<std::vector<std::pair<std::string, uint64_t>>, format::Api>;

std::map<SiteKey, analyzer::SiteStats> SitesByFrames(const ProcessProfile& p) {
  std::map<SiteKey, analyzer::SiteStats> sites;
  for (const analyzer::Site& site : p.sites) {
    std::vector<std::pair<std::string, uint64_t>> frames;
    for (uint64_t ip : p.StackIps(site.stack)) {
      const analyzer::Module* m = p.symbolizer->FindModule(ip);
      frames.emplace_back(m != nullptr ? m->path : "?", m != nullptr ? ip - m->load_address : ip);
    }
    analyzer::SiteStats& s = sites[{frames, site.api}];
    s.alloc_count += site.stats.alloc_count;
    s.alloc_bytes += site.stats.alloc_bytes;
    s.leaked_count += site.stats.leaked_count;
    s.leaked_bytes += site.stats.leaked_bytes;
    s.temporary_count += site.stats.temporary_count;
    s.peak_count += site.stats.peak_count;
  }
  return sites;
}

// `deterministic`: one thread, so the peak's moment is the same too.
void ExpectSameProfiles(const std::vector<std::string>& argv, bool deterministic) {
  Recorded table = Record(argv, "table");
  Recorded address = Record(argv, "address");
  const ProcessProfile& a = table.profile;
  const ProcessProfile& b = address.profile;
  EXPECT_EQ(a.header.version, format::kFormatVersion);
  ASSERT_EQ(b.header.version, format::kFormatVersionAddress);
  EXPECT_GT(address.pairing.events, 0u);
  EXPECT_EQ(address.pairing.forced, 0u);
  EXPECT_EQ(address.pairing.phantom_frees, 0u);
  EXPECT_TRUE(b.complete);
  ExpectConvertedAsAnalyzed(b, address.converted, deterministic);
  ExpectSameTotals(a.totals, b.totals, deterministic);
  EXPECT_EQ(a.leak_classes.errors.size(), b.leak_classes.errors.size());
  for (size_t i = 0; i < a.leak_classes.errors.size() && i < b.leak_classes.errors.size(); ++i) {
    EXPECT_EQ(a.leak_classes.errors[i].error, b.leak_classes.errors[i].error);
    EXPECT_EQ(a.leak_classes.errors[i].alloc_known, b.leak_classes.errors[i].alloc_known);
    EXPECT_EQ(a.leak_classes.errors[i].alloc_size, b.leak_classes.errors[i].alloc_size);
  }
  std::map<SiteKey, analyzer::SiteStats> sa = SitesByFrames(a), sb = SitesByFrames(b);
  EXPECT_EQ(sa.size(), sb.size());
  for (const auto& [key, s] : sa) {
    auto it = sb.find(key);
    if (it == sb.end()) {
      ADD_FAILURE() << "a site of the table-mode trace is not in the address-mode one";
      continue;
    }
    ExpectSameSiteStats(s, it->second, deterministic);
  }
}

TEST(AddressPairingScenario, EveryApiOneThread) {
  ExpectSameProfiles({ScenarioProgram("api_program")}, /*deterministic=*/true);
}

TEST(AddressPairingScenario, ManyChunksOneThread) {
  ExpectSameProfiles({ScenarioProgram("single_thread_program"), "churn", "50000"},
                     /*deterministic=*/true);
}

// Four threads freeing each other's blocks: addresses handed between
// threads, some events of one address out of order in the merge.
TEST(AddressPairingScenario, FourThreadsCrossFrees) {
  ExpectSameProfiles({ScenarioProgram("threads_program")}, /*deterministic=*/false);
}

TEST(AddressPairingScenario, BadFrees) {
  for (const char* mode : {"double", "invalid", "realloc"}) {
    SCOPED_TRACE(mode);
    ExpectSameProfiles({ScenarioProgram("badfree_program"), mode}, /*deterministic=*/true);
  }
}

// The child of `argv` (fork_program unless given), recorded in `pairing`
// mode and analyzed (the parent's trace removed first if `drop_parent`).
Recorded ForkChild(const std::string& pairing, bool drop_parent,
                   std::vector<std::string> argv = {ScenarioProgram("fork_program")}) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced(argv, dir,
                            {{"HEAPSIGHT_PAIRING", pairing}, {"HEAPSIGHT_LEAK_SCAN", "0"}});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  EXPECT_EQ(run.traces.size(), 2u);
  Recorded r;
  std::string child, parent;
  for (const std::string& t : run.traces) {
    TraceContents c = ReadTrace(t);
    ((c.header.flags & format::kFileFlagForkChild) != 0 ? child : parent) = t;
  }
  if (child.empty() || parent.empty()) {
    ADD_FAILURE() << "no parent and child trace";
    return r;
  }
  if (drop_parent) {
    EXPECT_EQ(unlink(parent.c_str()), 0);
  }
  analyzer::AnalyzeOptions options;
  options.address_pairing = &r.pairing;
  absl::StatusOr<ProcessProfile> p = analyzer::AnalyzeTrace(child, options);
  EXPECT_TRUE(p.ok()) << p.status();
  if (p.ok()) r.profile = std::move(*p);
  return r;
}

// The child's sites of inherited blocks: frames by function name,
// innermost first, with the api -> (inherited blocks, bytes, leaked bytes).
using NamedSite = std::pair<std::vector<std::string>, format::Api>;
std::map<NamedSite, std::tuple<uint64_t, uint64_t, uint64_t>> InheritedSites(ProcessProfile& p) {
  std::map<NamedSite, std::tuple<uint64_t, uint64_t, uint64_t>> sites;
  for (const analyzer::Site& site : p.sites) {
    if (site.stats.inherited_count == 0) continue;
    std::vector<std::string> names;
    for (uint64_t ip : p.StackIps(site.stack)) names.push_back(p.symbolizer->BareSymbolName(ip));
    auto& [count, bytes, leaked] = sites[{names, site.api}];
    count += site.stats.inherited_count;
    bytes += site.stats.inherited_bytes;
    leaked += site.stats.leaked_bytes;
  }
  return sites;
}

// A fork child in address mode inherits its blocks by address, without
// stacks (the parent's trace has them): the analysis reads them from the
// parent's trace, so the child's inherited blocks have the stack and the
// size asked for that table mode gives them. 4001 (freed by the child)
// and 4005 (leaked) were allocated by main.
TEST(AddressPairingScenario, ForkChildTakesStacksFromTheParentTrace) {
  Recorded table = ForkChild("table", false);
  Recorded address = ForkChild("address", false);
  ASSERT_EQ(address.profile.header.version, format::kFormatVersionAddress);
  EXPECT_EQ(address.pairing.inherited_from_parent, 2u);
  EXPECT_EQ(address.pairing.inherited_unresolved, 0u);
  for (const std::string& w : address.profile.warnings) {
    EXPECT_EQ(w.find("inherited"), std::string::npos) << w;
  }
  auto a = InheritedSites(table.profile);
  auto b = InheritedSites(address.profile);
  EXPECT_EQ(a, b);
  ASSERT_EQ(b.size(), 1u);
  const auto& [site, numbers] = *b.begin();
  EXPECT_EQ(site.second, format::Api::kMalloc);
  EXPECT_NE(std::find(site.first.begin(), site.first.end(), "main"), site.first.end());
  EXPECT_EQ(numbers, std::make_tuple(uint64_t{2}, uint64_t{4001 + 4005}, uint64_t{4005}));
  EXPECT_EQ(table.profile.totals.leaked_bytes, address.profile.totals.leaked_bytes);
  EXPECT_EQ(table.profile.totals.leaked_blocks, address.profile.totals.leaked_blocks);
  EXPECT_EQ(address.profile.totals.leaked_bytes, 4005u);
}

// A fork family is converted too: the child with its parent's blocks at
// the fork (from the parent's version-6 trace), each trace to what its
// version-6 analysis gives, the inherited blocks with the parent's stacks.
TEST(AddressPairingScenario, ForkFamilyIsConverted) {
  std::string dir = MakeTempDir();
  RunResult run = RunTraced({ScenarioProgram("fork_program")}, dir,
                            {{"HEAPSIGHT_PAIRING", "address"}, {"HEAPSIGHT_LEAK_SCAN", "0"}});
  ASSERT_EQ(run.traces.size(), 2u);
  int children = 0;
  for (const std::string& t : run.traces) {
    const bool child = (ReadTrace(t).header.flags & format::kFileFlagForkChild) != 0;
    children += child ? 1 : 0;
    const std::string out = t + ".v4";
    analyzer::PairingConversionStats stats;
    absl::Status s = analyzer::ConvertAddressTrace(t, out, 3, &stats);
    ASSERT_TRUE(s.ok()) << s;
    EXPECT_EQ(stats.pairing.forced, 0u);
    absl::StatusOr<ProcessProfile> v6 = analyzer::AnalyzeTrace(t);
    absl::StatusOr<ProcessProfile> v4 = analyzer::AnalyzeTrace(out);
    ASSERT_TRUE(v6.ok() && v4.ok());
    EXPECT_EQ(v4->header.flags & format::kFileFlagForkChild,
              child ? format::kFileFlagForkChild : 0u);
    ExpectConvertedAsAnalyzed(*v6, *v4, /*deterministic=*/true);
    if (child) {
      EXPECT_EQ(stats.pairing.inherited_from_parent, 2u);
      EXPECT_EQ(InheritedSites(*v4), InheritedSites(*v6));
      EXPECT_EQ(v4->totals.inherited_blocks, 2u);
    }
  }
  EXPECT_EQ(children, 1);
}

// address_scan_program's child: blocks of malloc, new[] and new, and one
// of another thread, each with its allocation's stack, api and size.
TEST(AddressPairingScenario, ForkChildOfEveryFamilyAsInTableMode) {
  const std::vector<std::string> argv = {ScenarioProgram("address_scan_program"), "fork"};
  Recorded table = ForkChild("table", false, argv);
  Recorded address = ForkChild("address", false, argv);
  EXPECT_EQ(address.pairing.inherited_unresolved, 0u);
  auto a = InheritedSites(table.profile);
  auto b = InheritedSites(address.profile);
  EXPECT_EQ(a, b);
  std::map<format::Api, uint64_t> bytes;  // 4101..4104 by api
  for (const auto& [site, numbers] : b) {
    const uint64_t n = std::get<1>(numbers);
    if (n >= 4101 && n <= 4104) bytes[site.second] += n;
    EXPECT_FALSE(site.first.empty());
  }
  EXPECT_EQ(bytes, (std::map<format::Api, uint64_t>{{format::Api::kMalloc, 4101 + 4104},
                                                    {format::Api::kNewArray, 4102},
                                                    {format::Api::kNew, 4103}}));
}

// Without the parent's trace the child's inherited blocks are as recorded
// (stack 0, the size asked for, from the usable size and the cell: 4001
// and 4005), and report's warnings say how many and why.
TEST(AddressPairingScenario, ForkChildWithoutParentTraceSaysSo) {
  Recorded address = ForkChild("address", true);
  ASSERT_EQ(address.profile.header.version, format::kFormatVersionAddress);
  EXPECT_EQ(address.pairing.inherited_from_parent, 0u);
  EXPECT_EQ(address.pairing.inherited_unresolved, 2u);
  int said = 0;
  for (const std::string& w : address.profile.warnings) {
    if (w.find("2 blocks inherited at the fork show no allocation stack") == 0 &&
        w.find("was not found") != std::string::npos) {
      ++said;
    }
  }
  EXPECT_EQ(said, 1);
  auto b = InheritedSites(address.profile);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_TRUE(b.begin()->first.first.empty());
  EXPECT_EQ(b.begin()->second, std::make_tuple(uint64_t{2}, uint64_t{4001 + 4005}, uint64_t{4005}));
}

}  // namespace
}  // namespace heapsight::testing
