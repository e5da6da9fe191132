// tests/corpus/corpus_test.cc: every case of the leak corpus (data/) run
// under the real preload; the analysis API's numbers must equal the expect
// file's for every process: unfreed_at_exit, heap_allocs, heap_frees,
// heap_bytes_allocated, and each leak site (bytes, blocks, allocation API,
// functions on its stack, line in main). Plus the `heapsight leaks` binary
// on one case (text, JSON, suppressions, --leak-exitcode).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "analyzer/report/leak_report.h"
#include "analyzer/symbols/symbolizer.h"
#include "analyzer/model/trace_model.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/analyzer/json_schema_check.h"
#include "tests/support/run_traced.h"

namespace heapsight::analyzer {
namespace {

using nlohmann::json;

bool Exists(const std::string& path) {
  struct stat st;
  return stat(path.c_str(), &st) == 0;
}

json LoadExpect(const std::string& name) {
  std::ifstream in(std::string(HEAPSIGHT_CORPUS_DATA) + "/" + name + ".expect.json");
  EXPECT_TRUE(in) << name;
  return json::parse(in);
}

// Every case in data/: each NAME.expect.json (sorted), so a new case is
// tested as soon as its files are added.
std::vector<std::string> CorpusCases() {
  std::vector<std::string> names;
  const std::string suffix = ".expect.json";
  if (DIR* dir = opendir(HEAPSIGHT_CORPUS_DATA)) {
    while (dirent* e = readdir(dir)) {
      std::string n = e->d_name;
      if (n.size() > suffix.size() && absl::EndsWith(n, suffix)) {
        names.push_back(n.substr(0, n.size() - suffix.size()));
      }
    }
    closedir(dir);
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string Program(const std::string& name) {
  return std::string(HEAPSIGHT_CORPUS_BIN) + "/" + name;
}

// The preload, the command and every case's program are built with this
// test (meson's `depends`): a missing one is a broken build and fails. It
// used to skip, so a moved .so silently turned the Valgrind-checked corpus
// into skips.
void RequireBuilt() {
  for (const std::string& path :
       {testing::BuildPath("preload/libheapsight.so"), testing::BuildPath("cli/heapsight")}) {
    ASSERT_TRUE(Exists(path)) << path << " is missing: the build is broken";
  }
  for (const std::string& name : CorpusCases()) {
    ASSERT_TRUE(Exists(Program(name))) << Program(name) << " is missing: the build is broken";
  }
}

// Runs a case under the preload; returns what it printed and its traces.
testing::RunResult RunCase(const std::string& name, const json& expect) {
  std::vector<std::string> argv = {Program(name)};
  for (const auto& a : expect["args"]) argv.push_back(a.get<std::string>());
  std::string dir = testing::MakeTempDir();
  return testing::RunTraced(argv, dir);
}

bool FunctionMatches(const std::string& function, const std::string& wanted) {
  std::string bare = BareFunctionName(function);
  return bare == wanted || absl::EndsWith(bare, "::" + wanted);
}

// Does `group`'s stack satisfy the expected leak site?
bool SiteMatches(const LeakGroup& group, const json& site) {
  if (group.counts.bytes != site["bytes"].get<uint64_t>() ||
      group.counts.blocks != site["blocks"].get<uint64_t>()) {
    return false;
  }
  if (site.contains("alloc_fn") && site["alloc_fn"].get<std::string>() != format::ApiName(group.api)) {
    return false;
  }
  for (const auto& fn : site["stack_contains"]) {
    bool found = false;
    for (const LeakFrame& f : group.frames) found = found || FunctionMatches(f.function, fn);
    if (!found) return false;
  }
  if (site.contains("line_in_main")) {
    bool found = false;
    for (const LeakFrame& f : group.frames) {
      found = found || (FunctionMatches(f.function, "main") && f.line == site["line_in_main"].get<int>());
    }
    if (!found) return false;
  }
  return true;
}

std::string Describe(const LeakGroup& g) {
  std::string s = std::to_string(g.counts.bytes) + " bytes in " + std::to_string(g.counts.blocks) + " blocks (" +
                  format::ApiName(g.api) + "):";
  for (const LeakFrame& f : g.frames) {
    s += " " + (f.function.empty() ? "?" : BareFunctionName(f.function));
    if (f.line) s += ":" + std::to_string(f.line);
  }
  return s;
}

class CorpusTest : public ::testing::TestWithParam<std::string> {};

TEST_P(CorpusTest, MatchesExpectFile) {
  ASSERT_NO_FATAL_FAILURE(RequireBuilt());
  const std::string name = GetParam();
  json expect = LoadExpect(name);
  testing::RunResult run = RunCase(name, expect);
  EXPECT_EQ(run.exit_code, expect["expected"]["exit_code"].get<int>()) << run.err;
  const json& processes = expect["expected"]["processes"];
  ASSERT_EQ(run.traces.size(), processes.size()) << run.err;

  std::vector<ProcessProfile> profiles;
  for (const std::string& path : run.traces) {
    absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
    ASSERT_TRUE(p.ok()) << p.status();
    EXPECT_TRUE(p->complete) << path;
    // This test checks the blocks not freed at exit whatever their class
    // (CorpusClassTest checks the classes): without the scan's classes the
    // leak report has one unclassified group per site.
    p->leak_classes = LeakClassData();
    profiles.push_back(std::move(*p));
  }
  for (const json& want : processes) {
    std::string role = want["role"];
    const ProcessProfile* p = &profiles[0];
    if (processes.size() > 1) {
      bool want_child = role == "child";
      p = nullptr;
      for (const ProcessProfile& candidate : profiles) {
        bool is_child = (candidate.header.flags & format::kFileFlagForkChild) != 0;
        if (is_child == want_child) p = &candidate;
      }
      ASSERT_NE(p, nullptr) << role;
    }
    SCOPED_TRACE(name + " " + role + " (pid " + std::to_string(p->pid) + ")");
    EXPECT_EQ(p->totals.leaked_bytes, want["unfreed_at_exit"]["bytes"].get<uint64_t>());
    EXPECT_EQ(p->totals.leaked_blocks, want["unfreed_at_exit"]["blocks"].get<uint64_t>());
    EXPECT_EQ(p->totals.allocs, want["heap_allocs"].get<uint64_t>());
    EXPECT_EQ(p->totals.frees, want["heap_frees"].get<uint64_t>());
    EXPECT_EQ(p->totals.bytes_allocated, want["heap_bytes_allocated"].get<uint64_t>());
    if (want.contains("inherited_blocks")) {
      EXPECT_EQ(p->totals.inherited_bytes, want["inherited_blocks"]["bytes"].get<uint64_t>());
      EXPECT_EQ(p->totals.inherited_blocks, want["inherited_blocks"]["blocks"].get<uint64_t>());
    }

    LeakReport report = BuildLeakReport({p}, Suppressions());
    EXPECT_EQ(report.totals.leaked.bytes, want["unfreed_at_exit"]["bytes"].get<uint64_t>());
    std::string groups;
    for (const LeakGroup& g : report.groups) groups += "\n  " + Describe(g);
    // Exact site-by-site matching first. Sites listed separately only
    // because they ran in different threads (thread_leak) share one stack,
    // and heapsight groups by (stack, api) like LeakSanitizer: such sites
    // must together equal one group.
    std::set<size_t> used;
    std::vector<json> unmatched;
    for (const json& site : want["leak_sites"]) {
      bool matched = false;
      for (size_t i = 0; i < report.groups.size() && !matched; ++i) {
        if (used.count(i) == 0 && SiteMatches(report.groups[i], site)) {
          used.insert(i);
          matched = true;
        }
      }
      if (!matched) unmatched.push_back(site);
    }
    std::vector<bool> merged(unmatched.size(), false);
    for (size_t a = 0; a < unmatched.size(); ++a) {
      if (merged[a]) continue;
      json sum = unmatched[a];
      sum.erase("thread");
      std::vector<size_t> members = {a};
      for (size_t b = a + 1; b < unmatched.size(); ++b) {
        json other = unmatched[b];
        other.erase("thread");
        if (other.value("stack_contains", json()) == sum["stack_contains"] &&
            other.value("alloc_fn", "") == sum.value("alloc_fn", "") &&
            other.value("line_in_main", -1) == sum.value("line_in_main", -1) &&
            unmatched[b].contains("thread") && unmatched[a].contains("thread")) {
          sum["bytes"] = sum["bytes"].get<uint64_t>() + other["bytes"].get<uint64_t>();
          sum["blocks"] = sum["blocks"].get<uint64_t>() + other["blocks"].get<uint64_t>();
          members.push_back(b);
        }
      }
      bool matched = false;
      for (size_t i = 0; i < report.groups.size() && !matched; ++i) {
        if (used.count(i) == 0 && SiteMatches(report.groups[i], sum)) {
          used.insert(i);
          matched = true;
        }
      }
      for (size_t m : members) merged[m] = true;
      EXPECT_TRUE(matched) << "no group for expected site(s) " << sum.dump() << "; groups:" << groups;
    }
    EXPECT_EQ(used.size(), report.groups.size()) << "unexpected groups:" << groups;
    for (const LeakGroup& g : report.groups) {
      EXPECT_EQ(g.kind, LeakClass::kUnclassified);
      ASSERT_FALSE(g.frames.empty());
      // The top frame is the code that asked for memory, never the allocator.
      EXPECT_FALSE(IsAllocatorFunction(g.frames[0].function)) << Describe(g);
      EXPECT_FALSE(absl::StrContains(g.frames[0].module, "libheapsight")) << Describe(g);
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, CorpusTest, ::testing::ValuesIn(CorpusCases()));

TEST(CorpusDataTest, AllTenCasesArePresent) { EXPECT_EQ(CorpusCases().size(), 10u); }

// The `heapsight leaks` command on a real trace.
TEST(CorpusCommandTest, LeaksBinaryPrintsLsanShapedReport) {
  ASSERT_NO_FATAL_FAILURE(RequireBuilt());
  testing::RunResult run = RunCase("direct_leak", LoadExpect("direct_leak"));
  ASSERT_EQ(run.traces.size(), 1u);
  std::string heapsight = testing::BuildPath("cli/heapsight");
  testing::RunResult text = testing::RunPlain({heapsight, "leaks", run.traces[0]});
  EXPECT_EQ(text.exit_code, 0) << text.err;
  const std::string& out = text.out;
  EXPECT_NE(out.find("Direct leak of 1000 byte(s) in 1 object(s) allocated from:\n"
                     "    #0 0x"),
            std::string::npos)
      << out;
  EXPECT_NE(out.find(" in alloc_block "), std::string::npos) << out;
  EXPECT_NE(out.find(" in main "), std::string::npos) << out;
  EXPECT_NE(out.find("direct_leak.c:31\n"), std::string::npos) << out;
  EXPECT_NE(out.find("direct_leak.c:32\n"), std::string::npos) << out;
  EXPECT_NE(out.find("direct_leak.c:33\n"), std::string::npos) << out;
  EXPECT_NE(out.find("Direct leak of 200 byte(s) in 1 object(s)"), std::string::npos) << out;
  EXPECT_NE(out.find("Direct leak of 24 byte(s) in 1 object(s)"), std::string::npos) << out;
  EXPECT_LT(out.find("of 1000 byte"), out.find("of 200 byte"));  // sorted by bytes
  EXPECT_TRUE(absl::EndsWith(out, "SUMMARY: heapsight: 1224 byte(s) leaked in 3 allocation(s).\n"))
      << out;
  EXPECT_EQ(out.find("malloc"), std::string::npos) << "allocator frame shown:\n" << out;

  testing::RunResult gate =
      testing::RunPlain({heapsight, "leaks", "--leak-exitcode", "23", run.traces[0]});
  EXPECT_EQ(gate.exit_code, 23);

  testing::RunResult j = testing::RunPlain({heapsight, "leaks", "--format=json", run.traces[0]});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  json doc = json::parse(j.out);
  std::ifstream schema_in(HEAPSIGHT_LEAK_SCHEMA);
  ASSERT_TRUE(schema_in) << HEAPSIGHT_LEAK_SCHEMA;
  EXPECT_EQ(testing::JsonSchemaCheck(json::parse(schema_in)).Validate(doc),
            std::vector<std::string>{});
  EXPECT_EQ(doc["totals"]["leaked_bytes"], 1224);
  EXPECT_EQ(doc["totals"]["leaked_blocks"], 3);
  // "unfreed" without reachability data; "definite" once the preload's
  // leak scan classified the block (leak classification, analyzer/report/leak_report.h).
  std::string kind = doc["groups"][0]["kind"];
  EXPECT_TRUE(kind == "unfreed" || kind == "definite") << kind;
  EXPECT_EQ(doc["groups"][0]["api"], "malloc");
  EXPECT_EQ(BareFunctionName(doc["groups"][0]["frames"][0]["function"].get<std::string>()), "alloc_block");

  std::string supp = testing::MakeTempDir() + "/supp.txt";
  std::ofstream(supp) << "# all of them\nleak:leak_one\n";
  testing::RunResult s = testing::RunPlain(
      {heapsight, "leaks", "--suppressions", supp, "--leak-exitcode", "23", run.traces[0]});
  EXPECT_EQ(s.exit_code, 0) << s.out << s.err;
  EXPECT_NE(s.out.find("SUMMARY: heapsight: 0 byte(s) leaked in 0 allocation(s)."),
            std::string::npos)
      << s.out;
  EXPECT_NE(s.out.find("suppressed 1224 byte(s) in 3 allocation(s)"), std::string::npos) << s.out;
}

// Issue 5: the four leak classes (the preload's reachability scan) and the
// free errors, per process, must equal the expect file (memcheck's numbers).
class CorpusClassTest : public ::testing::TestWithParam<std::string> {};

void ExpectCounts(const ClassCounts& got, const json& want, const std::string& what) {
  EXPECT_EQ(got.bytes, want["bytes"].get<uint64_t>()) << what;
  EXPECT_EQ(got.blocks, want["blocks"].get<uint64_t>()) << what;
}

TEST_P(CorpusClassTest, ClassesAndErrorsMatchExpectFile) {
  ASSERT_NO_FATAL_FAILURE(RequireBuilt());
  const std::string name = GetParam();
  json expect = LoadExpect(name);
  testing::RunResult run = RunCase(name, expect);
  const json& processes = expect["expected"]["processes"];
  ASSERT_EQ(run.traces.size(), processes.size()) << run.err;
  std::vector<ProcessProfile> profiles;
  for (const std::string& path : run.traces) {
    absl::StatusOr<ProcessProfile> p = AnalyzeTrace(path);
    ASSERT_TRUE(p.ok()) << p.status();
    profiles.push_back(std::move(*p));
  }
  for (const json& want : processes) {
    std::string role = want["role"];
    size_t index = 0;
    if (processes.size() > 1) {
      bool want_child = role == "child";
      for (size_t i = 0; i < profiles.size(); ++i) {
        if (((profiles[i].header.flags & format::kFileFlagForkChild) != 0) == want_child) index = i;
      }
    }
    const ProcessProfile* p = &profiles[index];
    SCOPED_TRACE(name + " " + role + " (pid " + std::to_string(p->pid) + ")");
    absl::StatusOr<LeakClassData> data = ReadLeakClasses(p->trace_path);
    ASSERT_TRUE(data.ok()) << data.status();
    EXPECT_TRUE(data->scanned);
    EXPECT_EQ(data->threads_missed, 0u);
    LeakReport r = BuildLeakReport({p}, Suppressions());
    ASSERT_EQ(r.processes.size(), 1u);
    const LeakClassCounts& classes = r.processes[0].totals.classes;
    ExpectCounts(classes[LeakClass::kDefinite], want["definitely_lost"], "definitely lost");
    ExpectCounts(classes[LeakClass::kIndirect], want["indirectly_lost"], "indirectly lost");
    ExpectCounts(classes[LeakClass::kPossible], want["possibly_lost"], "possibly lost");
    ExpectCounts(classes[LeakClass::kReachable], want["still_reachable"], "still reachable");
    ExpectCounts(r.totals.leaked, want["lost_total"], "lost total");
    EXPECT_EQ(classes[LeakClass::kUnclassified].blocks, 0u);
    // Every expected site has a group of its kind (sites of different
    // threads sharing one stack are one group, summed).
    std::string groups;
    for (const LeakGroup& g : r.groups) {
      groups += "\n  " + std::string(LeakKindName(g.kind)) + " " + Describe(g);
    }
    std::vector<bool> used(r.groups.size(), false);
    std::vector<bool> done(want["leak_sites"].size(), false);
    for (size_t a = 0; a < want["leak_sites"].size(); ++a) {
      if (done[a]) continue;
      json sum = want["leak_sites"][a];
      for (size_t b = a + 1; b < want["leak_sites"].size(); ++b) {
        const json& other = want["leak_sites"][b];
        if (sum.contains("thread") && other.contains("thread") &&
            other["kind"] == sum["kind"] && other["stack_contains"] == sum["stack_contains"]) {
          sum["bytes"] = sum["bytes"].get<uint64_t>() + other["bytes"].get<uint64_t>();
          sum["blocks"] = sum["blocks"].get<uint64_t>() + other["blocks"].get<uint64_t>();
          done[b] = true;
        }
      }
      bool matched = false;
      for (size_t i = 0; i < r.groups.size() && !matched; ++i) {
        if (!used[i] && LeakKindName(r.groups[i].kind) == sum["kind"].get<std::string>() &&
            SiteMatches(r.groups[i], sum)) {
          used[i] = matched = true;
        }
      }
      EXPECT_TRUE(matched) << "no group for " << sum.dump() << "; groups:" << groups;
    }
    for (size_t i = 0; i < used.size(); ++i) {
      EXPECT_TRUE(used[i]) << "unexpected group " << Describe(r.groups[i]);
    }
    // Free errors, in order, with both stacks.
    const json& errors = want["errors"];
    ASSERT_EQ(r.errors.size(), errors.size());
    for (size_t i = 0; i < errors.size(); ++i) {
      const auto& e = r.errors[i];
      SCOPED_TRACE("error " + std::to_string(i));
      EXPECT_EQ(FreeErrorName(e.event.error), errors[i]["kind"].get<std::string>());
      json j = LeakReportToJson(r)["errors"][i];
      EXPECT_EQ(j["free_fn"], errors[i]["free_fn"]);
      EXPECT_EQ(j["alloc_fn"], errors[i]["alloc_fn"]);
      EXPECT_EQ(j["bytes"], errors[i]["bytes"]);
      ASSERT_FALSE(e.free_frames.empty());
      ASSERT_FALSE(e.alloc_frames.empty());
      std::string fn = errors[i]["in_function"];
      EXPECT_TRUE(FunctionMatches(e.free_frames[0].function, fn)) << e.free_frames[0].function;
      EXPECT_TRUE(FunctionMatches(e.alloc_frames[0].function, fn)) << e.alloc_frames[0].function;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Corpus, CorpusClassTest, ::testing::ValuesIn(CorpusCases()));

// `heapsight leaks` by class: still_reachable is listed only with
// --show-reachable (as LSan and memcheck list it), counted in the summary
// but not as leaked, and does not trip --leak-exitcode; --leak-kinds
// changes what counts.
TEST(CorpusCommandTest, LeakKindsAndExitCode) {
  ASSERT_NO_FATAL_FAILURE(RequireBuilt());
  std::string heapsight = testing::BuildPath("cli/heapsight");
  testing::RunResult run = RunCase("still_reachable", LoadExpect("still_reachable"));
  ASSERT_EQ(run.traces.size(), 1u);
  testing::RunResult text =
      testing::RunPlain({heapsight, "leaks", "--show-reachable", "--leak-exitcode", "23",
                         run.traces[0]});
  EXPECT_EQ(text.exit_code, 0) << text.out;
  EXPECT_NE(text.out.find("Still reachable of 512 byte(s) in 1 object(s)"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("still reachable: 720 bytes in 7 blocks"), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("SUMMARY: heapsight: 0 byte(s) leaked in 0 allocation(s)."),
            std::string::npos);
  testing::RunResult hidden = testing::RunPlain(
      {heapsight, "leaks", "--show-kinds", "definite,possible", run.traces[0]});
  EXPECT_EQ(hidden.out.find("Still reachable of"), std::string::npos) << hidden.out;
  // By default too; the summary still counts them.
  testing::RunResult plain = testing::RunPlain({heapsight, "leaks", run.traces[0]});
  EXPECT_EQ(plain.out.find("Still reachable of"), std::string::npos) << plain.out;
  EXPECT_NE(plain.out.find("still reachable: 720 bytes in 7 blocks"), std::string::npos)
      << plain.out;
  EXPECT_NE(hidden.out.find("still reachable: 720 bytes in 7 blocks"), std::string::npos);
  testing::RunResult all = testing::RunPlain(
      {heapsight, "leaks", "--leak-exitcode", "23", "--leak-kinds", "all", run.traces[0]});
  EXPECT_EQ(all.exit_code, 23);
  testing::RunResult bad =
      testing::RunPlain({heapsight, "leaks", "--leak-kinds", "sometimes", run.traces[0]});
  EXPECT_EQ(bad.exit_code, 2);  // a usage error

  testing::RunResult ind = RunCase("indirect_leak", LoadExpect("indirect_leak"));
  ASSERT_EQ(ind.traces.size(), 1u);
  testing::RunResult j = testing::RunPlain({heapsight, "leaks", "--format=json", ind.traces[0]});
  json doc = json::parse(j.out);
  std::ifstream schema_in(HEAPSIGHT_LEAK_SCHEMA);
  EXPECT_EQ(testing::JsonSchemaCheck(json::parse(schema_in)).Validate(doc),
            std::vector<std::string>{});
  EXPECT_EQ(doc["totals"]["classes"]["definitely_lost"]["bytes"], 48);
  EXPECT_EQ(doc["totals"]["classes"]["indirectly_lost"]["bytes"], 348);
  EXPECT_EQ(doc["groups"][0]["kind"], "definite");
  EXPECT_EQ(doc["groups"][1]["kind"], "indirect");
  testing::RunResult t = testing::RunPlain({heapsight, "leaks", ind.traces[0]});
  EXPECT_NE(t.out.find("Indirect leak of 200 byte(s) in 1 object(s)"), std::string::npos) << t.out;
  // Only indirect: not counted by default (definite,possible)... but the
  // definite root is.
  testing::RunResult gate = testing::RunPlain(
      {heapsight, "leaks", "--leak-exitcode", "23", "--leak-kinds", "indirect", ind.traces[0]});
  EXPECT_EQ(gate.exit_code, 23);
  // The output formats by class: collapse's leaked_bytes, pprof's inuse_* at the end.
  testing::RunResult fold = testing::RunPlain({heapsight, "collapse", "--metric", "leaked_bytes",
                                               "--leak-kinds", "indirect", ind.traces[0]});
  EXPECT_TRUE(absl::EndsWith(fold.out, ";build_and_drop;make_node 348\n")) << fold.out;
  fold = testing::RunPlain({heapsight, "collapse", "--metric", "leaked_bytes", "--leak-kinds",
                            "definite", ind.traces[0]});
  EXPECT_TRUE(absl::EndsWith(fold.out, ";build_and_drop;make_node 48\n")) << fold.out;
  std::string pb = testing::MakeTempDir() + "/definite.pb.gz";
  testing::RunResult pp = testing::RunPlain(
      {heapsight, "pprof", "--leak-kinds", "definite", "-o", pb, ind.traces[0]});
  EXPECT_EQ(pp.exit_code, 0) << pp.err;
  EXPECT_TRUE(Exists(pb));
  testing::RunResult none = testing::RunPlain(
      {heapsight, "leaks", "--leak-exitcode", "23", "--leak-kinds", "none", ind.traces[0]});
  EXPECT_EQ(none.exit_code, 0);

  testing::RunResult mm = RunCase("mismatch", LoadExpect("mismatch"));
  ASSERT_EQ(mm.traces.size(), 1u);
  testing::RunResult mj = testing::RunPlain({heapsight, "leaks", "--format=json", mm.traces[0]});
  json mdoc = json::parse(mj.out);
  EXPECT_EQ(mdoc["totals"]["errors"]["mismatched_free"], 5);
  testing::RunResult mt = testing::RunPlain({heapsight, "leaks", "--leak-exitcode", "23",
                                             mm.traces[0]});
  EXPECT_EQ(mt.exit_code, 0);  // no leaks
  testing::RunResult me = testing::RunPlain({heapsight, "leaks", "--leak-exitcode", "23",
                                             "--error-exitcode", "24", mm.traces[0]});
  EXPECT_EQ(me.exit_code, 24);  // free errors
  EXPECT_NE(mt.out.find("ERROR SUMMARY: 5 free error(s): 0 invalid, 0 double, 5 mismatched."),
            std::string::npos)
      << mt.out;
  testing::RunResult rep = testing::RunPlain({heapsight, "report", mm.traces[0]});
  EXPECT_NE(rep.out.find("free errors: 0 invalid, 0 double, 5 mismatched"), std::string::npos)
      << rep.out;
}

}  // namespace
}  // namespace heapsight::analyzer
