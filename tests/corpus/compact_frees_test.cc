// tests/corpus/compact_frees_test.cc: compact frees (HEAPSIGHT_COMPACT_FREES,
// trace format version 5) against exact frees, on the same deterministic
// programs: every case of the leak corpus (fork, threads, realloc,
// mismatched frees among them) and compact_churn_program (threads, blocks
// freed by another thread, frees out of allocation order, reallocs). Each
// runs twice under the real preload, once per mode; the analysis must give
// the same numbers per call site (allocations, bytes, not freed at exit,
// peak, leak classes) and the same totals, free errors and leak report, and
// the CLI's report/leaks JSON must agree and say, once, what is approximate.
// `heapsight dump` shows the compact frees.
#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "analyzer/model/live_process.h"
#include "analyzer/model/trace_model.h"
#include "analyzer/report/leak_report.h"
#include "analyzer/symbols/symbolizer.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "format/trace_reader.h"
#include "tests/support/run_traced.h"

namespace heapsight::analyzer {
namespace {

using nlohmann::json;

std::string Program(const std::string& name) {
  return std::string(HEAPSIGHT_CORPUS_BIN) + "/" + name;
}

// A stack as (module basename + offset) per frame: the same in two runs of
// one program whatever the load addresses.
std::string StackKey(const ProcessProfile& p, uint64_t stack) {
  std::string key;
  for (uint64_t ip : p.StackIps(stack)) {
    const SymbolizedLocation& loc = p.symbolizer->Symbolize(ip);
    std::string module = loc.module == nullptr ? "?" : loc.module->path;
    module = module.substr(module.find_last_of('/') + 1);
    absl::StrAppend(&key, module, "+", absl::Hex(loc.module_offset), " ");
  }
  return key;
}

struct SiteNumbers {
  uint64_t alloc_count = 0, alloc_bytes = 0, leaked_count = 0, leaked_bytes = 0;
  uint64_t peak_count = 0, peak_bytes = 0, inherited_count = 0, inherited_bytes = 0;
  uint64_t classes[format::kLeakClassCount + 1][2] = {};  // [class][bytes, blocks]
  bool operator==(const SiteNumbers& o) const {
    return std::tie(alloc_count, alloc_bytes, leaked_count, leaked_bytes, peak_count,
                    peak_bytes, inherited_count, inherited_bytes) ==
               std::tie(o.alloc_count, o.alloc_bytes, o.leaked_count, o.leaked_bytes,
                        o.peak_count, o.peak_bytes, o.inherited_count, o.inherited_bytes) &&
           std::equal(&classes[0][0], &classes[0][0] + sizeof classes / sizeof(uint64_t),
                      &o.classes[0][0]);
  }
};

std::string Describe(const SiteNumbers& s) {
  std::string out = absl::StrCat("allocs ", s.alloc_count, "/", s.alloc_bytes, " leaked ",
                                 s.leaked_count, "/", s.leaked_bytes, " peak ", s.peak_count,
                                 "/", s.peak_bytes, " inherited ", s.inherited_count, "/",
                                 s.inherited_bytes, " classes");
  for (const auto& c : s.classes) absl::StrAppend(&out, " ", c[1], "/", c[0]);
  return out;
}

// Per (stack key, api): the numbers; `with_peak` false for programs whose
// threads race (their peak depends on the interleaving, in either mode).
std::map<std::string, SiteNumbers> Sites(const ProcessProfile& p, bool with_peak) {
  std::map<std::string, SiteNumbers> out;
  for (const Site& site : p.sites) {
    SiteNumbers& n = out[StackKey(p, site.stack) + format::ApiName(site.api)];
    n.alloc_count += site.stats.alloc_count;
    n.alloc_bytes += site.stats.alloc_bytes;
    n.leaked_count += site.stats.leaked_count;
    n.leaked_bytes += site.stats.leaked_bytes;
    if (with_peak) {
      n.peak_count += site.stats.peak_count;
      n.peak_bytes += site.stats.peak_bytes;
    }
    n.inherited_count += site.stats.inherited_count;
    n.inherited_bytes += site.stats.inherited_bytes;
  }
  for (const auto& [key, counts] : p.leak_classes.sites) {
    SiteNumbers& n = out[StackKey(p, key.first) +
                         format::ApiName(static_cast<format::Api>(key.second))];
    for (int c = 0; c <= format::kLeakClassCount; ++c) {
      n.classes[c][0] += counts[static_cast<LeakClass>(c)].bytes;
      n.classes[c][1] += counts[static_cast<LeakClass>(c)].blocks;
    }
  }
  return out;
}

struct TracedRun {
  std::vector<ProcessProfile> profiles;  // fork children after their parents
  std::vector<std::string> traces;
  std::string out;
};

// Runs `program` under the preload, exact or compact, and analyzes every
// trace it left.
TracedRun RunOnce(const std::string& program, bool compact,
                  const std::vector<std::string>& args = {}) {
  TracedRun run;
  std::map<std::string, std::string> env;
  if (compact) env["HEAPSIGHT_COMPACT_FREES"] = "1";
  std::vector<std::string> argv = {program};
  argv.insert(argv.end(), args.begin(), args.end());
  testing::RunResult r = testing::RunTraced(argv, testing::MakeTempDir(), env);
  run.out = r.out;
  for (const std::string& path : r.traces) {
    absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
    EXPECT_TRUE(p.ok()) << p.status();
    if (!p.ok()) continue;
    EXPECT_EQ(p->header.version, compact ? 5u : 4u) << path;
    EXPECT_EQ((p->header.flags & format::kFileFlagCompactFrees) != 0, compact) << path;
    EXPECT_EQ(p->totals.compact_frees, compact);
    run.profiles.push_back(std::move(*p));
    run.traces.push_back(path);
  }
  // Parents first: a fork child's header carries its flag.
  std::vector<size_t> order(run.profiles.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return (run.profiles[a].header.flags & format::kFileFlagForkChild) <
           (run.profiles[b].header.flags & format::kFileFlagForkChild);
  });
  TracedRun sorted;
  sorted.out = run.out;
  for (size_t i : order) {
    sorted.profiles.push_back(std::move(run.profiles[i]));
    sorted.traces.push_back(run.traces[i]);
  }
  return sorted;
}

// The same numbers from both modes, site by site and in total.
void ExpectSameNumbers(const TracedRun& exact, const TracedRun& compact, bool with_peak) {
  EXPECT_EQ(exact.out, compact.out);
  ASSERT_EQ(exact.profiles.size(), compact.profiles.size());
  for (size_t i = 0; i < exact.profiles.size(); ++i) {
    const ProcessProfile& e = exact.profiles[i];
    const ProcessProfile& c = compact.profiles[i];
    SCOPED_TRACE(absl::StrCat("process ", i, " ", e.exe));
    EXPECT_TRUE(c.complete);
    const Totals& te = e.totals;
    const Totals& tc = c.totals;
    EXPECT_EQ(tc.allocs, te.allocs);
    EXPECT_EQ(tc.frees, te.frees);
    EXPECT_EQ(tc.bytes_allocated, te.bytes_allocated);
    EXPECT_EQ(tc.leaked_bytes, te.leaked_bytes);
    EXPECT_EQ(tc.leaked_blocks, te.leaked_blocks);
    EXPECT_EQ(tc.inherited_bytes, te.inherited_bytes);
    EXPECT_EQ(tc.inherited_blocks, te.inherited_blocks);
    EXPECT_EQ(tc.allocs_by_api, te.allocs_by_api);
    EXPECT_EQ(tc.frees_by_api, te.frees_by_api);
    EXPECT_EQ(tc.unmatched_frees, 0u);
    EXPECT_EQ(tc.unmatched_frees, te.unmatched_frees);
    EXPECT_EQ(tc.bad_frees, te.bad_frees);
    if (with_peak) {
      EXPECT_EQ(tc.peak_bytes, te.peak_bytes);
      EXPECT_EQ(tc.peak_blocks, te.peak_blocks);
    }
    EXPECT_EQ(c.leak_classes.scanned, e.leak_classes.scanned);
    std::map<std::string, SiteNumbers> se = Sites(e, with_peak), sc = Sites(c, with_peak);
    EXPECT_EQ(sc.size(), se.size());
    for (const auto& [key, want] : se) {
      auto it = sc.find(key);
      ASSERT_NE(it, sc.end()) << key;
      EXPECT_TRUE(it->second == want)
          << key << "\n exact:   " << Describe(want) << "\n compact: " << Describe(it->second);
    }
    // Free errors keep their exact allocation (found by id).
    ASSERT_EQ(c.leak_classes.errors.size(), e.leak_classes.errors.size());
    for (size_t k = 0; k < e.leak_classes.errors.size(); ++k) {
      const FreeErrorEvent& fe = e.leak_classes.errors[k];
      const FreeErrorEvent& fc = c.leak_classes.errors[k];
      EXPECT_EQ(fc.error, fe.error);
      EXPECT_EQ(fc.alloc_known, fe.alloc_known);
      EXPECT_EQ(fc.alloc_size, fe.alloc_size);
      EXPECT_EQ(fc.alloc_api, fe.alloc_api);
      EXPECT_EQ(StackKey(c, fc.alloc_stack), StackKey(e, fe.alloc_stack));
      EXPECT_EQ(StackKey(c, fc.free_stack), StackKey(e, fe.free_stack));
    }
    // The leak report's totals and classes.
    LeakReport re = BuildLeakReport({&e}, Suppressions());
    LeakReport rc = BuildLeakReport({&c}, Suppressions());
    EXPECT_EQ(rc.totals.leaked.bytes, re.totals.leaked.bytes);
    EXPECT_EQ(rc.totals.leaked.blocks, re.totals.leaked.blocks);
    EXPECT_EQ(rc.totals.not_freed.bytes, re.totals.not_freed.bytes);
    for (LeakClass k : kLeakClassesInOrder) {
      EXPECT_EQ(rc.totals.classes[k].bytes, re.totals.classes[k].bytes);
      EXPECT_EQ(rc.totals.classes[k].blocks, re.totals.classes[k].blocks);
    }
    EXPECT_EQ(rc.groups.size(), re.groups.size());
    EXPECT_FALSE(re.totals.compact_frees);
    EXPECT_TRUE(rc.totals.compact_frees);
  }
}

class CompactCorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CompactCorpusTest, SameNumbersAsExactFrees) {
  const std::string name = GetParam();
  // thread_leak's threads run at once: its peak depends on their order.
  const bool with_peak = name != "thread_leak";
  TracedRun exact = RunOnce(Program(name), false);
  TracedRun compact = RunOnce(Program(name), true);
  ASSERT_FALSE(exact.profiles.empty());
  ExpectSameNumbers(exact, compact, with_peak);
}

INSTANTIATE_TEST_SUITE_P(Corpus, CompactCorpusTest,
                         ::testing::Values("cxx_new_leak", "direct_leak", "fork_leak",
                                           "indirect_leak", "interior_ptr", "mismatch",
                                           "no_leak_many", "realloc_leak", "still_reachable",
                                           "thread_leak"));

// The churn program: frees out of allocation order, across threads, through
// realloc. Its numbers are known exactly.
TEST(CompactFrees, ChurnProgramExactNumbers) {
  TracedRun exact = RunOnce(Program("compact_churn_program"), false);
  TracedRun compact = RunOnce(Program("compact_churn_program"), true);
  ASSERT_EQ(compact.profiles.size(), 1u);
  ExpectSameNumbers(exact, compact, /*with_peak=*/true);
  const ProcessProfile& p = compact.profiles[0];
  // 3 x 3,000 nodes + 3 x 200 buffers x 5 (malloc-like first call, then 4
  // reallocs) + 1,000 temporaries.
  EXPECT_EQ(p.totals.allocs_by_api[static_cast<size_t>(format::Api::kMalloc)], 9000u);
  EXPECT_EQ(p.totals.allocs_by_api[static_cast<size_t>(format::Api::kRealloc)], 3000u);
  EXPECT_EQ(p.totals.allocs_by_api[static_cast<size_t>(format::Api::kNewArray)], 1000u);
  // Kept: 12 nodes per worker, 4 of 16 bytes, 4 of 32, 4 of 48 (i % 3 of
  // i = 0, 250, ..., 2750 cycles 0, 1, 2).
  EXPECT_EQ(p.totals.leaked_blocks, 36u);
  EXPECT_EQ(p.totals.leaked_bytes, 3u * 4 * (16 + 32 + 48));
  // Definitely lost: every third kept node (4 per worker), the rest reachable.
  // (The program's sites: the C runtime's stdout buffer is reachable too.)
  std::set<std::pair<uint64_t, uint8_t>> runtime;
  for (const Site& site : p.sites) {
    if (site.kind == SiteKind::kRuntime) {
      runtime.insert({site.stack, static_cast<uint8_t>(site.api)});
    }
  }
  uint64_t definite = 0, reachable = 0;
  for (const auto& [key, counts] : p.leak_classes.sites) {
    if (runtime.count(key) != 0) continue;
    definite += counts[LeakClass::kDefinite].blocks;
    reachable += counts[LeakClass::kReachable].blocks;
  }
  EXPECT_EQ(definite, 12u);
  EXPECT_EQ(reachable, 24u);
}

// Live analysis (record --serve, rotation) of a compact trace: its chunks,
// applied in file order as the tail reads them, give the same live blocks
// per site and the same totals as the whole-trace analysis.
TEST(CompactFrees, LiveProcessMatchesTheAnalysis) {
  TracedRun compact = RunOnce(Program("compact_churn_program"), true);
  ASSERT_EQ(compact.traces.size(), 1u);
  const ProcessProfile& whole = compact.profiles[0];
  auto reader = format::TraceReader::Open(compact.traces[0]);
  ASSERT_TRUE(reader.ok()) << reader.status();
  LiveProcess live(compact.traces[0], (*reader)->header());
  EXPECT_TRUE(live.compact_frees());
  std::vector<uint8_t> chunk;
  while ((*reader)->NextChunk(&chunk)) ASSERT_TRUE(live.ApplyChunk(chunk).ok());
  ProcessProfile p = live.Snapshot();
  EXPECT_TRUE(p.totals.compact_frees);
  EXPECT_EQ(live.counters().unmatched_frees, 0u);
  EXPECT_EQ(live.counters().allocs, whole.totals.allocs + whole.runtime_totals.allocs);
  EXPECT_EQ(live.counters().live_blocks,
            whole.totals.leaked_blocks + whole.runtime_totals.leaked_blocks);
  EXPECT_EQ(live.counters().live_bytes,
            whole.totals.leaked_bytes + whole.runtime_totals.leaked_bytes);
  EXPECT_EQ(live.counters().pending_frees, 0u);
  std::map<std::string, std::pair<uint64_t, uint64_t>> want, got;
  for (const Site& s : whole.sites) {
    auto& w = want[StackKey(whole, s.stack) + format::ApiName(s.api)];
    w.first += s.stats.leaked_count;
    w.second += s.stats.leaked_bytes;
  }
  for (const Site& s : p.sites) {
    auto& g = got[StackKey(whole, s.stack) + format::ApiName(s.api)];
    g.first += s.stats.live_count;
    g.second += s.stats.live_bytes;
  }
  EXPECT_EQ(got, want);
}

// The command line: report and leaks JSON agree in both modes and carry the
// compact note once; dump shows the compact frees; the HTML and text say it.
// Compact traces are written in chunks of up to 512 KiB (the preload's
// kCompactChunkBytes), exact ones in chunks of up to 128 KiB: a run of
// 200,000 temporaries fills several of each, and the two traces still give
// the same numbers.
TEST(CompactFrees, LargerChunks) {
  TracedRun exact = RunOnce(Program("compact_churn_program"), false, {"200000"});
  TracedRun compact = RunOnce(Program("compact_churn_program"), true, {"200000"});
  ASSERT_EQ(exact.traces.size(), 1u);
  ASSERT_EQ(compact.traces.size(), 1u);
  ExpectSameNumbers(exact, compact, /*with_peak=*/true);
  EXPECT_EQ(compact.profiles[0].totals.allocs_by_api[static_cast<size_t>(format::Api::kNewArray)],
            200000u);
  auto largest_chunk = [](const std::string& path, size_t* chunks) {
    auto reader = format::TraceReader::Open(path);
    EXPECT_TRUE(reader.ok()) << reader.status();
    size_t largest = 0;
    *chunks = 0;
    std::vector<uint8_t> raw;
    uint64_t offset;
    while (reader.ok() && (*reader)->NextChunk(&raw, &offset)) {
      largest = std::max(largest, raw.size());
      ++*chunks;
    }
    return largest;
  };
  size_t exact_chunks, compact_chunks;
  size_t exact_largest = largest_chunk(exact.traces[0], &exact_chunks);
  size_t compact_largest = largest_chunk(compact.traces[0], &compact_chunks);
  EXPECT_LE(exact_largest, size_t{128} << 10);
  EXPECT_GT(exact_largest, size_t{64} << 10);
  // A chunk is sealed when its first stream fills (each has a fixed share
  // of the buffer), so it holds 55-65% of the capacity: 2.5 times what
  // any exact chunk can hold.
  EXPECT_LE(compact_largest, size_t{512} << 10);
  EXPECT_GT(compact_largest, size_t{256} << 10);
  EXPECT_LT(compact_chunks, exact_chunks);
}

TEST(CompactFrees, CommandLine) {
  TracedRun exact = RunOnce(Program("compact_churn_program"), false);
  TracedRun compact = RunOnce(Program("compact_churn_program"), true);
  ASSERT_EQ(exact.traces.size(), 1u);
  ASSERT_EQ(compact.traces.size(), 1u);
  const std::string heapsight = testing::BuildPath("cli/heapsight");
  auto json_of = [&](const std::string& args) {
    testing::RunResult r = testing::RunPlain({"/bin/sh", "-c", heapsight + " " + args});
    EXPECT_EQ(r.exit_code, 0) << args << r.err;
    return json::parse(r.out, nullptr, false);
  };
  json re = json_of("report --no-cache --format=json " + exact.traces[0]);
  json rc = json_of("report --no-cache --format=json " + compact.traces[0]);
  ASSERT_FALSE(re.is_discarded());
  ASSERT_FALSE(rc.is_discarded());
  const json& pe = re["processes"][0];
  const json& pc = rc["processes"][0];
  for (const char* field : {"allocations", "blocks_freed", "bytes_allocated", "peak_bytes",
                            "peak_blocks", "not_freed_bytes", "not_freed_blocks"}) {
    EXPECT_EQ(pc["totals"][field], pe["totals"][field]) << field;
  }
  EXPECT_FALSE(pe.contains("compact_frees"));
  EXPECT_EQ(pc["compact_frees"], true);
  EXPECT_EQ(pc["approximate"],
            json({"temporary", "lifetimes", "not_freed_allocation_times"}));

  json le = json_of("leaks --no-cache --format=json " + exact.traces[0]);
  json lc = json_of("leaks --no-cache --format=json " + compact.traces[0]);
  ASSERT_FALSE(le.is_discarded());
  ASSERT_FALSE(lc.is_discarded());
  for (const char* field : {"leaked_bytes", "leaked_blocks", "not_freed_bytes", "classes"}) {
    EXPECT_EQ(lc["totals"][field], le["totals"][field]) << field;
  }
  EXPECT_EQ(lc["totals"]["compact_frees"], true);

  // Text: the note once.
  testing::RunResult text =
      testing::RunPlain({heapsight, "report", "--no-cache", compact.traces[0]});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  size_t first = text.out.find("compact frees (HEAPSIGHT_COMPACT_FREES)");
  EXPECT_NE(first, std::string::npos) << text.out;
  EXPECT_EQ(text.out.find("compact frees (HEAPSIGHT_COMPACT_FREES)", first + 1),
            std::string::npos);

  // HTML: the note once.
  std::string html_path = testing::MakeTempDir() + "/r.html";
  testing::RunResult html = testing::RunPlain(
      {heapsight, "html", "--no-cache", compact.traces[0], "-o", html_path});
  EXPECT_EQ(html.exit_code, 0) << html.err;
  std::string page = testing::ReadFile(html_path);
  size_t at = page.find("compact frees (HEAPSIGHT_COMPACT_FREES)");
  EXPECT_NE(at, std::string::npos);
  EXPECT_EQ(page.find("compact frees (HEAPSIGHT_COMPACT_FREES)", at + 1), std::string::npos);

  // dump: a compact free names a stack and a size, never an id; the exact
  // trace's frees name ids.
  testing::RunResult de = testing::RunPlain({heapsight, "dump", exact.traces[0]});
  testing::RunResult dc = testing::RunPlain({heapsight, "dump", compact.traces[0]});
  EXPECT_EQ(de.exit_code, 0) << de.err;
  EXPECT_EQ(dc.exit_code, 0) << dc.err;
  auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  // Frees: 9,000 - 36 nodes, 600 buffers, 1,000 temporaries.
  EXPECT_EQ(count(dc.out, " free stack="), 9000u - 36 + 600 + 1000);
  EXPECT_EQ(count(dc.out, " free id="), 0u);
  EXPECT_EQ(count(de.out, " free id="), 9000u - 36 + 600 + 1000);
  EXPECT_EQ(count(dc.out, " realloc old_stack="), 2400u);
  EXPECT_EQ(count(de.out, " realloc old="), 2400u);
  EXPECT_NE(dc.out.find("compact frees: a free names its block's stack and size"),
            std::string::npos);
  EXPECT_NE(dc.out.find("stack/size=["), std::string::npos);  // the scan's blocks
}

}  // namespace
}  // namespace heapsight::analyzer
